//! HS256 tokens: execution tokens (agent → `/internal/stream`) and browser session tokens (the login cookie).
//!
//! Written on RustCrypto `hmac` + `sha2` rather than a JWT crate: the only algorithm we accept is HS256, and the
//! JWT crates that build for wasm32 link RSA/ECDSA code we never use (the worker grew 967 KB → 456 KB raw without
//! it, measured). The rules are the strict subset of RFC 7519 we need: the header must say `HS256`, the signature
//! is compared in constant time, `aud` names the token kind (so neither kind stands in for the other), and
//! `exp` and `iat` are checked against a clock the caller passes in (inside workerd the clock is `Date.now()`).
//! We issue no `nbf`: a token is valid from its `iat`, so one issued in the future (beyond a small clock skew)
//! is refused as not yet valid.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Execution tokens live two hours. The bridge timeout (5 min) bounds only the wait for the agent's *first*
/// callback; the token must also cover a long answer and an agent that reconnects its callback after the DO
/// restarted, so it outlives the longest run the agent allows itself (`VF_MAX_RUNTIME_SECS`, 1 hour). A token
/// is further bound to its execution: once that execution ended, the DO refuses it whatever its `exp`.
pub const EXECUTION_TOKEN_TTL_SECS: u64 = 2 * 60 * 60;
/// Browser sessions last a week; logout revokes one earlier.
pub const SESSION_TOKEN_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// Longer input is rejected before any decoding: real tokens of ours are a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 2048;
/// How far in the future a token's `iat` may be (clock skew between the signer and the verifier); beyond it the
/// token is not yet valid. Our signers and verifiers share Cloudflare's clock, so this is generous.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Why a token was refused. The Worker answers every one of them with the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not HS256")]
    Algorithm,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token is of another kind")]
    Audience,
    #[error("token claims are missing or invalid")]
    Claims,
    #[error("no signing secret is configured")]
    NoSecret,
}

/// The claims of one token kind.
pub trait Claims: Serialize + DeserializeOwned {
    /// The `aud` value of this kind.
    const AUDIENCE: &'static str;
    fn expires_at(&self) -> u64;
    fn issued_at(&self) -> u64;
}

/// What the DO signs for one execution: the callback may only write to that execution of that session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionClaims {
    pub aud: String,
    pub execution_id: String,
    pub session_id: String,
    pub iat: u64,
    pub exp: u64,
}

impl Claims for ExecutionClaims {
    const AUDIENCE: &'static str = "vf-execution";
    fn expires_at(&self) -> u64 {
        self.exp
    }
    fn issued_at(&self) -> u64 {
        self.iat
    }
}

impl ExecutionClaims {
    pub fn new(execution_id: &str, session_id: &str, now_secs: u64, ttl_secs: u64) -> Self {
        ExecutionClaims {
            aud: Self::AUDIENCE.into(),
            execution_id: execution_id.into(),
            session_id: session_id.into(),
            iat: now_secs,
            exp: now_secs.saturating_add(ttl_secs),
        }
    }
}

/// What the login cookie carries: the user, and the login (`sid`) that logout revokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The login id.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

impl Claims for SessionClaims {
    const AUDIENCE: &'static str = "vf-session";
    fn expires_at(&self) -> u64 {
        self.exp
    }
    fn issued_at(&self) -> u64 {
        self.iat
    }
}

impl SessionClaims {
    pub fn new(user_id: &str, login_id: &str, now_secs: u64, ttl_secs: u64) -> Self {
        SessionClaims {
            aud: Self::AUDIENCE.into(),
            sub: user_id.into(),
            sid: login_id.into(),
            iat: now_secs,
            exp: now_secs.saturating_add(ttl_secs),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Audience {
    aud: Option<String>,
}

fn mac(secret: &[u8]) -> Result<HmacSha256, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| TokenError::NoSecret)
}

/// Signs `claims` as an HS256 JWT.
pub fn sign<C: Claims>(claims: &C, secret: &[u8]) -> Result<String, TokenError> {
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
    };
    let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes"));
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize")));
    let mut mac = mac(secret)?;
    mac.update(token.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// Verifies an HS256 JWT of kind `C` and returns its claims. Order matters: the signature is checked before the
/// payload is even decoded, so nothing an attacker wrote is parsed beyond the header.
pub fn verify<C: Claims>(token: &str, secret: &[u8], now_secs: u64) -> Result<C, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return Err(TokenError::Malformed);
    }
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return Err(TokenError::Malformed);
    };
    let Some((header, payload)) = signing_input.split_once('.') else {
        return Err(TokenError::Malformed);
    };
    if payload.contains('.') {
        return Err(TokenError::Malformed);
    }
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(TokenError::Malformed)?;
    if header.alg != "HS256" || header.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(TokenError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Signature)?;
    let mut mac = mac(secret)?;
    mac.update(signing_input.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::Signature)?;

    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let audience: Audience = serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)?;
    if audience.aud.as_deref() != Some(C::AUDIENCE) {
        return Err(TokenError::Audience);
    }
    let claims: C = serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)?;
    if claims.expires_at() <= now_secs {
        return Err(TokenError::Expired);
    }
    if claims.issued_at() > now_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn exec_token(ttl: u64) -> String {
        sign(
            &ExecutionClaims::new("exec-1", "session-1", NOW, ttl),
            SECRET,
        )
        .unwrap()
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn verify_exec(token: &str) -> Result<ExecutionClaims, TokenError> {
        verify::<ExecutionClaims>(token, SECRET, NOW)
    }

    // The eight cases of the original plan (task 2).

    #[test]
    fn produces_three_parts() {
        assert_eq!(exec_token(60).split('.').count(), 3);
    }

    #[test]
    fn embeds_execution_and_session_ids() {
        let p = payload(&exec_token(60));
        assert_eq!(p["executionId"], "exec-1");
        assert_eq!(p["sessionId"], "session-1");
    }

    #[test]
    fn exp_is_the_ttl_ahead() {
        let p = payload(&exec_token(EXECUTION_TOKEN_TTL_SECS));
        assert_eq!(p["exp"], NOW + EXECUTION_TOKEN_TTL_SECS);
        assert_eq!(p["iat"], NOW);
    }

    #[test]
    fn valid_token_gives_its_claims() {
        let claims = verify_exec(&exec_token(60)).unwrap();
        assert_eq!(claims.execution_id, "exec-1");
        assert_eq!(claims.session_id, "session-1");
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let token = exec_token(60);
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut p = payload(&token);
        p["sessionId"] = "hacked-session".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&p).unwrap());
        assert_eq!(verify_exec(&parts.join(".")), Err(TokenError::Signature));
    }

    #[test]
    fn expired_token_is_rejected() {
        let token = sign(&ExecutionClaims::new("e", "s", NOW - 600, 300), SECRET).unwrap();
        assert_eq!(verify_exec(&token), Err(TokenError::Expired));
        // Expiry is exclusive: a token is dead at its exp second.
        let token = sign(&ExecutionClaims::new("e", "s", NOW - 300, 300), SECRET).unwrap();
        assert_eq!(verify_exec(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_issued_in_the_future_is_not_yet_valid() {
        let ahead = |secs| sign(&ExecutionClaims::new("e", "s", NOW + secs, 600), SECRET).unwrap();
        assert!(
            verify_exec(&ahead(MAX_CLOCK_SKEW_SECS)).is_ok(),
            "within the skew"
        );
        assert_eq!(
            verify_exec(&ahead(MAX_CLOCK_SKEW_SECS + 1)),
            Err(TokenError::NotYetValid)
        );
        let session = sign(&SessionClaims::new("u", "l", NOW + 3600, 60), SECRET).unwrap();
        assert_eq!(
            verify::<SessionClaims>(&session, SECRET, NOW),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let token = exec_token(60);
        assert_eq!(
            verify::<ExecutionClaims>(&token, b"wrong-secret", NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["not.a.jwt", "", "abc", "a.b", "a.b.c.d", "..", "é.é.é"] {
            assert!(verify_exec(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            verify_exec(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::Malformed)
        );
    }

    // Beyond the plan.

    fn forge(header: &str, claims: &serde_json::Value, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
            sig
        )
    }

    #[test]
    fn other_algorithms_are_rejected() {
        let claims = payload(&exec_token(60));
        for alg in ["none", "HS384", "HS512", "RS256", "hs256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            assert_eq!(
                verify_exec(&forge(&header, &claims, "")),
                Err(TokenError::Algorithm)
            );
            // Even with a valid HS256 MAC over the forged header.
            let unsigned = forge(&header, &claims, "");
            let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
            mac.update(unsigned.trim_end_matches('.').as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
            assert_eq!(
                verify_exec(&format!("{unsigned}{sig}")),
                Err(TokenError::Algorithm)
            );
        }
    }

    #[test]
    fn stripped_or_truncated_signatures_are_rejected() {
        let token = exec_token(60);
        let cut = token.rfind('.').unwrap();
        assert_eq!(verify_exec(&token[..=cut]), Err(TokenError::Signature));
        assert_eq!(
            verify_exec(&token[..token.len() - 4]),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn the_other_token_kind_is_rejected_both_ways() {
        let session = sign(&SessionClaims::new("user-1", "login-1", NOW, 60), SECRET).unwrap();
        assert_eq!(verify_exec(&session), Err(TokenError::Audience));
        let exec = exec_token(60);
        assert_eq!(
            verify::<SessionClaims>(&exec, SECRET, NOW),
            Err(TokenError::Audience)
        );
        assert_eq!(
            verify::<SessionClaims>(&session, SECRET, NOW).unwrap().sub,
            "user-1"
        );
    }

    #[test]
    fn missing_claims_are_rejected() {
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let claims =
            serde_json::json!({"aud": "vf-execution", "executionId": "e", "exp": NOW + 60});
        let unsigned = forge(header, &claims, "");
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(unsigned.trim_end_matches('.').as_bytes());
        let token = format!(
            "{unsigned}{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(verify_exec(&token), Err(TokenError::Claims));
    }

    #[test]
    fn an_empty_secret_signs_and_verifies_nothing() {
        assert_eq!(
            sign(&ExecutionClaims::new("e", "s", NOW, 60), b""),
            Err(TokenError::NoSecret)
        );
        assert_eq!(
            verify::<ExecutionClaims>(&exec_token(60), b"", NOW),
            Err(TokenError::NoSecret)
        );
    }
}
