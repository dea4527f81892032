//! The agent's side of the callback: posting NDJSON to `/internal/stream` with an execution token, and signing
//! such tokens with the stack's secret, as the Worker does for every agent it starts.

use vf_protocol::token::{self, ExecutionClaims};

use crate::client::raw_header;
use crate::Stack;

/// Seconds since 1970, as tokens count time.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A valid execution token for `execution_id` of `session_id`, for ten minutes from now.
pub fn execution_token(stack: &Stack, execution_id: &str, session_id: &str) -> String {
    token::sign(
        &ExecutionClaims::new(execution_id, session_id, now_secs(), 600),
        stack.secrets.jwt.as_bytes(),
    )
    .expect("an execution token")
}

/// `POST /internal/stream` with `Authorization: Bearer <bearer>` (any bytes, as a hostile agent would send them).
pub async fn post_callback(
    stack: &Stack,
    bearer: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    post_callback_authorized(stack, Some(&format!("Bearer {bearer}")), body).await
}

/// `POST /internal/stream` with this `Authorization` header, or none.
pub async fn post_callback_authorized(
    stack: &Stack,
    authorization: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/internal/stream", stack.base))
        .header("Content-Type", "application/x-ndjson")
        .body(body);
    if let Some(value) = authorization {
        request = request.header("Authorization", raw_header(value));
    }
    request.send().await.expect("callback POST")
}
