//! The crate's one error type, and the one place where it becomes an HTTP response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vf_protocol::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing or wrong X-Sandbox-Token")]
    Unauthorized,
    /// The message is about the caller's own request and is shown as it is.
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The callback endpoint refused the agent's stream.
    #[error("callback answered HTTP {0}")]
    CallbackStatus(reqwest::StatusCode),
    /// The request to the callback failed; the text is the error with its causes.
    #[error("callback request failed: {0}")]
    Callback(String),
    /// The callback body ended before every line was handed to it.
    #[error("callback stream closed early")]
    CallbackClosed,
    /// The callback connection stopped delivering (nothing reached the DO for a stall window).
    #[error("callback connection stalled")]
    CallbackStalled,
    /// The DO lacks lines the journal no longer holds (it overflowed): the answer cannot be completed.
    #[error("the callback lost lines after aseq {0} that the agent can no longer resend")]
    JournalIncomplete(u64),
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::Callback(describe(e))
    }
}

/// A request's error with its causes, for the log. A reqwest error prints its URL; ours carry no secret, but the
/// rule is that nothing sensitive is logged, so the URL is left out.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Error::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Error::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Error::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, message),
            internal => {
                eprintln!("vf-sandbox: internal error: {internal}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        // Axum answers 415/422 with a plain-text body; the contract is a JSON error, 400 unless the body is too big.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(rejection.body_text())
        } else {
            Error::BadRequest(rejection.body_text())
        }
    }
}
