//! Issue 13 in headless Chromium: the session list follows a session live, prompts queue behind a running
//! answer (and one removed never runs), and the outbox keeps a prompt through a cut network and a reload and
//! sends it once.

use serde_json::json;
use vf_e2e::events::prompts;
use vf_e2e::{Browser, Client, Stack};

use crate::browser::finished;

fn session_status(id: &str, status: &str) -> String {
    format!(
        "(e => e !== null && e.dataset.status === '{status}')(document.querySelector('[data-session-id=\"{id}\"]'))"
    )
}

/// A list open in one tab changes to running and back to idle by itself while the session answers elsewhere,
/// and shows the first prompt as the title; the filter box narrows it.
pub async fn browser_sessions_the_list_follows_a_session_live(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    let api: Client = page.api().await;
    let session = api.create_session().await;
    let response = api
        .post("/api/sessions", json!({"name": "Other work"}))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    page.wait_until(
        "both sessions listed",
        "document.querySelectorAll('[data-testid=\"session-item\"]').length === 2",
    )
    .await;
    let mut stream = api
        .chat(&session.id, "[fixture:text][delay:250] watch me work")
        .await;
    stream.next().await.expect("connected");
    page.wait_until(
        "the list to show running",
        &session_status(&session.id, "running"),
    )
    .await;
    page.wait_until(
        "the list to show idle again",
        &session_status(&session.id, "idle"),
    )
    .await;
    let first = page
        .js("return document.querySelector('[data-testid=\"session-item\"]').dataset.sessionId;")
        .await;
    assert_eq!(first, session.id.as_str(), "most recently active first");
    page.type_into("session-filter", "other").await;
    page.wait_until(
        "the filter to leave one session",
        "document.querySelectorAll('[data-testid=\"session-item\"]').length === 1",
    )
    .await;
    page.close().await;
}

/// A prompt sent while an answer runs is queued under it and answered after it; one removed never runs. The
/// chat offers the transcript as a Markdown download.
pub async fn browser_sessions_a_prompt_sent_while_an_answer_runs_is_queued(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    let session = page.new_session().await;
    page.send("[fixture:text][delay:300] first").await;
    page.wait_for_messages("the first answer to start", |m| m.len() == 2)
        .await;
    page.type_into("prompt", "[fixture:text] second").await;
    page.click("queue").await;
    page.wait_until(
        "the queued prompt under the answer",
        "document.querySelectorAll('[data-testid=\"queued-prompt\"]').length === 1",
    )
    .await;
    page.type_into("prompt", "[fixture:text] removed").await;
    page.click("queue").await;
    page.wait_until(
        "two queued prompts",
        "document.querySelectorAll('[data-testid=\"queued-prompt\"]').length === 2",
    )
    .await;
    page.js("document.querySelectorAll('[data-testid=\"remove-queued\"]')[1].click();")
        .await;
    page.wait_until(
        "one queued prompt left",
        "document.querySelectorAll('[data-testid=\"queued-prompt\"]').length === 1",
    )
    .await;
    let shown = page
        .wait_for_messages("the queued prompt's answer", finished(4))
        .await;
    assert_eq!(shown[2].text.trim(), "[fixture:text] second", "{shown:?}");
    let api = page.api().await;
    let log = api.wait_for_terminal(&session).await;
    assert_eq!(
        prompts(&log),
        ["[fixture:text][delay:300] first", "[fixture:text] second"],
        "in order; the removed one never ran"
    );
    let href = page.attribute("export-transcript", "href").await;
    assert_eq!(
        href.as_deref(),
        Some(format!("/api/v15/sessions/{session}/export").as_str())
    );
    page.close().await;
}

/// With the network cut, a prompt waits in the outbox ("waiting to send"); it survives a reload while the chat
/// route is still unreachable, and is sent exactly once when the connection is back.
pub async fn browser_sessions_the_outbox_sends_a_prompt_once_when_back_online(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    let session = page.new_session().await;
    let api = page.api().await;
    page.set_offline(true).await;
    page.wait_until("the page to be offline", "navigator.onLine === false")
        .await;
    page.send("[fixture:text] sent from the outbox").await;
    page.wait_until(
        "the prompt waiting to send",
        "(e => e !== null && e.textContent.includes('Waiting to send'))(document.querySelector('[data-testid=\"outbox-prompt\"]'))",
    )
    .await;
    // Back online, but the chat route still fails (the Worker restarting, say): the prompt stays through a
    // reload.
    page.cdp(
        "Network.setBlockedURLs",
        json!({"urls": ["*/api/v15/chat*"]}),
    )
    .await;
    page.set_offline(false).await;
    page.client.refresh().await.expect("reload");
    page.wait_until(
        "the prompt still waiting after the reload",
        "document.querySelectorAll('[data-testid=\"outbox-prompt\"]').length === 1",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        prompts(&api.stored(&session).await).is_empty(),
        "nothing reached the session yet"
    );
    page.cdp("Network.setBlockedURLs", json!({"urls": []}))
        .await;
    page.js("window.dispatchEvent(new Event('online'));").await;
    let shown = page
        .wait_for_messages("the outbox's prompt answered", finished(2))
        .await;
    assert_eq!(shown[0].text.trim(), "[fixture:text] sent from the outbox");
    page.wait_until(
        "the outbox to be empty",
        "document.querySelectorAll('[data-testid=\"outbox-prompt\"]').length === 0 && \
         Object.keys(localStorage).every(k => !k.startsWith('vf-outbox:'))",
    )
    .await;
    // Another reload and a moment: nothing is sent twice.
    page.client.refresh().await.expect("reload");
    page.wait_ready().await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let log = api.wait_for_terminal(&session).await;
    assert_eq!(
        prompts(&log),
        ["[fixture:text] sent from the outbox"],
        "sent once"
    );
    page.close().await;
}
