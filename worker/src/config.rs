//! Reading the Worker's configuration: secrets, variables, bindings, the clock and fresh ids.

use worker::{Env, KvStore, ObjectNamespace, Stub};

use crate::error::{ApiError, ApiResult};

pub const AUTH_KV: &str = "AUTH_KV";
pub const SESSIONS_KV: &str = "SESSIONS_KV";
pub const CHAT_SESSIONS: &str = "CHAT_SESSIONS";

/// A secret (from `.dev.vars` locally, `wrangler secret put` in production). Missing or empty is a deployment
/// error, logged by name only.
pub fn secret(env: &Env, name: &str) -> ApiResult<String> {
    let value = env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .map_err(|_| ApiError::Internal(format!("secret {name} is not configured")))?;
    if value.is_empty() {
        return Err(ApiError::Internal(format!("secret {name} is empty")));
    }
    Ok(value)
}

/// An optional plain variable (`[vars]` in wrangler.toml, or `--var` on `wrangler dev`).
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
}

/// A numeric variable with a default.
pub fn var_u64(env: &Env, name: &str, default: u64) -> u64 {
    var(env, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn kv(env: &Env, name: &str) -> ApiResult<KvStore> {
    Ok(env.kv(name)?)
}

/// The `ChatSessionAgent` of one session.
pub fn chat_session(env: &Env, session_id: &str) -> ApiResult<Stub> {
    let namespace: ObjectNamespace = env.durable_object(CHAT_SESSIONS)?;
    Ok(namespace.id_from_name(session_id)?.get_stub()?)
}

/// Milliseconds since the epoch. `SystemTime::now()` panics inside workerd, so the clock is JavaScript's.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// A fresh random id (UUID v4, from the platform's CSPRNG).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
