//! The `agentChat` flag routes: the user's value, and the admin route that changes the rollout at run time.

use subtle::ConstantTimeEq;
use vf_protocol::flags::{FlagConfig, FlagUpdate};
use worker::{Env, Request, Response};

use crate::auth::User;
use crate::config::{self, SESSIONS_KV};
use crate::error::{ApiError, ApiResult};
use crate::http;

const FLAGS_KEY: &str = "flags:agentChat";

async fn load(env: &Env) -> ApiResult<FlagConfig> {
    Ok(config::kv(env, SESSIONS_KV)?
        .get(FLAGS_KEY)
        .json::<FlagConfig>()
        .await?
        .unwrap_or_default())
}

/// `GET /api/flags`.
pub async fn get(env: &Env, user: &User) -> ApiResult<Response> {
    Ok(http::json(200, &load(env).await?.evaluate(&user.id)))
}

/// `PUT /api/admin/flags` with `Authorization: Bearer <ADMIN_TOKEN>`. Answers the new configuration's view
/// for an anonymous bucket-free caller: the percent and the kill switch.
pub async fn put(mut req: Request, env: &Env) -> ApiResult<Response> {
    let admin = config::secret(env, "ADMIN_TOKEN")?;
    let given = http::bearer(&req).unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(admin.as_bytes())) {
        return Err(ApiError::Unauthorized);
    }
    let update: FlagUpdate = http::read_json(&mut req).await?;
    let mut flags = load(env).await?;
    flags.apply(update).map_err(ApiError::BadRequest)?;
    config::kv(env, SESSIONS_KV)?
        .put(
            FLAGS_KEY,
            serde_json::to_string(&flags).expect("flags serialize"),
        )?
        .execute()
        .await?;
    Ok(http::json(200, &flags))
}
