//! Browser authentication: login with the `claude setup-token` token, the session cookie, logout, `/api/me`.
//!
//! The user id is derived from the Claude token (a keyed hash), so the same token always finds the same sessions
//! and no password store is needed. The token itself is kept in AUTH_KV for the agent and never sent back.
//! The cookie is an HS256 session token (audience `vf-session`, signed with SESSION_SECRET, never accepted as an
//! execution token) naming a login record in AUTH_KV; logout deletes the record, so a stolen cookie dies with it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vf_protocol::api::{mask_token, LoginRequest, Me, CLAUDE_TOKEN_PREFIX};
use vf_protocol::token::{self, SessionClaims, SESSION_TOKEN_TTL_SECS};
use worker::{Env, Headers, Request, Response};

use crate::config::{self, AUTH_KV};
use crate::error::{ApiError, ApiResult};
use crate::http;

const COOKIE: &str = "vf_session";
const MAX_CLAUDE_TOKEN_LEN: usize = 512;

/// What AUTH_KV keeps per user under `user:{userId}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub claude_token: String,
    pub updated_at: u64,
}

/// The signed-in user of a request.
pub struct User {
    pub id: String,
    login_id: String,
}

fn user_key(user_id: &str) -> String {
    format!("user:{user_id}")
}

fn login_key(login_id: &str) -> String {
    format!("login:{login_id}")
}

/// `POST /api/auth/login`.
pub async fn login(mut req: Request, env: &Env) -> ApiResult<Response> {
    let body: LoginRequest = http::read_json(&mut req).await?;
    let claude_token = body.token.trim();
    let well_formed = claude_token.len() <= MAX_CLAUDE_TOKEN_LEN
        && claude_token.len() > CLAUDE_TOKEN_PREFIX.len()
        && claude_token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if !claude_token.starts_with(CLAUDE_TOKEN_PREFIX) || !well_formed {
        return Err(ApiError::BadRequest(format!(
            "token must be the {CLAUDE_TOKEN_PREFIX}… token printed by `claude setup-token`"
        )));
    }
    let session_secret = config::secret(env, "SESSION_SECRET")?;
    let user_id = user_id_for(claude_token, &session_secret);
    let kv = config::kv(env, AUTH_KV)?;
    kv.put(
        &user_key(&user_id),
        serde_json::to_string(&UserRecord {
            claude_token: claude_token.to_string(),
            updated_at: config::now_ms(),
        })
        .expect("records serialize"),
    )?
    .execute()
    .await?;
    let login_id = config::new_id();
    kv.put(&login_key(&login_id), user_id.clone())?
        .expiration_ttl(SESSION_TOKEN_TTL_SECS)
        .execute()
        .await?;
    let claims = SessionClaims::new(
        &user_id,
        &login_id,
        config::now_secs(),
        SESSION_TOKEN_TTL_SECS,
    );
    let cookie_value = token::sign(&claims, session_secret.as_bytes())?;
    let mut response = http::json(
        200,
        &Me {
            user_id,
            token_hint: Some(mask_token(claude_token)),
        },
    );
    set_cookie(
        &req,
        response.headers_mut(),
        &cookie_value,
        SESSION_TOKEN_TTL_SECS,
    )?;
    Ok(response)
}

/// `POST /api/auth/logout`: revokes the login and clears the cookie. Idempotent.
pub async fn logout(req: Request, env: &Env) -> ApiResult<Response> {
    if let Ok(user) = authenticate(&req, env).await {
        config::kv(env, AUTH_KV)?
            .delete(&login_key(&user.login_id))
            .await?;
    }
    let mut response = http::no_content();
    set_cookie(&req, response.headers_mut(), "", 0)?;
    Ok(response)
}

/// `GET /api/me`.
pub async fn me(user: &User, env: &Env) -> ApiResult<Response> {
    let record = load_user(env, &user.id).await?;
    Ok(http::json(
        200,
        &Me {
            user_id: user.id.clone(),
            token_hint: record.map(|r| mask_token(&r.claude_token)),
        },
    ))
}

/// The user of a request: a valid session token (checked first, with no I/O) naming a live login.
pub async fn authenticate(req: &Request, env: &Env) -> ApiResult<User> {
    let value = http::cookie(req, COOKIE).ok_or(ApiError::Unauthorized)?;
    let secret = config::secret(env, "SESSION_SECRET")?;
    let claims: SessionClaims = token::verify(&value, secret.as_bytes(), config::now_secs())?;
    let stored = config::kv(env, AUTH_KV)?
        .get(&login_key(&claims.sid))
        .text()
        .await?;
    if stored.as_deref() != Some(claims.sub.as_str()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(User {
        id: claims.sub,
        login_id: claims.sid,
    })
}

/// The stored record of a user (their Claude token), if any.
pub async fn load_user(env: &Env, user_id: &str) -> ApiResult<Option<UserRecord>> {
    Ok(config::kv(env, AUTH_KV)?
        .get(&user_key(user_id))
        .json::<UserRecord>()
        .await?)
}

/// A keyed hash of the Claude token: stable per token, and useless to anyone without SESSION_SECRET.
fn user_id_for(claude_token: &str, secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(secret.as_bytes())
        .chain_update([0u8])
        .chain_update(claude_token.as_bytes())
        .finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("u-{hex}")
}

fn set_cookie(req: &Request, headers: &mut Headers, value: &str, max_age: u64) -> ApiResult<()> {
    headers.append(
        "Set-Cookie",
        &cookie_header(req.url()?.scheme() == "https", value, max_age),
    )?;
    Ok(())
}

/// The session cookie: out of reach of scripts (HttpOnly), never sent by another site's requests
/// (SameSite=Strict), only over TLS when the site is on https (Secure; plain `http://127.0.0.1` in local dev
/// could not keep it otherwise), and gone after `max_age` seconds, which is also the token's own lifetime.
fn cookie_header(secure: bool, value: &str, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_bounded_and_secure_on_https() {
        let https = cookie_header(true, "tok", SESSION_TOKEN_TTL_SECS);
        assert_eq!(
            https,
            "vf_session=tok; Path=/; HttpOnly; SameSite=Strict; Max-Age=604800; Secure"
        );
        assert!(!cookie_header(false, "tok", 60).contains("Secure"));
        assert!(cookie_header(true, "", 0).contains("Max-Age=0"));
    }
}
