//! Security and hostile input: nobody gets in, bad input gets a clear answer, nothing stored is lost.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::join_all;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vf_e2e::client::{uuid_like, Line};
use vf_e2e::stack::alive;
use vf_e2e::{Client, EventStream, Stack};
use vf_protocol::api::{CLAUDE_TOKEN_PREFIX, MAX_PROMPT_BYTES};
use vf_protocol::token::{self, ExecutionClaims, MAX_TOKEN_LEN, SESSION_TOKEN_TTL_SECS};
use vf_protocol::{ErrorCode, Event};

use crate::durable::wait_for_terminal;
use crate::failures::{execution_id, wait_for_agent};

/// The base64url header of every token we issue (`{"alg":"HS256","typ":"JWT"}`): finding it in a log means a
/// session cookie or an execution token leaked there.
const OUR_TOKEN_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const EVIL_ORIGIN: &str = "https://evil.example";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

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

/// A header value from any bytes (non-ASCII included, as a hostile client would send them).
fn raw_header(value: &str) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes()).expect("no control characters")
}

async fn post_callback(
    stack: &Stack,
    bearer: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/internal/stream", stack.base))
        .header("Content-Type", "application/x-ndjson")
        .header("Authorization", raw_header(&format!("Bearer {bearer}")))
        .body(body)
        .send()
        .await
        .expect("callback POST")
}

/// A signed-in user who also keeps what the login handed out: the Claude token and the raw cookie.
struct Login {
    client: Client,
    claude_token: String,
    /// The `Set-Cookie` header of the login.
    set_cookie: String,
    /// The session token (the cookie's value).
    session_token: String,
}

async fn login(stack: &Stack) -> Login {
    let mut client = Client::new(&stack.base);
    let claude_token = format!("{CLAUDE_TOKEN_PREFIX}test-{}", uuid_like());
    let response = client
        .post("/api/auth/login", json!({ "token": claude_token }))
        .await;
    assert_eq!(response.status().as_u16(), 200, "login");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.text().await.unwrap();
    assert!(
        !body.contains(&claude_token),
        "the login answer echoes the Claude token: {body}"
    );
    let pair = set_cookie.split(';').next().unwrap().to_string();
    let session_token = pair
        .strip_prefix("vf_session=")
        .expect("the vf_session cookie")
        .to_string();
    client.cookie = Some(pair);
    Login {
        client,
        claude_token,
        set_cookie,
        session_token,
    }
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

/// A process's environment.
fn environ(pid: u32) -> HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .expect("a live process")
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let (k, v) = std::str::from_utf8(kv).ok()?.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The pid of a live child of `parent` named `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let name = stat.split_once('(')?.1.rsplit_once(')')?.0;
            let ppid: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent && name == comm).then_some(pid)
        })
}

async fn cancel(client: &Client, session_id: &str) {
    let response = client
        .post(&format!("/api/v15/sessions/{session_id}/cancel"), json!({}))
        .await;
    assert_eq!(response.status().as_u16(), 200, "cancel");
}

/// Every text of a log's text deltas.
fn texts(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match &l.envelope.event {
            Event::TextDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn user_messages(lines: &[Line]) -> usize {
    lines
        .iter()
        .filter(|l| matches!(l.envelope.event, Event::UserMessage { .. }))
        .count()
}

/// The whole stored log, serialized, for before/after comparisons.
async fn log_snapshot(client: &Client, session_id: &str) -> Vec<String> {
    client
        .events(session_id, 0)
        .await
        .collect()
        .await
        .iter()
        .map(|l| serde_json::to_string(&l.envelope).unwrap())
        .collect()
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// Item 1: Callback tokens: every forged or damaged execution token is refused with 401 by the Worker, before any
/// Durable Object wakes (extends `callback.rs` with the other algorithms, signatures, claims, lengths, the other
/// token kind and real browser cookies); the control proves the same shape with a valid signature does reach one.
pub async fn security_callback_tokens_are_refused_in_the_worker(stack: &Stack) {
    let jwt = stack.secrets.jwt.as_bytes();
    let session_id = uuid_like();
    let now = now_secs();
    let valid = json!({
        "aud": "vf-execution",
        "executionId": uuid_like(),
        "sessionId": session_id,
        "iat": now,
        "exp": now + 600,
    });
    let mut cases = hostile_tokens(&valid, jwt, "vf-session");
    let user = login(stack).await;
    cases.push((
        "a browser's session cookie".into(),
        user.session_token.clone(),
    ));
    cases.push((
        "the execution claims signed with SESSION_SECRET".into(),
        forge(HS256, &valid, stack.secrets.session.as_bytes()),
    ));
    cases.push(("16 KiB".into(), "a".repeat(16 * 1024)));
    cases.push(("60 KiB".into(), "a".repeat(60 * 1024)));

    let before = stack.durable_object_count();
    for (case, bearer) in &cases {
        let response = post_callback(
            stack,
            bearer,
            "{\"type\":\"text-delta\",\"text\":\"injected\"}\n",
        )
        .await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 401, "{case}");
        assert!(
            bearer.len() < 8 || !body.contains(bearer.as_str()),
            "{case}: the token is echoed"
        );
    }
    for (case, header) in [
        (
            "lowercase scheme",
            format!("bearer {}", forge(HS256, &valid, jwt)),
        ),
        (
            "Basic scheme",
            format!("Basic {}", forge(HS256, &valid, jwt)),
        ),
        ("token in no scheme", forge(HS256, &valid, jwt)),
    ] {
        let status = reqwest::Client::new()
            .post(format!("{}/internal/stream", stack.base))
            .header("Authorization", header)
            .body("")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 401, "{case}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.durable_object_count(),
        before,
        "a refused callback woke a Durable Object"
    );
    println!(
        "    {} hostile callback tokens refused, no DO woken",
        cases.len() + 3
    );

    // The control: the valid token reaches the (new, empty) DO, which has no such execution.
    let response = post_callback(stack, &forge(HS256, &valid, jwt), "").await;
    assert_eq!(
        response.status().as_u16(),
        404,
        "the valid token reaches a DO"
    );
}

/// Item 1: Execution tokens are bound to their session and execution, and die with their execution: a validly signed
/// token naming another session, another execution, or an execution that has ended gets 404 from the DO and
/// stores nothing, while the agent's own token (read from its environment) works until its execution ends.
pub async fn security_execution_tokens_are_bound_to_their_execution(stack: &Stack) {
    let jwt = stack.secrets.jwt.as_bytes();
    let alice = login(stack).await;
    let bob = login(stack).await;
    let session = alice.client.create_session().await;
    let bobs = bob.client.create_session().await;
    let mut stream = alice
        .client
        .chat(&session.id, "[fixture:hang] hold on")
        .await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    let agent = wait_for_agent(&execution).await;
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

    cancel(&alice.client, &session.id).await;
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

    let log = alice.client.events(&session.id, 0).await.collect().await;
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
        bob.client
            .events(&bobs.id, 0)
            .await
            .collect()
            .await
            .is_empty(),
        "the other session is untouched"
    );
    // One more DO at most: the session that does not exist (a valid signature reaches its DO, which is empty).
    assert!(stack.durable_object_count() <= before + 1);
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
    let user = login(stack).await;
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

/// Item 2: Ownership: every route that takes a session id answers 404 for another user's session, the same 404 as
/// for a session that does not exist, and changes nothing.
pub async fn security_another_users_session_is_404_on_every_route(stack: &Stack) {
    let alice = Client::signed_in(&stack.base).await;
    let mallory = Client::signed_in(&stack.base).await;
    let session = alice.create_session().await;
    let turn = alice
        .chat(&session.id, "[fixture:text] mine")
        .await
        .collect()
        .await;
    assert!(turn.last().unwrap().envelope.event.is_terminal());
    let before = log_snapshot(&alice, &session.id).await;

    let ws = |client: &Client, id: &str| {
        let mut request = client
            .http
            .get(format!("{}/api/sdk/ws?sessionId={id}", client.base))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(cookie) = &client.cookie {
            request = request.header("Cookie", cookie);
        }
        request
    };
    let nobody = uuid_like();
    for id in [session.id.as_str(), nobody.as_str()] {
        let whose = if id == session.id {
            "another user's session"
        } else {
            "a session that does not exist"
        };
        let answers = [
            (
                "chat",
                mallory
                    .post(
                        "/api/v15/chat",
                        json!({"sessionId": id, "prompt": "[fixture:text] hijack"}),
                    )
                    .await,
            ),
            (
                "events",
                mallory
                    .get(&format!("/api/v15/sessions/{id}/events?after=0"))
                    .await,
            ),
            (
                "cancel",
                mallory
                    .post(&format!("/api/v15/sessions/{id}/cancel"), json!({}))
                    .await,
            ),
            (
                "clear",
                mallory
                    .delete(&format!("/api/v15/sessions/{id}/events"))
                    .await,
            ),
            (
                "delete",
                mallory.delete(&format!("/api/sessions/{id}")).await,
            ),
            ("legacy WebSocket", ws(&mallory, id).send().await.unwrap()),
        ];
        for (route, response) in answers {
            assert_eq!(response.status().as_u16(), 404, "{route} of {whose}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body,
                json!({"error": "not found"}),
                "{route} of {whose}: the same 404 either way"
            );
        }
    }
    let listed: Vec<Value> = mallory.get("/api/sessions").await.json().await.unwrap();
    assert!(
        listed.is_empty(),
        "another user's sessions are not listed: {listed:?}"
    );
    assert_eq!(
        log_snapshot(&alice, &session.id).await,
        before,
        "nothing changed"
    );
    let mine: Vec<Value> = alice.get("/api/sessions").await.json().await.unwrap();
    assert!(
        mine.iter().any(|s| s["id"] == session.id.as_str()),
        "still Alice's"
    );
    // The control: the same upgrade request from the owner passes the ownership check.
    let own = ws(&alice, &session.id).send().await.unwrap();
    assert_eq!(
        own.status().as_u16(),
        101,
        "the owner's upgrade is accepted"
    );
}

/// Item 3: The cookie: HttpOnly, SameSite=Strict, Path=/, a bounded lifetime equal to the token's (Secure on https is
/// a unit test in worker/src/auth.rs, as the local stack is plain http); logout revokes that login on the server,
/// so the old cookie is refused everywhere, and leaves the user's other logins alone.
pub async fn security_cookie_is_strict_bounded_and_dies_at_logout(stack: &Stack) {
    let first = login(stack).await;
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
    let mut other_device = Client::new(&stack.base);
    let response = other_device
        .post("/api/auth/login", json!({"token": first.claude_token}))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    other_device.cookie = Some(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
    );

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

/// Item 3: State-changing routes (and the legacy WebSocket upgrade) refuse a request from another site's page by its
/// `Origin`, and change nothing; the site's own origin is accepted, and reads stay unreadable cross-site (no CORS).
pub async fn security_cross_site_requests_are_refused(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let http = &user.http;
    let cookie = user.cookie.clone().unwrap();
    let send = |method: Method, path: &str, origin: &str, body: Value| {
        http.request(method, format!("{}{path}", stack.base))
            .header("Cookie", &cookie)
            .header("Origin", origin)
            .json(&body)
            .send()
    };
    let sessions_before = user.get("/api/sessions").await.text().await.unwrap();
    let id = &session.id;
    for origin in [
        EVIL_ORIGIN,
        "null",
        "http://127.0.0.1.evil.example",
        &stack.base.replace("127.0.0.1", "localhost"),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/sessions".to_string(),
                json!({"name": "csrf"}),
            ),
            (Method::DELETE, format!("/api/sessions/{id}"), json!({})),
            (
                Method::POST,
                "/api/v15/chat".to_string(),
                json!({"sessionId": id, "prompt": "[fixture:text] csrf"}),
            ),
            (
                Method::POST,
                format!("/api/v15/sessions/{id}/cancel"),
                json!({}),
            ),
            (
                Method::DELETE,
                format!("/api/v15/sessions/{id}/events"),
                json!({}),
            ),
            (Method::POST, "/api/auth/logout".to_string(), json!({})),
            (
                Method::POST,
                "/api/auth/login".to_string(),
                json!({"token": format!("{CLAUDE_TOKEN_PREFIX}attacker-{}", uuid_like())}),
            ),
            (
                Method::PUT,
                "/api/admin/flags".to_string(),
                json!({"rolloutPercent": 0}),
            ),
        ] {
            let response = send(method.clone(), &path, origin, body).await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                403,
                "{method} {path} from {origin}"
            );
            assert!(
                response.headers().get("set-cookie").is_none(),
                "no cookie for a refused {path}"
            );
        }
        let upgrade = http
            .get(format!("{}/api/sdk/ws?sessionId={id}", stack.base))
            .header("Cookie", &cookie)
            .header("Origin", origin)
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        assert_eq!(
            upgrade.status().as_u16(),
            403,
            "WebSocket upgrade from {origin}"
        );
    }
    assert_eq!(
        user.get("/api/sessions").await.text().await.unwrap(),
        sessions_before,
        "nothing created or deleted"
    );
    assert!(
        user.events(&session.id, 0).await.collect().await.is_empty(),
        "nothing ran"
    );
    assert_eq!(
        user.get("/api/me").await.status().as_u16(),
        200,
        "still signed in"
    );

    let own = send(
        Method::POST,
        "/api/sessions",
        &stack.base,
        json!({"name": "own"}),
    )
    .await
    .unwrap();
    assert_eq!(
        own.status().as_u16(),
        201,
        "the site's own origin is accepted"
    );
    let read = http
        .get(format!("{}/api/sessions", stack.base))
        .header("Cookie", &cookie)
        .header("Origin", EVIL_ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(
        read.headers().get("access-control-allow-origin").is_none(),
        "no CORS grant to other sites"
    );
}

/// The inline scripts of a page, and the `src` of its other scripts.
fn scripts(html: &str) -> (Vec<String>, Vec<String>) {
    let (mut inline, mut external) = (Vec::new(), Vec::new());
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let open_end = after.find('>').expect("a script tag ends");
        let tag = &after[..open_end];
        let close = after.find("</script>").expect("a script element ends");
        if let Some(src) = tag.split("src=\"").nth(1) {
            external.push(src.split('"').next().unwrap().to_string());
        } else {
            inline.push(after[open_end + 1..close].replace("\r\n", "\n"));
        }
        rest = &after[close + "</script>".len()..];
    }
    (inline, external)
}

/// One directive of a policy, as its source list.
fn directive<'a>(policy: &'a str, name: &str) -> Vec<&'a str> {
    policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
        .map(|sources| sources.split_whitespace().collect())
        .unwrap_or_default()
}

/// Item 3: The static pages carry a Content-Security-Policy the app runs under (its only inline script, trunk's wasm
/// loader, allowed by hash; wasm by 'wasm-unsafe-eval'; nothing inline otherwise, no eval, no foreign origin),
/// a frame policy and nosniff; the assets carry nosniff too; `_headers` itself is not served; and every kind of
/// API response (JSON, NDJSON, 204, errors) carries nosniff and an inert `default-src 'none'` policy.
pub async fn security_pages_and_api_carry_security_headers(stack: &Stack) {
    let http = reqwest::Client::new();
    let mut assets = Vec::new();
    for path in ["/", "/login", "/s/some-session", "/admin"] {
        let response = http
            .get(format!("{}{path}", stack.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        assert!(html.contains("<!DOCTYPE html>"), "{path} is the app");
        let policy = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has a Content-Security-Policy"))
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            directive(&policy, "frame-ancestors"),
            ["'none'"],
            "{path}: {policy}"
        );
        assert_eq!(
            directive(&policy, "object-src"),
            ["'none'"],
            "{path}: {policy}"
        );
        assert_eq!(
            directive(&policy, "base-uri"),
            ["'none'"],
            "{path}: {policy}"
        );
        assert_eq!(
            directive(&policy, "default-src"),
            ["'self'"],
            "{path}: {policy}"
        );
        assert_eq!(
            directive(&policy, "connect-src"),
            ["'self'"],
            "{path}: {policy}"
        );
        let script_src = directive(&policy, "script-src");
        assert!(
            script_src.contains(&"'self'") && script_src.contains(&"'wasm-unsafe-eval'"),
            "{policy}"
        );
        for forbidden in [
            "'unsafe-inline'",
            "'unsafe-eval'",
            "*",
            "data:",
            "http:",
            "https:",
        ] {
            assert!(
                !script_src.contains(&forbidden),
                "script-src allows {forbidden}: {policy}"
            );
        }
        assert!(
            !directive(&policy, "style-src").contains(&"'unsafe-inline'"),
            "{policy}"
        );
        let (inline, external) = scripts(&html);
        assert!(!inline.is_empty(), "{path}: trunk's loader is inline");
        for script in &inline {
            let hash = format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))
            );
            assert!(
                script_src.contains(&hash.as_str()),
                "{path}: the inline script {hash} is allowed by {policy}"
            );
        }
        assert_eq!(
            script_src
                .iter()
                .filter(|s| s.starts_with("'sha256-"))
                .count(),
            inline.len(),
            "no other inline script is allowed"
        );
        let links = html
            .split("href=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string());
        for src in external.into_iter().chain(links) {
            assert!(
                src.starts_with('/') && !src.starts_with("//"),
                "{path} loads {src} from another origin"
            );
            assets.push(src);
        }
    }
    assets.sort();
    assets.dedup();
    assert!(
        assets.iter().any(|a| a.ends_with(".wasm")) && assets.iter().any(|a| a.ends_with(".js")),
        "{assets:?}"
    );
    for asset in &assets {
        let response = http
            .get(format!("{}{asset}", stack.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{asset}"
        );
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        if asset.ends_with(".wasm") {
            assert_eq!(content_type, "application/wasm");
        }
        if asset.ends_with(".js") {
            assert!(
                content_type.contains("javascript"),
                "{asset}: {content_type}"
            );
        }
    }
    let rules = http
        .get(format!("{}/_headers", stack.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !rules.contains("Content-Security-Policy:"),
        "the _headers file is not served"
    );

    // The API: every kind of response.
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let chat = user.chat(&session.id, "[fixture:text] hi").await;
    chat.collect().await;
    let responses = [
        (
            "401",
            http.get(format!("{}/api/me", stack.base))
                .send()
                .await
                .unwrap(),
        ),
        ("JSON", user.get("/api/me").await),
        (
            "NDJSON",
            user.get(&format!("/api/v15/sessions/{}/events?after=0", session.id))
                .await,
        ),
        (
            "204",
            user.delete(&format!("/api/v15/sessions/{}/events", session.id))
                .await,
        ),
        ("unknown API route", user.get("/api/nothing-here").await),
        ("400", user.post_raw("/api/v15/chat", "{").await),
        ("callback 401", post_callback(stack, "x", "").await),
    ];
    for (kind, response) in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{kind}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{kind}"
        );
        assert_eq!(headers["cache-control"], "no-store", "{kind}");
    }
}

/// One malformed request and the answer it must get.
struct Bad {
    case: &'static str,
    method: Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    /// What the error message must mention.
    message: &'static str,
}

fn bad(
    case: &'static str,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Bad {
    Bad {
        case,
        method,
        path: path.to_string(),
        body: body.into(),
        status,
        message,
    }
}

/// Item 4: Bad input: each malformed request gets a 4xx with a clear `{"error"}` message (never a 5xx), and none
/// of them changes the session's stored transcript or creates anything; the session still works afterwards.
pub async fn security_bad_input_gets_a_clear_4xx_and_loses_nothing(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let turn = user
        .chat(&session.id, "[fixture:text] keep this")
        .await
        .collect()
        .await;
    assert!(turn.last().unwrap().envelope.event.is_terminal());
    let before = log_snapshot(&user, &session.id).await;
    let sessions_before = user.get("/api/sessions").await.text().await.unwrap();
    let id = session.id.as_str();
    let chat = |case, body: Value, status, message| {
        bad(
            case,
            Method::POST,
            "/api/v15/chat",
            body.to_string(),
            status,
            message,
        )
    };
    let raw_chat =
        |case, body: &[u8], message| bad(case, Method::POST, "/api/v15/chat", body, 400, message);
    let login = |case, body: Value, message| {
        bad(
            case,
            Method::POST,
            "/api/auth/login",
            body.to_string(),
            400,
            message,
        )
    };
    let unknown = uuid_like();
    let cases = [
        raw_chat("invalid JSON", b"{\"sessionId\":", "invalid JSON"),
        raw_chat("empty body", b"", "empty"),
        raw_chat(
            "not UTF-8",
            b"{\"sessionId\":\"\xff\xfe\",\"prompt\":\"hi\"}",
            "invalid JSON",
        ),
        raw_chat("not an object", b"[1,2]", "invalid"),
        raw_chat("null", b"null", "invalid"),
        chat("missing prompt", json!({"sessionId": id}), 400, "prompt"),
        chat(
            "missing sessionId",
            json!({"prompt": "hi"}),
            400,
            "sessionId",
        ),
        chat(
            "sessionId of the wrong type",
            json!({"sessionId": 7, "prompt": "hi"}),
            400,
            "invalid type",
        ),
        chat(
            "prompt of the wrong type",
            json!({"sessionId": id, "prompt": ["hi"]}),
            400,
            "invalid type",
        ),
        chat(
            "unknown mode",
            json!({"sessionId": id, "prompt": "hi", "mode": "god"}),
            400,
            "unknown variant",
        ),
        chat(
            "bad model",
            json!({"sessionId": id, "prompt": "hi", "model": "a b; rm -rf /"}),
            400,
            "model",
        ),
        chat(
            "empty prompt",
            json!({"sessionId": id, "prompt": ""}),
            400,
            "prompt is empty",
        ),
        chat(
            "blank prompt",
            json!({"sessionId": id, "prompt": " \n\t "}),
            400,
            "prompt is empty",
        ),
        chat(
            "prompt one byte over the limit",
            json!({"sessionId": id, "prompt": "x".repeat(MAX_PROMPT_BYTES + 1)}),
            413,
            "262144",
        ),
        chat(
            "1 MB prompt",
            json!({"sessionId": id, "prompt": "x".repeat(1 << 20)}),
            413,
            "limit",
        ),
        chat(
            "malformed sessionId",
            json!({"sessionId": "../../etc/passwd", "prompt": "hi"}),
            400,
            "sessionId",
        ),
        chat(
            "unknown session",
            json!({"sessionId": unknown, "prompt": "hi"}),
            404,
            "not found",
        ),
        bad(
            "events of an unknown session",
            Method::GET,
            &format!("/api/v15/sessions/{unknown}/events"),
            "",
            404,
            "not found",
        ),
        bad(
            "cancel of an unknown session",
            Method::POST,
            &format!("/api/v15/sessions/{unknown}/cancel"),
            "",
            404,
            "not found",
        ),
        bad(
            "delete of a malformed id",
            Method::DELETE,
            "/api/sessions/..%2F..%2Fx",
            "",
            404,
            "not found",
        ),
        bad(
            "session name of the wrong type",
            Method::POST,
            "/api/sessions",
            r#"{"name":5}"#,
            400,
            "invalid type",
        ),
        bad(
            "session name too long",
            Method::POST,
            "/api/sessions",
            json!({"name": "n".repeat(500)}).to_string(),
            400,
            "longer than",
        ),
        bad(
            "session body not JSON",
            Method::POST,
            "/api/sessions",
            "name=x",
            400,
            "invalid JSON",
        ),
        login("login without a token", json!({}), "token"),
        login(
            "login token of the wrong type",
            json!({"token": 5}),
            "invalid type",
        ),
        login(
            "login with another kind of token",
            json!({"token": "sk-ant-api03-abc"}),
            "setup-token",
        ),
        login(
            "login token with spaces",
            json!({"token": format!("{CLAUDE_TOKEN_PREFIX}a b")}),
            "setup-token",
        ),
        login(
            "login token not ASCII",
            json!({"token": format!("{CLAUDE_TOKEN_PREFIX}é")}),
            "setup-token",
        ),
        login(
            "login token absurdly long",
            json!({"token": format!("{CLAUDE_TOKEN_PREFIX}{}", "a".repeat(10_000))}),
            "setup-token",
        ),
    ];
    for bad_after in ["", "x", "-1", "0x10", "1e3", "9007199254740993", "%00"] {
        let response = user
            .get(&format!("/api/v15/sessions/{id}/events?after={bad_after}"))
            .await;
        assert_eq!(response.status().as_u16(), 400, "after={bad_after}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("after"),
            "after={bad_after}: {body}"
        );
    }
    for Bad {
        case,
        method,
        path,
        body,
        status,
        message,
    } in cases
    {
        let response = user
            .http
            .request(method, format!("{}{path}", stack.base))
            .header("Cookie", user.cookie.clone().unwrap())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let got = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{case}: a JSON error body ({e})"));
        assert_eq!(got, status, "{case}: {body}");
        assert_eq!(content_type, "application/json", "{case}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: {body}"));
        assert!(
            error.contains(message),
            "{case}: {error:?} should mention {message:?}"
        );
        assert!(
            error.len() < 300,
            "{case}: a short message, not an echo: {} bytes",
            error.len()
        );
    }
    assert_eq!(
        log_snapshot(&user, &session.id).await,
        before,
        "the transcript is as it was"
    );
    assert_eq!(
        user.get("/api/sessions").await.text().await.unwrap(),
        sessions_before,
        "nothing created"
    );
    let again = user.chat(&session.id, "[fixture:text] still works").await;
    assert_eq!(again.status(), 200);
    assert!(again
        .collect()
        .await
        .last()
        .unwrap()
        .envelope
        .event
        .is_terminal());
}

/// Item 4: Hostile agent output on a valid callback: lines that are not JSON, not events, events the agent may not
/// write (`user-message`, `connected`), invalid UTF-8 and a line over 2 MB. The junk is skipped, the oversized
/// line leaves a visible marker, and the events around them are stored in order.
pub async fn security_hostile_agent_lines_are_contained(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "[fixture:hang] wait").await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    let agent = wait_for_agent(&execution).await;
    let bearer = environ(agent)["VF_STREAM_JWT"].clone();
    let mut body: Vec<u8> = Vec::new();
    let mut line = |bytes: &[u8]| {
        body.extend_from_slice(bytes);
        body.push(b'\n');
    };
    line(br#"{"type":"text-delta","text":"hostile-before"}"#);
    line(b"this is not json");
    line(b"{\"type\":\"text-delta\",\"text\":\"\xff\xfe not utf-8\"}");
    line(br#"{"type":"no-such-event","x":1}"#);
    line(br#"[1,2,3]"#);
    line(br#""just a string""#);
    line(br#"{}"#);
    line(br#"{"type":"text-delta"}"#);
    line(br#"{"type":"text-delta","text":5}"#);
    line(
        format!(
            "{{\"type\":\"text-delta\",\"text\":\"{}\"}}",
            "x".repeat(2 * 1024 * 1024 + 1)
        )
        .as_bytes(),
    );
    line(br#"{"type":"user-message","text":"hostile-forged-user-message"}"#);
    line(br#"{"type":"connected","executionId":"hostile-forged"}"#);
    line(br#"{"type":"text-delta","text":"hostile-after"}"#);
    let response = post_callback(stack, &bearer, body).await;
    assert_eq!(response.status().as_u16(), 200);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(
        receipt,
        json!({"stored": 3, "terminal": false}),
        "before, the marker, after"
    );
    cancel(&user, &session.id).await;
    let live = stream.collect().await;
    let stored = wait_for_terminal(&user, &session.id).await;
    for lines in [&live, &stored] {
        let ours: Vec<String> = texts(lines)
            .into_iter()
            .filter(|t| t.starts_with("hostile-") || t.contains("exceeded"))
            .collect();
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert_eq!(ours[0], "hostile-before");
        assert!(
            ours[1].contains("exceeded") && ours[1].len() < 1024,
            "a short marker: {}",
            ours[1]
        );
        assert_eq!(ours[2], "hostile-after");
        assert_eq!(
            user_messages(lines),
            1,
            "the agent cannot write a user message"
        );
        let forged = lines.iter().any(|l| {
            matches!(&l.envelope.event, Event::Connected { execution_id } if execution_id == "hostile-forged")
        });
        assert!(!forged, "the agent cannot write a connected line");
    }
}

/// Item 4: A callback body that never ends: the agent is frozen (SIGSTOP) mid-answer, its callback connection open
/// and silent. The watchdog ends the execution with `agent-crashed` after its window, kills the agent, keeps
/// everything stored before, and the session takes the next prompt.
pub async fn security_a_callback_body_that_never_ends_is_bounded(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "[fixture:hang] freeze").await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    let agent = wait_for_agent(&execution).await;
    // Let the agent call back and store a few events first.
    let mut seen = Vec::new();
    while !texts(&seen).iter().any(|t| t.contains("about it")) {
        seen.push(stream.next().await.expect("the answer starts"));
    }
    // SAFETY: signalling a process this test found by its environment; no memory is involved.
    unsafe {
        libc::kill(agent as i32, libc::SIGSTOP);
    }
    let frozen = Instant::now();
    let stored_before = log_snapshot(&user, &session.id).await;
    let rest = stream.collect().await;
    let waited = frozen.elapsed();
    match rest
        .iter()
        .map(|l| &l.envelope.event)
        .filter(|e| e.is_terminal())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [Event::Error {
            code: ErrorCode::AgentCrashed,
            ..
        }] => {}
        other => panic!("one agent-crashed: {other:?}"),
    }
    println!(
        "    the frozen callback was ended after {:.1} s",
        waited.as_secs_f64()
    );
    assert!(
        waited >= Duration::from_secs(4),
        "not before the watchdog window: {waited:?}"
    );
    assert!(waited < Duration::from_secs(40), "bounded: {waited:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(agent) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(agent), "the frozen agent was killed");
    let stored_after = log_snapshot(&user, &session.id).await;
    assert!(
        stored_after.starts_with(&stored_before),
        "everything stored before is kept"
    );
    let next = user.chat(&session.id, "[fixture:text] next").await;
    assert_eq!(next.status(), 200);
    assert!(matches!(
        next.collect().await.last().unwrap().envelope.event,
        Event::Done { .. }
    ));
}

/// Item 4: A flood of concurrent chats at one idle session: exactly one starts an execution (200), every other gets
/// 409, and the log holds one user message and one execution (the DO checks and inserts with no await between).
pub async fn security_a_chat_flood_starts_one_execution(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let processes_before = stack.sandbox_processes().await.len();
    let responses = join_all((0..20).map(|i| {
        user.post(
            "/api/v15/chat",
            json!({"sessionId": session.id, "prompt": format!("[fixture:hang] flood {i}")}),
        )
    }))
    .await;
    let mut winners = Vec::new();
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => winners.push(EventStream::new(response)),
            409 => {
                let body: Value = response.json().await.unwrap();
                assert!(
                    body["error"].as_str().unwrap().contains("already running"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("a flooded chat answered {other}"),
        }
    }
    assert_eq!(
        (winners.len(), refused),
        (1, 19),
        "one execution, 19 refusals"
    );
    let mut winner = winners.pop().unwrap();
    let execution = execution_id(&winner.next().await.expect("connected"));
    wait_for_agent(&execution).await;
    cancel(&user, &session.id).await;
    winner.collect().await;
    let log = wait_for_terminal(&user, &session.id).await;
    assert_eq!(user_messages(&log), 1, "one user message");
    assert!(
        log.iter()
            .all(|l| l.envelope.execution_id.as_deref() == Some(execution.as_str())),
        "one execution in the log"
    );
    assert_eq!(
        stack.sandbox_processes().await.len(),
        processes_before + 1,
        "one agent started"
    );
}

/// Item 5: The Claude token stays server side: the login answer and `/api/me` show only a masked form; it reaches
/// the agent only through its environment (and the CLI's, which does not get the callback token); it is in no
/// response, no stored event, no Durable Object file, no file of the sandbox workspace and no CLI argument.
pub async fn security_the_claude_token_stays_server_side(stack: &Stack) {
    let user = login(stack).await;
    let token = user.claude_token.as_str();
    let secret_part = &token[CLAUDE_TOKEN_PREFIX.len()..token.len() - 4];
    let me = user.client.get("/api/me").await.text().await.unwrap();
    let me_json: Value = serde_json::from_str(&me).unwrap();
    let hint = me_json["tokenHint"].as_str().expect("a masked hint");
    assert_eq!(
        hint,
        format!("{CLAUDE_TOKEN_PREFIX}…{}", &token[token.len() - 4..])
    );
    assert!(!me.contains(secret_part), "/api/me shows the token: {me}");

    let session = user.client.create_session().await;
    let mut stream = user
        .client
        .chat(&session.id, "[fixture:hang] secrets")
        .await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    let agent = wait_for_agent(&execution).await;
    let agent_env = environ(agent);
    assert_eq!(
        agent_env["CLAUDE_CODE_OAUTH_TOKEN"], token,
        "the agent gets the token in its environment"
    );
    let execution_token = agent_env["VF_STREAM_JWT"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    let cli = loop {
        if let Some(pid) = child_named(agent, "vf-fake-claude") {
            break pid;
        }
        assert!(Instant::now() < deadline, "the CLI starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cli_env = environ(cli);
    assert_eq!(
        cli_env["CLAUDE_CODE_OAUTH_TOKEN"], token,
        "the CLI needs the token"
    );
    assert!(
        !cli_env.contains_key("VF_STREAM_JWT"),
        "the CLI (and its tools) never see the callback token"
    );
    cancel(&user.client, &session.id).await;

    let mut seen = Vec::new();
    while let Some(line) = stream.next().await {
        seen.push(serde_json::to_string(&line.envelope).unwrap());
    }
    seen.extend(log_snapshot(&user.client, &session.id).await);
    seen.push(user.client.get("/api/sessions").await.text().await.unwrap());
    seen.push(user.client.get("/api/flags").await.text().await.unwrap());
    for text in &seen {
        assert!(
            !text.contains(secret_part),
            "a response carries the Claude token: {text}"
        );
        assert!(
            !text.contains(&execution_token),
            "a response carries the execution token: {text}"
        );
    }
    let args = std::fs::read_to_string(stack.args_log()).unwrap_or_default();
    assert!(
        !args.contains(secret_part),
        "the token is not a CLI argument"
    );
    let mut files = Vec::new();
    files_under(&stack.dir.join("workspace"), &mut files);
    files_under(&stack.dir.join("state"), &mut files);
    for (path, bytes) in &files {
        if path.contains("ChatSessionAgent") || path.contains("workspace") {
            assert!(
                !contains(bytes, secret_part),
                "{path} holds the Claude token"
            );
        }
    }
}

/// Items 1 and 5: No secret in any log line: the stack's four secrets, any test user's Claude token (they all start
/// with the `sk-ant-oat01-` prefix), and any session cookie or execution token we issued (they all start with our
/// token header) appear nowhere in the wrangler, sandbox and agent logs, after every test above has run.
pub async fn security_no_secret_appears_in_a_log(stack: &Stack) {
    // Make sure this stack has logged in, chatted, called back and logged out at least once.
    let user = login(stack).await;
    let session = user.client.create_session().await;
    user.client
        .chat(&session.id, "[fixture:text] log me")
        .await
        .collect()
        .await;
    user.client.post("/api/auth/logout", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut logs = vec![(
        "wrangler and vf-sandbox".to_string(),
        stack.logs().into_bytes(),
    )];
    files_under(&stack.dir.join("process-logs"), &mut logs);
    let all: usize = logs.iter().map(|(_, b)| b.len()).sum();
    assert!(
        contains(&logs[0].1, "/api/v15/chat") && contains(&logs[0].1, "/internal/stream"),
        "the logs record the traffic (so this scan looks at something)"
    );
    let s = &stack.secrets;
    let needles = [
        ("JWT_SECRET", s.jwt.as_str()),
        ("SESSION_SECRET", s.session.as_str()),
        ("SANDBOX_TOKEN", s.sandbox.as_str()),
        ("ADMIN_TOKEN", s.admin.as_str()),
        ("a Claude token", CLAUDE_TOKEN_PREFIX),
        ("this user's Claude token", user.claude_token.as_str()),
        ("a session cookie or execution token", OUR_TOKEN_HEADER),
        ("this user's session cookie", user.session_token.as_str()),
    ];
    for (name, bytes) in &logs {
        for (what, needle) in needles {
            assert!(!contains(bytes, needle), "{what} appears in {name}");
        }
    }
    println!("    {} log files, {all} bytes: no secret", logs.len());
}
