//! Ownership: a user reaches only their own sessions, and another site's page cannot act for them.

use reqwest::Method;
use serde_json::{json, Value};
use vf_e2e::client::uuid_like;
use vf_e2e::{Client, Stack};
use vf_protocol::api::CLAUDE_TOKEN_PREFIX;

/// A legacy WebSocket upgrade request for a session, with the client's cookie.
fn upgrade(client: &Client, session_id: &str) -> reqwest::RequestBuilder {
    let mut request = client
        .http
        .get(format!("{}/api/sdk/ws?sessionId={session_id}", client.base))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(cookie) = &client.cookie {
        request = request.header("Cookie", cookie);
    }
    request
}

const EVIL_ORIGIN: &str = "https://evil.example";

/// Item 2: Ownership: every route that takes a session id answers 404 for another user's session, the same 404 as
/// for a session that does not exist, and changes nothing.
pub async fn security_another_users_session_is_404_on_every_route(stack: &Stack) {
    let alice = Client::signed_in(&stack.base).await;
    let mallory = Client::signed_in(&stack.base).await;
    let session = alice.create_session().await;
    alice.turn(&session.id, "[fixture:text] mine").await;
    let before = alice.snapshot(&session.id).await;

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
            (
                "legacy WebSocket",
                upgrade(&mallory, id).send().await.unwrap(),
            ),
            (
                "queue",
                mallory
                    .post(
                        "/api/v15/chat",
                        json!({"sessionId": id, "prompt": "queued", "queue": true}),
                    )
                    .await,
            ),
            (
                "dequeue",
                mallory
                    .delete(&format!("/api/v15/sessions/{id}/queue/{nobody}"))
                    .await,
            ),
            (
                "export",
                mallory.get(&format!("/api/v15/sessions/{id}/export")).await,
            ),
            (
                "rename",
                mallory
                    .patch(&format!("/api/sessions/{id}"), json!({"name": "mine now"}))
                    .await,
            ),
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
    assert_eq!(alice.snapshot(&session.id).await, before, "nothing changed");
    let mine: Vec<Value> = alice.get("/api/sessions").await.json().await.unwrap();
    assert!(
        mine.iter().any(|s| s["id"] == session.id.as_str()),
        "still Alice's"
    );
    // The control: the same upgrade request from the owner passes the ownership check.
    let own = upgrade(&alice, &session.id).send().await.unwrap();
    assert_eq!(
        own.status().as_u16(),
        101,
        "the owner's upgrade is accepted"
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
        let refused = upgrade(&user, id)
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status().as_u16(),
            403,
            "WebSocket upgrade from {origin}"
        );
    }
    assert_eq!(
        user.get("/api/sessions").await.text().await.unwrap(),
        sessions_before,
        "nothing created or deleted"
    );
    assert!(user.stored(&session.id).await.is_empty(), "nothing ran");
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
