//! The V1.5 chat routes: each checks the user and their ownership of the session, then hands over to the
//! session's `ChatSessionAgent`; and the agent's callback, whose token is verified before any DO is woken.

use vf_protocol::api::{is_valid_id, ApproveRequest, ChatRequest};
use vf_protocol::token::{self, ExecutionClaims};
use worker::{Env, Method, Request, Response};

use crate::auth::User;
use crate::chat_session_agent::ApproveForward;
use crate::config;
use crate::dispatch::ChatForward;
use crate::error::{ApiError, ApiResult};
use crate::http;
use crate::sessions;

/// `POST /api/v15/chat`.
pub async fn chat(mut req: Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: ChatRequest = http::read_json(&mut req).await?;
    request.validate()?;
    let session = sessions::owned(env, user, &request.session_id).await?;
    let origin = match config::var(env, "PUBLIC_URL") {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => req.url()?.origin().ascii_serialization(),
    };
    let forward = ChatForward {
        user_id: user.id.clone(),
        origin,
        sandbox_id: session.sandbox_id,
        request,
    };
    let body = serde_json::to_string(&forward).expect("forwards serialize");
    to_agent(
        env,
        &forward.request.session_id,
        Method::Post,
        "/chat",
        Some(body),
    )
    .await
}

/// `GET /api/v15/sessions/{id}/events?after=N`.
pub async fn events(req: &Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let after = http::parse_after(req)?;
    sessions::owned(env, user, id).await?;
    to_agent(
        env,
        id,
        Method::Get,
        &format!("/events?after={after}"),
        None,
    )
    .await
}

/// `DELETE /api/v15/sessions/{id}/events`.
pub async fn clear(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    sessions::owned(env, user, id).await?;
    to_agent(env, id, Method::Delete, "/events", None).await
}

/// `POST /api/v15/sessions/{id}/cancel`.
pub async fn cancel(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    sessions::owned(env, user, id).await?;
    to_agent(env, id, Method::Post, "/cancel", None).await
}

/// `DELETE /api/v15/sessions/{id}/queue/{queueId}`: removes a queued prompt before it starts.
pub async fn dequeue(env: &Env, user: &User, id: &str, queue_id: &str) -> ApiResult<Response> {
    sessions::owned(env, user, id).await?;
    if !is_valid_id(queue_id) {
        return Err(ApiError::NotFound);
    }
    to_agent(env, id, Method::Delete, &format!("/queue/{queue_id}"), None).await
}

/// `GET /api/v15/sessions/{id}/export`: the transcript as a Markdown download.
pub async fn export(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let record = sessions::owned(env, user, id).await?;
    let body = serde_json::to_string(&record).expect("records serialize");
    to_agent(env, id, Method::Post, "/export", Some(body)).await
}

/// `POST /api/v15/approve`: a person's decision on a pending approval of one of their sessions.
pub async fn approve(mut req: Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: ApproveRequest = http::read_json(&mut req).await?;
    let request = request.validate()?;
    sessions::owned(env, user, &request.session_id).await?;
    let session_id = request.session_id.clone();
    let forward = ApproveForward {
        request,
        user_id: user.id.clone(),
    };
    let body = serde_json::to_string(&forward).expect("forwards serialize");
    to_agent(env, &session_id, Method::Post, "/approve", Some(body)).await
}

/// `GET|DELETE /api/v15/sessions/{id}/rules[/{tool}]`: the session's "allow for this session" rules.
pub async fn rules(
    env: &Env,
    user: &User,
    id: &str,
    method: Method,
    path: &str,
) -> ApiResult<Response> {
    sessions::owned(env, user, id).await?;
    to_agent(env, id, method, path, None).await
}

/// `POST /internal/stream` (the agent's lines), `GET /internal/stream` (the mark it asks for) and
/// `GET /internal/approvals/{id}` (its long-poll for a decision): the token is
/// verified here, in the Worker, so a bad token costs one HMAC and wakes nothing; the body streams through to
/// the DO untouched.
pub async fn callback(req: Request, env: &Env) -> ApiResult<Response> {
    let bearer = http::bearer(&req).ok_or(ApiError::Unauthorized)?;
    let secret = config::secret(env, "JWT_SECRET")?;
    let claims: ExecutionClaims = token::verify(&bearer, secret.as_bytes(), config::now_secs())?;
    let stub = config::chat_session(env, &claims.session_id)?;
    Ok(stub.fetch_with_request(req).await?)
}

async fn to_agent(
    env: &Env,
    session_id: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> ApiResult<Response> {
    http::call_stub(
        config::chat_session(env, session_id)?,
        method,
        &format!("https://do{path}"),
        body,
    )
    .await
}
