//! The Worker's one error type, and the one place it becomes an HTTP response.

use vf_protocol::api::{ErrorBody, Invalid};
use vf_protocol::token::TokenError;
use worker::Response;

use crate::sandbox::SandboxError;

/// Everything a route can fail with. Only the public message reaches the client; `Internal` details are logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not signed in")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound => 404,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
        }
    }

    /// The response the client sees: `{"error": "…"}` with an honest status; internal details stay in the log.
    pub fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(detail) => {
                worker::console_error!("internal error: {detail}");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        crate::http::json(self.status(), &ErrorBody { error: message })
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<worker::kv::KvError> for ApiError {
    fn from(e: worker::kv::KvError) -> Self {
        ApiError::Internal(format!("kv: {e}"))
    }
}

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A token that does not verify is the caller's problem (401, the same for every reason); a missing signing
/// secret is ours.
impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NoSecret => ApiError::Internal(e.to_string()),
            _ => ApiError::Unauthorized,
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Bad(m) => ApiError::BadRequest(m),
            Invalid::TooLarge(m) => ApiError::TooLarge(m),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
