//! The legacy path (kept for rollback behind the flag): the browser's WebSocket `/api/sdk/ws` is relayed to the
//! sandbox's agent WebSocket. Nothing is stored on this path, and a dropped socket cannot be resumed.

use futures::{select, StreamExt};
use serde_json::json;
use vf_protocol::legacy::{AgentStart, ClientMessage};
use worker::{Env, Request, Response, WebSocket, WebSocketPair, WebsocketEvent};

use crate::auth::{self, User};
use crate::error::{ApiError, ApiResult};
use crate::http;
use crate::sandbox::SandboxClient;
use crate::sessions;

/// `GET /api/sdk/ws?sessionId=`: checks the user and their session, opens the sandbox's agent socket, and relays.
pub async fn websocket(req: Request, env: &Env, user: &User) -> ApiResult<Response> {
    if req.headers().get("Upgrade")?.as_deref() != Some("websocket") {
        return Err(ApiError::BadRequest("expected a WebSocket upgrade".into()));
    }
    let session_id = http::query_param(&req, "sessionId")?
        .ok_or_else(|| ApiError::BadRequest("sessionId is required".into()))?;
    let session = sessions::owned(env, user, &session_id).await?;
    let claude_token = auth::load_user(env, &user.id)
        .await?
        .map(|u| u.claude_token)
        .ok_or(ApiError::Unauthorized)?;
    let upstream = SandboxClient::for_sandbox(env, &session.sandbox_id)?
        .agent_socket()
        .await?;
    upstream.accept()?;
    let pair = WebSocketPair::new()?;
    pair.server.accept()?;
    let browser = pair.server;
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = relay(&browser, &upstream, &claude_token).await {
            worker::console_error!("legacy relay: {e}");
        }
        let _ = browser.close(Some(1000), Some("done"));
        let _ = upstream.close(Some(1000), Some("done"));
    });
    Ok(Response::from_websocket(pair.client)?)
}

async fn relay(
    browser: &WebSocket,
    upstream: &WebSocket,
    claude_token: &str,
) -> worker::Result<()> {
    let mut from_browser = browser.events()?.fuse();
    let mut from_agent = upstream.events()?.fuse();
    loop {
        select! {
            event = from_browser.next() => match event {
                Some(Ok(WebsocketEvent::Message(message))) => {
                    let Some(text) = message.text() else { continue };
                    match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Query { prompt, model, mode, autonomy }) => {
                            upstream.send(&AgentStart {
                                prompt,
                                session_id: None,
                                sdk_session_id: None,
                                model,
                                mode,
                                autonomy,
                                env: [
                                    ("IS_SANDBOX", "1"),
                                    ("CLAUDE_CODE_OAUTH_TOKEN", claude_token),
                                ]
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .into(),
                            })?;
                        }
                        Ok(ClientMessage::Stop) => upstream.send(&ClientMessage::Stop)?,
                        Err(e) => browser.send(&json!({
                            "type": "error",
                            "code": "dispatch-failed",
                            "error": format!("invalid message: {e}"),
                        }))?,
                    }
                }
                Some(Ok(WebsocketEvent::Close(_))) | Some(Err(_)) | None => return Ok(()),
            },
            event = from_agent.next() => match event {
                Some(Ok(WebsocketEvent::Message(message))) => {
                    if let Some(text) = message.text() {
                        browser.send_with_str(text.trim_end())?;
                    }
                }
                Some(Ok(WebsocketEvent::Close(_))) | Some(Err(_)) | None => return Ok(()),
            },
        }
    }
}
