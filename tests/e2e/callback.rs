//! The agent's callback: every bad token is refused in the Worker with 401, before any Durable Object wakes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use vf_e2e::client::uuid_like;
use vf_e2e::Stack;
use vf_protocol::token::{self, ExecutionClaims};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

async fn post_callback(stack: &Stack, bearer: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{}/internal/stream", stack.base))
        .header("Content-Type", "application/x-ndjson")
        .body("{\"type\":\"text-delta\",\"text\":\"injected\"}\n");
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request
        .send()
        .await
        .expect("callback POST")
        .status()
        .as_u16()
}

pub async fn refuses_bad_tokens_before_waking_a_do(stack: &Stack) {
    let session_id = uuid_like();
    let claims = ExecutionClaims::new("exec-x", &session_id, now_secs(), 600);
    let wrong_secret = token::sign(&claims, b"not-the-secret").unwrap();
    let expired = token::sign(
        &ExecutionClaims::new("exec-x", &session_id, now_secs() - 7200, 60),
        stack.secrets.jwt.as_bytes(),
    )
    .unwrap();
    let valid = token::sign(&claims, stack.secrets.jwt.as_bytes()).unwrap();
    let unsigned = {
        let mut parts: Vec<&str> = valid.split('.').collect();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &header;
        format!("{}.{}.", parts[0], parts[1])
    };

    let before = stack.durable_object_count();
    assert_eq!(post_callback(stack, None).await, 401, "no token");
    assert_eq!(post_callback(stack, Some("garbage")).await, 401, "garbage");
    assert_eq!(
        post_callback(stack, Some(&wrong_secret)).await,
        401,
        "wrong secret"
    );
    assert_eq!(post_callback(stack, Some(&expired)).await, 401, "expired");
    assert_eq!(post_callback(stack, Some(&unsigned)).await, 401, "alg none");
    assert_eq!(
        stack.durable_object_count(),
        before,
        "a refused callback woke a Durable Object"
    );

    // The control: a valid token for an execution that is not running reaches the DO (which wakes, and has
    // nothing to write to), so the count above is able to notice a wake-up.
    assert_eq!(post_callback(stack, Some(&valid)).await, 404);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while stack.durable_object_count() == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        stack.durable_object_count(),
        before + 1,
        "the valid token woke one DO"
    );
}
