//! The HTTP API (same origin, cookie auth) over `fetch`: JSON calls and the two streamed NDJSON routes.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use leptos::prelude::window;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vf_protocol::api::{
    ApproveRequest, ChatRequest, CreateSessionRequest, ErrorBody, LoginRequest, Me, RenameRequest,
    RulesResponse, SessionRecord, SessionSummary,
};
use vf_protocol::flags::{FlagUpdate, FlagsResponse};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, RequestInit, Response};

/// Why a call failed; `Display` is the text shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: not signed in, or a wrong token.
    Unauthorized(String),
    /// Any other non-2xx answer, with the server's message.
    Status { status: u16, message: String },
    /// No answer at all (offline, DNS, the connection dropped).
    Network(String),
    /// Aborted by the app itself.
    Aborted,
}

impl ApiError {
    /// Builds the error of a non-2xx response from its status and body (`{"error": "…"}`, or anything else).
    pub fn from_response(status: u16, body: &str) -> Self {
        let message = serde_json::from_str::<ErrorBody>(body)
            .map(|b| b.error)
            .ok()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("the server answered {status}"));
        if status == 401 {
            ApiError::Unauthorized(message)
        } else {
            ApiError::Status { status, message }
        }
    }

    /// A rejected `fetch` or stream read: our own abort, or a network failure.
    pub fn from_js(error: JsValue) -> Self {
        let field = |name: &str| {
            js_sys::Reflect::get(&error, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_string())
        };
        if field("name").as_deref() == Some("AbortError") {
            ApiError::Aborted
        } else {
            ApiError::Network(field("message").unwrap_or_else(|| "network error".into()))
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized(message) | ApiError::Status { message, .. } => {
                f.write_str(message)
            }
            ApiError::Network(detail) => write!(f, "Could not reach the server ({detail})."),
            ApiError::Aborted => f.write_str("The request was cancelled."),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

thread_local! {
    static ON_UNAUTHORIZED: RefCell<Option<Rc<dyn Fn()>>> = RefCell::new(None);
}

/// Registers what a 401 does (the app navigates to /login). It runs for every call made with the session cookie;
/// login itself and the admin route, whose 401 means a wrong token, report it as an ordinary error instead.
pub fn set_unauthorized_handler(handler: impl Fn() + 'static) {
    ON_UNAUTHORIZED.with(|h| *h.borrow_mut() = Some(Rc::new(handler)));
}

/// How one request is made.
#[derive(Default)]
struct Call<'a> {
    body: Option<String>,
    bearer: Option<&'a str>,
    signal: Option<&'a AbortSignal>,
    /// The 401 is a wrong token typed in a form, not a lost session.
    own_401: bool,
}

impl<'a> Call<'a> {
    fn json(body: &impl Serialize) -> Self {
        Call {
            body: Some(serde_json::to_string(body).expect("request bodies serialize")),
            ..Call::default()
        }
    }
}

/// Sends a request; `Ok` only for a 2xx answer.
async fn send(method: &str, path: &str, call: Call<'_>) -> ApiResult<Response> {
    let headers = Headers::new().map_err(ApiError::from_js)?;
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &call.body {
        headers
            .set("Content-Type", "application/json")
            .map_err(ApiError::from_js)?;
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(token) = call.bearer {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(ApiError::from_js)?;
    }
    init.set_headers(&headers);
    init.set_signal(call.signal);
    let response: Response = JsFuture::from(window().fetch_with_str_and_init(path, &init))
        .await
        .map_err(ApiError::from_js)?
        .unchecked_into();
    if response.ok() {
        return Ok(response);
    }
    let body = text(&response).await.unwrap_or_default();
    let error = ApiError::from_response(response.status(), &body);
    if matches!(error, ApiError::Unauthorized(_)) && !call.own_401 {
        if let Some(handler) = ON_UNAUTHORIZED.with(|h| h.borrow().clone()) {
            handler();
        }
    }
    Err(error)
}

async fn text(response: &Response) -> ApiResult<String> {
    let promise = response.text().map_err(ApiError::from_js)?;
    let value = JsFuture::from(promise).await.map_err(ApiError::from_js)?;
    Ok(value.as_string().unwrap_or_default())
}

async fn json<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
    let body = text(&response).await?;
    serde_json::from_str(&body).map_err(|e| ApiError::Status {
        status: response.status(),
        message: format!("unexpected answer from the server: {e}"),
    })
}

pub async fn login(token: String) -> ApiResult<Me> {
    let call = Call {
        own_401: true,
        ..Call::json(&LoginRequest { token })
    };
    json(send("POST", "/api/auth/login", call).await?).await
}

pub async fn logout() -> ApiResult<()> {
    send("POST", "/api/auth/logout", Call::default())
        .await
        .map(drop)
}

/// The signed-in user; a 401 here only means "not signed in" and does not navigate.
pub async fn me() -> ApiResult<Me> {
    let call = Call {
        own_401: true,
        ..Call::default()
    };
    json(send("GET", "/api/me", call).await?).await
}

pub async fn sessions() -> ApiResult<Vec<SessionSummary>> {
    json(send("GET", "/api/sessions", Call::default()).await?).await
}

/// The session list as NDJSON: the whole list now, and again after every change.
pub async fn watch_sessions(signal: &AbortSignal) -> ApiResult<Response> {
    let call = Call {
        signal: Some(signal),
        ..Call::default()
    };
    send("GET", "/api/sessions/watch", call).await
}

pub async fn rename_session(id: &str, name: String) -> ApiResult<SessionSummary> {
    let body = RenameRequest { name };
    json(send("PATCH", &format!("/api/sessions/{id}"), Call::json(&body)).await?).await
}

/// Removes a queued prompt before it starts.
pub async fn dequeue(session_id: &str, queue_id: &str) -> ApiResult<()> {
    let path = format!("/api/v15/sessions/{session_id}/queue/{queue_id}");
    send("DELETE", &path, Call::default()).await.map(drop)
}

/// Where the session's transcript downloads as Markdown.
pub fn export_url(session_id: &str) -> String {
    format!("/api/v15/sessions/{session_id}/export")
}

pub async fn create_session(name: Option<String>) -> ApiResult<SessionRecord> {
    let body = CreateSessionRequest { name };
    json(send("POST", "/api/sessions", Call::json(&body)).await?).await
}

pub async fn delete_session(id: &str) -> ApiResult<()> {
    send("DELETE", &format!("/api/sessions/{id}"), Call::default())
        .await
        .map(drop)
}

pub async fn flags() -> ApiResult<FlagsResponse> {
    json(send("GET", "/api/flags", Call::default()).await?).await
}

/// Changes the flag with the admin token; its 401 means the token is wrong.
pub async fn update_flags(admin_token: &str, update: &FlagUpdate) -> ApiResult<()> {
    let call = Call {
        bearer: Some(admin_token),
        own_401: true,
        ..Call::json(update)
    };
    send("PUT", "/api/admin/flags", call).await.map(drop)
}

/// Starts a turn; the answer is the NDJSON stream of the turn.
pub async fn chat(request: &ChatRequest, signal: &AbortSignal) -> ApiResult<Response> {
    let call = Call {
        signal: Some(signal),
        ..Call::json(request)
    };
    send("POST", "/api/v15/chat", call).await
}

/// The session's stored events after `after`, then the running execution's live events.
pub async fn events(session_id: &str, after: u64, signal: &AbortSignal) -> ApiResult<Response> {
    let call = Call {
        signal: Some(signal),
        ..Call::default()
    };
    send(
        "GET",
        &format!("/api/v15/sessions/{session_id}/events?after={after}"),
        call,
    )
    .await
}

/// A decision on a pending approval (`scope` `once` or `session`; `message` is told to Claude on a deny).
pub async fn approve(request: &ApproveRequest) -> ApiResult<()> {
    send("POST", "/api/v15/approve", Call::json(request))
        .await
        .map(drop)
}

/// The session's "allow for this session" rules.
pub async fn rules(session_id: &str) -> ApiResult<RulesResponse> {
    let path = format!("/api/v15/sessions/{session_id}/rules");
    json(send("GET", &path, Call::default()).await?).await
}

/// Forgets one rule: Claude asks again before its next call of `tool_name`.
pub async fn forget_rule(session_id: &str, tool_name: &str) -> ApiResult<()> {
    let tool = String::from(js_sys::encode_uri_component(tool_name));
    let path = format!("/api/v15/sessions/{session_id}/rules/{tool}");
    send("DELETE", &path, Call::default()).await.map(drop)
}

pub async fn cancel(session_id: &str) -> ApiResult<()> {
    send(
        "POST",
        &format!("/api/v15/sessions/{session_id}/cancel"),
        Call::default(),
    )
    .await
    .map(drop)
}

pub async fn clear_events(session_id: &str) -> ApiResult<()> {
    send(
        "DELETE",
        &format!("/api/v15/sessions/{session_id}/events"),
        Call::default(),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            ApiError::from_response(409, r#"{"error":"an execution is already running"}"#),
            ApiError::Status {
                status: 409,
                message: "an execution is already running".into()
            }
        );
        assert_eq!(
            ApiError::from_response(401, r#"{"error":"not signed in"}"#),
            ApiError::Unauthorized("not signed in".into())
        );
        let odd = ApiError::from_response(502, "<html>bad gateway</html>");
        assert_eq!(odd.to_string(), "the server answered 502");
        assert!(matches!(odd, ApiError::Status { status: 502, .. }));
    }
}
