//! Security headers: the pages' Content-Security-Policy, frame policy and nosniff, and the API's inert policy.

use base64::Engine;
use sha2::{Digest, Sha256};
use vf_e2e::callback::post_callback;
use vf_e2e::{Client, Stack};

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
