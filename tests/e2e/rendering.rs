//! What an answer looks like: highlighted code, tool cards (diff, command and output, a subagent's calls, an
//! image), and the CLI's own status under a running answer, live and never stored.

use serde_json::Value;
use vf_e2e::{Browser, Client, Page, Stack};

use crate::browser::{assert_done, assert_shows, finished, send_demo_and_allow, stored};
use vf_protocol::{Event, StatusKind};

/// A signed-in browser on a new session that sent `prompt` and saw its answer finish.
async fn answered(stack: &Stack, prompt: &str) -> (Browser, Page) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    page.new_session().await;
    page.send(prompt).await;
    page.wait_until(
        "the answer to finish",
        "(m => m.length > 0 && m[m.length - 1].dataset.status === 'done')\
         ([...document.querySelectorAll('[data-testid=message]')])",
    )
    .await;
    (browser, page)
}

/// While an answer streams, a paragraph that is finished keeps its place in the page: only the growing block is
/// rendered again, so a reader can select or copy what is done. The finished answer is whole and as stored, and
/// its end stays in view.
pub async fn browser_finished_paragraphs_stay_put_while_the_answer_streams(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    let session = page.new_session().await;
    // Slow enough (a delta every 150 ms) that the page is seen between two blocks.
    send_demo_and_allow(&page, 150).await;
    let last = "[...document.querySelectorAll('[data-testid=message]')].at(-1)";
    page.wait_until(
        "the first paragraph to finish",
        &format!(
            "(m => m.textContent.includes('Every event') && (window.__first = \
               [...m.querySelectorAll('.markdown p')].find(p => p.textContent.startsWith('VaporForge'))))({last})"
        ),
    )
    .await;
    let later = page
        .wait_until(
            "a later paragraph to stream in",
            &format!(
                "(m => m.textContent.includes('This answer is a scripted') && \
                   {{connected: window.__first.isConnected, status: m.dataset.status}})({last})"
            ),
        )
        .await;
    assert_eq!(later["status"], "streaming", "still streaming: {later}");
    assert_eq!(
        later["connected"], true,
        "the finished paragraph was rendered again: {later}"
    );
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert_shows(&shown, &stored(&page.api().await, &session).await);
    // The reader followed the answer to its end, and the end of it stays in view when it finishes.
    page.wait_until(
        "the finished answer to stay scrolled to its end",
        "window.scrollY > 0 && window.scrollY + innerHeight >= document.documentElement.scrollHeight - 2",
    )
    .await;
}

/// The top-level tool card named `name` (opened), as a JS expression.
fn card(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('[data-testid=tool-call]')]\
         .filter(c => !c.parentElement.closest('[data-testid=tool-call]'))\
         .find(c => c.querySelector('.tool-name').textContent === '{name}')"
    )
}

/// Issue 12: a code block is highlighted and has a copy button; an Edit is a diff of the old and new text; Bash
/// shows its command and output; a Task holds its subagent's calls, one of which returned an image that is shown
/// (decoded under the page's CSP, from the event's own data).
pub async fn browser_cards_show_code_diffs_commands_and_a_subagents_calls(stack: &Stack) {
    let (_browser, page) = answered(stack, "[fixture:cards][delay:5] fix it").await;
    let highlighted = page
        .wait_until(
            "the rust block to be highlighted",
            "document.querySelectorAll('.markdown pre code span[class^=tok-]').length",
        )
        .await;
    assert!(highlighted.as_u64().unwrap() > 3, "{highlighted}");
    assert_eq!(
        page.js("return document.querySelectorAll('.markdown button.copy-code').length")
            .await,
        1
    );

    let edit = page
        .js(&format!(
            "const c = {}; c.open = true; return {{\
               removed: [...c.querySelectorAll('.diff-del')].map(l => l.textContent.trim()),\
               added: [...c.querySelectorAll('.diff-ins')].map(l => l.textContent.trim())}};",
            card("Edit")
        ))
        .await;
    assert_eq!(
        edit["removed"],
        serde_json::json!(["println!(\"hi\");"]),
        "{edit}"
    );
    assert_eq!(
        edit["added"],
        serde_json::json!(["let greeting = \"hello\";", "println!(\"{greeting}\");"]),
        "{edit}"
    );

    let bash = page
        .js(&format!(
            "const c = {}; c.open = true; return {{state: c.dataset.state,\
               command: c.querySelector('.tool-command').textContent,\
               output: c.querySelector('.tool-output').textContent}};",
            card("Bash")
        ))
        .await;
    assert_eq!(bash["state"], "done", "{bash}");
    assert_eq!(bash["command"], "cargo test --quiet", "{bash}");
    assert!(
        bash["output"]
            .as_str()
            .unwrap()
            .contains("2 passed; 0 failed"),
        "{bash}"
    );

    let task = page
        .js(&format!(
            "const c = {}; c.open = true; \
             const calls = [...c.querySelectorAll('[data-testid=subagent-calls] > [data-testid=tool-call]')];\
             return {{state: c.dataset.state, summary: c.querySelector('summary').textContent,\
               calls: calls.map(k => [k.querySelector('.tool-name').textContent, k.dataset.state]),\
               read: calls[1] && calls[1].querySelector('.tool-count').textContent,\
               readOutput: calls[1] && calls[1].querySelectorAll('.tool-output').length,\
               images: calls.flatMap(k => [...k.querySelectorAll('[data-testid=tool-image]')])\
                 .map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])}};",
            card("Task")
        ))
        .await;
    assert_eq!(task["state"], "done", "{task}");
    assert!(
        task["summary"].as_str().unwrap().contains("2 calls"),
        "{task}"
    );
    assert_eq!(
        task["calls"],
        serde_json::json!([["Grep", "done"], ["Read", "done"]]),
        "{task}"
    );
    // A result that is only an image says so, and shows no empty output.
    assert_eq!(task["read"], "1 image", "{task}");
    assert_eq!(task["readOutput"], 0, "{task}");
    // The image decodes: an 8×8 PNG from a data: URL, which the CSP allows for images only.
    let image = page
        .wait_until(
            "the subagent's image to decode",
            &format!(
                "(i => i && i.complete && i.naturalWidth)({}.querySelector('[data-testid=tool-image]'))",
                card("Task")
            ),
        )
        .await;
    assert_eq!(image, 8, "{task}");
    assert_eq!(task["images"][0][2], "data:image/png;base64,", "{task}");
    // Only the Task and the other top-level calls are at the top: the subagent's are inside it.
    let top: Value = page
        .js(
            "return [...document.querySelectorAll('[data-testid=tool-call]')]\
             .filter(c => !c.parentElement.closest('[data-testid=tool-call]'))\
             .map(c => c.querySelector('.tool-name').textContent)",
        )
        .await;
    assert_eq!(top, serde_json::json!(["Edit", "Bash", "Task"]));
}

/// Issue 12: what the CLI says of itself (an API retry, compacting, a usage warning) shows under the running
/// answer, each in turn, and is gone once the answer is done.
pub async fn browser_the_clis_status_shows_under_the_running_answer(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.sign_in().await;
    page.new_session().await;
    page.send("[fixture:status] are you there?").await;
    for (kind, says) in [
        ("api-retry", "The API is overloaded: retry 1 of 10 in 2 s"),
        ("compacting", "Compacting the conversation…"),
        ("rate-limit", "Nearing the usage limit (5-hour window)"),
    ] {
        page.wait_until(
            &format!("the {kind} status"),
            &format!(
                "(a => a && a.dataset.kind === '{kind}' && a.textContent.includes('{says}'))\
                 (document.querySelector('[data-testid=activity]'))"
            ),
        )
        .await;
    }
    page.wait_until(
        "the answer to finish",
        "(m => m.length === 2 && m[1].dataset.status === 'done')\
         ([...document.querySelectorAll('[data-testid=message]')])",
    )
    .await;
    assert_eq!(
        page.js("return document.querySelectorAll('[data-testid=activity]').length")
            .await,
        0
    );
}

/// Issue 12: `status` events reach a live reader in order among the others, carry their execution but no seq, and
/// are never stored: the replay holds every other event, with no gap in its seqs.
pub async fn status_events_are_live_and_never_stored(stack: &Stack) {
    let api = Client::signed_in(&stack.base).await;
    let session = api.create_session().await.id;
    let live = api.turn(&session, "[fixture:status][delay:1] hi").await;
    let statuses: Vec<_> = live
        .iter()
        .filter_map(|line| match &line.envelope.event {
            Event::Status { kind, .. } => Some((
                *kind,
                line.envelope.seq,
                line.envelope.execution_id.is_some(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (StatusKind::ApiRetry, None, true),
            (StatusKind::Compacting, None, true),
            (StatusKind::RateLimit, None, true),
        ]
    );
    let stored = api.stored(&session).await;
    assert!(
        stored
            .iter()
            .all(|line| !matches!(line.envelope.event, Event::Status { .. })),
        "no status is stored"
    );
    let seqs: Vec<u64> = stored.iter().filter_map(|l| l.envelope.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // The live stream's stored events are exactly the replay's.
    let live_seqs: Vec<u64> = live.iter().filter_map(|l| l.envelope.seq).collect();
    assert_eq!(live_seqs, seqs);
}
