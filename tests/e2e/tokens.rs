//! Tokens: forged callback and session tokens are refused; execution tokens and cookies are bound and expire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use vf_e2e::callback::{now_secs, post_callback, post_callback_authorized};
use vf_e2e::client::{raw_header, uuid_like};
use vf_e2e::events::texts;
use vf_e2e::process::{chat_with_agent, environ};
use vf_e2e::{Client, Stack};
use vf_protocol::token::{self, ExecutionClaims, MAX_TOKEN_LEN, SESSION_TOKEN_TTL_SECS};

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a hostile callback tries to store.
const INJECTED: &str = "{\"type\":\"text-delta\",\"text\":\"injected\"}\n";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and claims, carrying a valid HMAC-SHA256 over them with `secret`.
fn forge(header: &str, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// The claims of a token (unverified).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Every way a token can be wrong, built from the claims of a valid one (`valid` is what `secret` accepts):
/// other algorithms (with and without a valid MAC), a stripped, missing, truncated or borrowed signature, another
/// secret, expired, issued in the future, each claim missing, the other token kind, too long, not ASCII, empty.
fn hostile_tokens(valid: &Value, secret: &[u8], other_audience: &str) -> Vec<(String, String)> {
    let good = forge(HS256, valid, secret);
    let (input, signature) = good.rsplit_once('.').unwrap();
    let with = |key: &str, value: Value| {
        let mut claims = valid.clone();
        claims[key] = value;
        forge(HS256, &claims, secret)
    };
    let now = now_secs();
    let mut cases = vec![
        (
            "alg none, no signature".into(),
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                input.split_once('.').unwrap().1
            ),
        ),
        ("empty".into(), String::new()),
        ("garbage".into(), "not-a-token".into()),
        ("stripped signature".into(), format!("{input}.")),
        ("no signature part".into(), input.to_string()),
        (
            "truncated signature".into(),
            good[..good.len() - 6].to_string(),
        ),
        (
            "one flipped signature character".into(),
            format!(
                "{input}.{}{}",
                if signature.starts_with('A') { "B" } else { "A" },
                &signature[1..]
            ),
        ),
        (
            "another token's signature".into(),
            format!(
                "{}.{}",
                with("exp", json!(now + 601)).rsplit_once('.').unwrap().0,
                signature
            ),
        ),
        (
            "another secret".into(),
            forge(HS256, valid, b"not-the-secret-of-this-stack"),
        ),
        ("expired".into(), with("exp", json!(now - 1))),
        ("issued an hour from now".into(), {
            let mut claims = valid.clone();
            claims["iat"] = json!(now + 3600);
            claims["exp"] = json!(now + 7200);
            forge(HS256, &claims, secret)
        }),
        (
            "the other token kind".into(),
            with("aud", json!(other_audience)),
        ),
        ("an unknown audience".into(), with("aud", json!("vf-admin"))),
        (
            "exp as a string".into(),
            with("exp", json!((now + 600).to_string())),
        ),
        (
            "over the length limit, validly signed".into(),
            with("pad", json!("p".repeat(MAX_TOKEN_LEN))),
        ),
        ("not ASCII".into(), format!("{input}é.{signature}")),
    ];
    for alg in ["none", "HS384", "HS512", "RS256", "ES256", "hs256", ""] {
        cases.push((
            format!("alg {alg:?} with an HS256 MAC"),
            forge(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#), valid, secret),
        ));
    }
    cases.push(("no alg".into(), forge(r#"{"typ":"JWT"}"#, valid, secret)));
    for key in valid.as_object().unwrap().keys() {
        let mut claims = valid.clone();
        claims.as_object_mut().unwrap().remove(key);
        cases.push((format!("no {key}"), forge(HS256, &claims, secret)));
    }
    cases
}

/// The status of `method path` with the session cookie set to `token`.
async fn with_session_token(stack: &Stack, method: Method, path: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .request(method, format!("{}{path}", stack.base))
        .header("Cookie", raw_header(&format!("vf_session={token}")))
        .header("Content-Type", "application/json")
        .body(r#"{"name":"forged"}"#)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Item 1: Callback tokens: every forged or damaged execution token is refused with 401 by the Worker, before any
/// Durable Object wakes: other algorithms (with and without a valid MAC), stripped, truncated or borrowed
/// signatures, another secret, expired, claims missing, the other token kind, too long, not ASCII, no
/// `Authorization` or another scheme, a browser's session cookie. The control proves first that a valid token
/// reaches a DO, so the count can move; the count is read again once a marker stored after every refused request
/// is on disk.
pub async fn security_callback_tokens_are_refused_before_a_do_wakes(stack: &Stack) {
    let jwt = stack.secrets.jwt.as_bytes();
    let now = now_secs();
    let claims = |session_id: &str| {
        json!({
            "aud": "vf-execution",
            "executionId": uuid_like(),
            "sessionId": session_id,
            "iat": now,
            "exp": now + 600,
        })
    };

    // The control: a valid token for a session that has no DO yet reaches one (which wakes, and has no such
    // execution).
    let before = stack.durable_object_count();
    let response = post_callback(stack, &forge(HS256, &claims(&uuid_like()), jwt), INJECTED).await;
    assert_eq!(
        response.status().as_u16(),
        404,
        "the valid token reaches a DO"
    );
    stack.wait_for_durable_objects(before + 1).await;

    // Every hostile token names another session without a DO: had one got through, that DO would wake.
    let valid = claims(&uuid_like());
    let mut cases = hostile_tokens(&valid, jwt, "vf-session");
    let user = Client::login(&stack.base).await;
    cases.push((
        "a browser's session cookie".into(),
        user.session_token.clone(),
    ));
    cases.push((
        "the execution claims signed with SESSION_SECRET".into(),
        forge(HS256, &valid, stack.secrets.session.as_bytes()),
    ));
    let mut long_expired = valid.clone();
    long_expired["iat"] = json!(now - 7200);
    long_expired["exp"] = json!(now - 7140);
    cases.push((
        "expired two hours ago".into(),
        forge(HS256, &long_expired, jwt),
    ));
    cases.push(("16 KiB".into(), "a".repeat(16 * 1024)));
    cases.push(("60 KiB".into(), "a".repeat(60 * 1024)));
    for (case, bearer) in &cases {
        let response = post_callback(stack, bearer, INJECTED).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 401, "{case}");
        assert!(
            bearer.len() < 8 || !body.contains(bearer.as_str()),
            "{case}: the token is echoed"
        );
    }
    let signed = forge(HS256, &valid, jwt);
    let headers = [
        ("no Authorization header", None),
        ("lowercase scheme", Some(format!("bearer {signed}"))),
        ("Basic scheme", Some(format!("Basic {signed}"))),
        ("token in no scheme", Some(signed.clone())),
    ];
    for (case, authorization) in &headers {
        let response = post_callback_authorized(stack, authorization.as_deref(), INJECTED).await;
        assert_eq!(response.status().as_u16(), 401, "{case}");
    }

    // The marker: a turn of a new session, stored after every refused request above. Once it is on disk, so is
    // the storage of any DO those requests woke: only the control's DO and the marker's are new.
    let session = user.client.create_session().await;
    let marker = format!("marker-{}", uuid_like());
    user.client
        .turn(&session.id, &format!("[fixture:text] {marker}"))
        .await;
    stack.wait_for_stored(&marker).await;
    assert_eq!(
        stack.durable_object_count(),
        before + 2,
        "a refused callback woke a Durable Object"
    );
    println!(
        "    {} hostile callback tokens refused, no DO woken",
        cases.len() + headers.len()
    );
}

/// Item 1: Execution tokens are bound to their session and execution, and die with their execution: a validly signed
/// token naming another session, another execution, or an execution that has ended gets 404 from the DO and
/// stores nothing, while the agent's own token (read from its environment) works until its execution ends.
pub async fn security_execution_tokens_are_bound_to_their_execution(stack: &Stack) {
    let jwt = stack.secrets.jwt.as_bytes();
    let alice = Client::login(&stack.base).await;
    let bob = Client::login(&stack.base).await;
    let session = alice.client.create_session().await;
    let bobs = bob.client.create_session().await;
    let (stream, execution, agent) =
        chat_with_agent(&alice.client, &session.id, "[fixture:hang] hold on").await;
    let real = environ(agent)["VF_STREAM_JWT"].clone();
    let claims = claims_of(&real);
    assert_eq!(claims["aud"], "vf-execution");
    assert_eq!(claims["executionId"], execution.as_str());
    assert_eq!(claims["sessionId"], session.id.as_str());

    let now = now_secs();
    let sign = |execution_id: &str, session_id: &str| {
        token::sign(
            &ExecutionClaims::new(execution_id, session_id, now, 600),
            jwt,
        )
        .unwrap()
    };
    let line = |tag: &str| format!("{{\"type\":\"text-delta\",\"text\":\"injected-{tag}\"}}\n");
    let before = stack.durable_object_count();
    for (case, bearer, status) in [
        (
            "this execution, another user's session",
            sign(&execution, &bobs.id),
            404,
        ),
        (
            "another execution of this session",
            sign(&uuid_like(), &session.id),
            404,
        ),
        (
            "this execution of a session that does not exist",
            sign(&execution, &uuid_like()),
            404,
        ),
        (
            "the right claims signed with SESSION_SECRET",
            token::sign(
                &ExecutionClaims::new(&execution, &session.id, now, 600),
                stack.secrets.session.as_bytes(),
            )
            .unwrap(),
            401,
        ),
    ] {
        let response = post_callback(stack, &bearer, line(case)).await;
        assert_eq!(response.status().as_u16(), status, "{case}");
    }
    // The control: the agent's own token is accepted while its execution runs.
    let response = post_callback(stack, &real, line("control")).await;
    assert_eq!(response.status().as_u16(), 200, "the agent's own token");
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["stored"], 1);

    alice.client.cancel(&session.id).await;
    stream.collect().await;
    for (case, bearer) in [
        ("the agent's token after its execution ended", real.clone()),
        (
            "a fresh token for the ended execution",
            sign(&execution, &session.id),
        ),
    ] {
        let response = post_callback(stack, &bearer, line(case)).await;
        assert_eq!(response.status().as_u16(), 404, "{case}");
    }

    let log = alice.client.stored(&session.id).await;
    let injected: Vec<String> = texts(&log)
        .into_iter()
        .filter(|t| t.starts_with("injected-"))
        .collect();
    assert_eq!(
        injected,
        ["injected-control"],
        "only the control was stored"
    );
    assert!(
        bob.client.stored(&bobs.id).await.is_empty(),
        "the other session is untouched"
    );
    // One more DO: the session that does not exist (a valid signature reaches its DO, which is empty); the
    // refused ones named sessions that have one.
    stack.wait_for_durable_objects(before + 1).await;
    // A refused body is read to its end before the DO answers, so the Worker's pump of it never fails.
    assert!(
        !stack.logs().contains("Can't read from request stream"),
        "a refused callback broke the Worker's request stream"
    );
}

/// Item 1: Session cookies: every forged or damaged session token, an execution token, and a validly signed token for
/// a login that does not exist are refused with 401 on every authenticated route; the control (a token forged
/// with the real secret for the real login) proves the forgeries differ from a good cookie only where they say.
pub async fn security_session_cookies_are_refused_when_forged(stack: &Stack) {
    let secret = stack.secrets.session.as_bytes();
    let user = Client::login(&stack.base).await;
    let valid = claims_of(&user.session_token);
    assert_eq!(valid["aud"], "vf-session");
    let mut cases = hostile_tokens(&valid, secret, "vf-execution");
    let now = now_secs();
    let mut unknown_login = valid.clone();
    unknown_login["sid"] = json!(uuid_like());
    cases.push((
        "a login that never happened".into(),
        forge(HS256, &unknown_login, secret),
    ));
    let mut other_user = valid.clone();
    other_user["sub"] = json!("u-000000000000000000000000");
    cases.push((
        "another user id on this login".into(),
        forge(HS256, &other_user, secret),
    ));
    cases.push((
        "the cookie's claims signed with JWT_SECRET".into(),
        forge(HS256, &valid, stack.secrets.jwt.as_bytes()),
    ));
    cases.push((
        "an execution token".into(),
        token::sign(
            &ExecutionClaims::new("e", "s", now, 600),
            stack.secrets.jwt.as_bytes(),
        )
        .unwrap(),
    ));
    cases.push(("16 KiB".into(), "a".repeat(16 * 1024)));

    let sessions_before = user.client.get("/api/sessions").await.text().await.unwrap();
    for (case, token) in &cases {
        for (method, path) in [
            (Method::GET, "/api/me"),
            (Method::GET, "/api/sessions"),
            (Method::POST, "/api/sessions"),
            (Method::GET, "/api/flags"),
        ] {
            let status = with_session_token(stack, method.clone(), path, token).await;
            assert_eq!(status, 401, "{case} on {method} {path}");
        }
    }
    assert_eq!(
        user.client.get("/api/sessions").await.text().await.unwrap(),
        sessions_before,
        "no forged cookie created a session"
    );
    println!(
        "    {} hostile session tokens refused on 4 routes",
        cases.len()
    );
    let control = forge(HS256, &valid, secret);
    assert_eq!(
        with_session_token(stack, Method::GET, "/api/me", &control).await,
        200
    );
}

/// Item 3: The cookie: HttpOnly, SameSite=Strict, Path=/, a bounded lifetime equal to the token's (Secure on https is
/// a unit test in worker/src/auth.rs, as the local stack is plain http); logout revokes that login on the server,
/// so the old cookie is refused everywhere, and leaves the user's other logins alone.
pub async fn security_cookie_is_strict_bounded_and_dies_at_logout(stack: &Stack) {
    let first = Client::login(&stack.base).await;
    let attributes: Vec<String> = first
        .set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for needed in ["httponly", "samesite=strict", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == needed),
            "{needed} in {}",
            first.set_cookie
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain=")),
        "host-only: {}",
        first.set_cookie
    );
    let max_age: u64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("max-age="))
        .expect("a Max-Age")
        .parse()
        .unwrap();
    assert!(
        max_age > 0 && max_age <= SESSION_TOKEN_TTL_SECS,
        "Max-Age {max_age}"
    );
    let claims = claims_of(&first.session_token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        max_age,
        "the token dies with the cookie"
    );

    // A second login of the same user (another device).
    let other_device = Client::login_with(&stack.base, &first.claude_token)
        .await
        .client;

    let session = first.client.create_session().await;
    let logout = first.client.post("/api/auth/logout", json!({})).await;
    assert_eq!(logout.status().as_u16(), 204);
    let cleared = logout.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.starts_with("vf_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for (route, status) in [
        ("me", first.client.get("/api/me").await.status()),
        ("sessions", first.client.get("/api/sessions").await.status()),
        (
            "create",
            first.client.post("/api/sessions", json!({})).await.status(),
        ),
        (
            "chat",
            first
                .client
                .post(
                    "/api/v15/chat",
                    json!({"sessionId": session.id, "prompt": "hi"}),
                )
                .await
                .status(),
        ),
        (
            "events",
            first
                .client
                .get(&format!("/api/v15/sessions/{}/events", session.id))
                .await
                .status(),
        ),
        (
            "delete",
            first
                .client
                .delete(&format!("/api/sessions/{}", session.id))
                .await
                .status(),
        ),
    ] {
        assert_eq!(status.as_u16(), 401, "the old cookie after logout: {route}");
    }
    assert_eq!(
        first
            .client
            .post("/api/auth/logout", json!({}))
            .await
            .status()
            .as_u16(),
        204,
        "idempotent"
    );
    assert_eq!(
        other_device.get("/api/me").await.status().as_u16(),
        200,
        "the other login lives on"
    );
    let listed: Vec<Value> = other_device
        .get("/api/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed.iter().any(|s| s["id"] == session.id.as_str()),
        "the user's sessions outlive a logout"
    );
}
