//! VaporForge Worker: routes requests, maps errors to responses in one place, exports the Durable Objects.

mod approval_log;
mod auth;
mod body_reader;
mod chat_session_agent;
mod config;
mod dispatch;
mod error;
mod event_log;
mod fanout;
mod flags;
mod http;
mod idempotency;
mod legacy;
mod prompt_queue;
mod sandbox;
mod sandbox_container;
mod session_index;
mod sessions;
mod v15;

pub use chat_session_agent::ChatSessionAgent;
pub use sandbox_container::SandboxContainer;
pub use session_index::SessionIndex;

use error::{ApiError, ApiResult};
use worker::{event, Context, Env, Method, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(route(req, &env)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn route(req: Request, env: &Env) -> ApiResult<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    let state_changing = method != Method::Get && method != Method::Head;
    if segments.first() == Some(&"api") && (state_changing || req.headers().has("Upgrade")?) {
        check_origin(&req, env)?;
    }
    match (method, segments.as_slice()) {
        (Method::Post | Method::Get, ["internal", "stream"])
        | (Method::Get, ["internal", "approvals", _]) => v15::callback(req, env).await,
        (Method::Post, ["api", "auth", "login"]) => auth::login(req, env).await,
        (Method::Post, ["api", "auth", "logout"]) => auth::logout(req, env).await,
        (Method::Put, ["api", "admin", "flags"]) => flags::put(req, env).await,
        (method, ["api", ..]) => {
            let user = auth::authenticate(&req, env).await?;
            match (method, &segments[1..]) {
                (Method::Get, ["me"]) => auth::me(&user, env).await,
                (Method::Get, ["flags"]) => flags::get(env, &user).await,
                (Method::Get, ["sdk", "ws"]) => legacy::websocket(req, env, &user).await,
                (Method::Get, ["sessions"]) => sessions::list(env, &user).await,
                (Method::Get, ["sessions", "watch"]) => sessions::watch(env, &user).await,
                (Method::Post, ["sessions"]) => sessions::create(req, env, &user).await,
                (Method::Patch, ["sessions", id]) => sessions::rename(req, env, &user, id).await,
                (Method::Delete, ["sessions", id]) => sessions::delete(env, &user, id).await,
                (Method::Post, ["v15", "chat"]) => v15::chat(req, env, &user).await,
                (Method::Get, ["v15", "sessions", id, "events"]) => {
                    v15::events(&req, env, &user, id).await
                }
                (Method::Delete, ["v15", "sessions", id, "events"]) => {
                    v15::clear(env, &user, id).await
                }
                (Method::Post, ["v15", "sessions", id, "cancel"]) => {
                    v15::cancel(env, &user, id).await
                }
                (Method::Delete, ["v15", "sessions", id, "queue", queue_id]) => {
                    v15::dequeue(env, &user, id, queue_id).await
                }
                (Method::Get, ["v15", "sessions", id, "export"]) => {
                    v15::export(env, &user, id).await
                }
                (Method::Post, ["v15", "approve"]) => v15::approve(req, env, &user).await,
                (Method::Get, ["v15", "sessions", id, "rules"]) => {
                    v15::rules(env, &user, id, Method::Get, "/rules").await
                }
                (Method::Delete, ["v15", "sessions", id, "rules"]) => {
                    v15::rules(env, &user, id, Method::Delete, "/rules").await
                }
                (Method::Delete, ["v15", "sessions", id, "rules", tool]) => {
                    if !vf_protocol::api::is_tool_name(tool) {
                        return Err(ApiError::BadRequest("not a tool name".into()));
                    }
                    let path = format!("/rules?tool={tool}");
                    v15::rules(env, &user, id, Method::Delete, &path).await
                }
                _ => Err(ApiError::NotFound),
            }
        }
        _ => Err(ApiError::NotFound),
    }
}

/// State-changing API calls must come from our own pages: a request whose `Origin` names another site is
/// refused (browsers send `Origin` on every cross-site POST/PUT/DELETE). So is a WebSocket upgrade from another
/// site: the legacy socket acts with the user's cookie, and CORS does not apply to WebSockets (browsers always
/// send `Origin` on them). Non-browser clients send none. This backs up the SameSite=Strict cookie.
/// `ALLOWED_ORIGINS` (comma-separated) adds origins that front this Worker, e.g. `make ui` on port 8080 in
/// local UI development, whose relay forwards the browser's Origin unchanged.
fn check_origin(req: &Request, env: &Env) -> ApiResult<()> {
    let Some(origin) = req.headers().get("Origin")? else {
        return Ok(());
    };
    let own = req.url()?.origin().ascii_serialization();
    let allowed = config::var(env, "ALLOWED_ORIGINS").unwrap_or_default();
    if origin == own || allowed.split(',').any(|a| a.trim() == origin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-site request refused".into()))
    }
}
