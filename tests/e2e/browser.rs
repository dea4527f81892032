//! The app in headless Chromium on the real stack (streaming, reload, two windows, stop, flag, phone), and `make ui`.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde_json::{json, Value};

use vf_e2e::browser::{squash, App, Shown, UiLoop};
use vf_e2e::stack::{free_port, repo_root};
use vf_e2e::{Browser, Client, Page, Stack};
use vf_protocol::transcript::{Role, Status, Transcript};

/// The session's stored log (`events?after=0`, once it ends with a terminal event), reduced.
pub(crate) async fn stored(api: &Client, session_id: &str) -> Transcript {
    let mut transcript = Transcript::default();
    for line in api.wait_for_terminal(session_id).await {
        transcript.apply(&line.envelope);
    }
    transcript
}

/// The `data-status` the app gives a message with this status.
fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Streaming => "streaming",
        Status::Done { .. } => "done",
        Status::Stopped => "stopped",
        Status::Failed { .. } => "failed",
    }
}

/// Text as words without the markdown around them: rendered markdown keeps the words but not the code fences, the
/// blanks between paragraphs, or a separator between an answer's text parts.
fn words(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .flat_map(str::split_whitespace)
        .collect()
}

/// The page shows exactly the stored conversation: the same messages, roles, statuses and words.
pub(crate) fn assert_shows(shown: &[Shown], transcript: &Transcript) {
    let expected: Vec<Shown> = transcript
        .messages
        .iter()
        .map(|m| Shown {
            role: match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            }
            .to_string(),
            status: status_name(&m.status).to_string(),
            text: words(&m.text()),
        })
        .collect();
    let shown: Vec<Shown> = shown
        .iter()
        .map(|m| Shown {
            text: words(&m.text),
            ..m.clone()
        })
        .collect();
    assert_eq!(shown, expected, "the page shows the stored transcript");
}

/// The last message shown is an answer that ended `done` (the error banner is in the message if not).
pub(crate) async fn assert_done(page: &Page, shown: &[Shown]) {
    if shown.last().is_none_or(|m| m.status != "done") {
        panic!(
            "the answer ended done: {shown:?}; error banner {:?}",
            page.banner().await
        );
    }
}

/// `count` messages are shown and the last one, an answer, has finished (whatever its ending).
pub fn finished(count: usize) -> impl Fn(&[Shown]) -> bool {
    move |m: &[Shown]| {
        m.len() == count
            && m.last()
                .is_some_and(|a| a.role == "assistant" && a.status != "streaming")
    }
}

/// The last message is an answer still streaming, with some text already shown.
fn streaming_with_text(m: &[Shown]) -> bool {
    m.last().is_some_and(|a| {
        a.role == "assistant" && a.status == "streaming" && !a.text.trim().is_empty()
    })
}

/// The recorded states in which the answer at `index` was streaming with text, as the text shown.
fn partial_texts(states: &[Vec<Shown>], index: usize) -> Vec<String> {
    states
        .iter()
        .filter_map(|state| state.get(index))
        .filter(|m| m.status == "streaming" && !m.text.trim().is_empty())
        .map(|m| squash(&m.text))
        .collect()
}

/// A fixture's final answer, from its `result` line.
fn fixture_answer(name: &str) -> String {
    let path = repo_root().join(format!("sandbox/fixtures/{name}.jsonl"));
    std::fs::read_to_string(&path)
        .expect("the fixture")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["type"] == "result")
        .and_then(|line| line["result"].as_str().map(str::to_string))
        .expect("the fixture ends with a result")
}

/// A signed-in browser on a new session: the browser, the page and the session id.
async fn new_chat(app: &impl App) -> (Browser, Page, String) {
    let browser = Browser::start().await;
    let page = browser.page(app.base()).await;
    page.sign_in().await;
    let session = page.new_session().await;
    (browser, page, session)
}

/// Log in by pasting a token, create a session, send a prompt: the answer is shown streaming, its text growing,
/// then done with the whole text, which is the stored transcript's.
pub async fn browser_streams_an_answer_live(app: &impl App) {
    let (_browser, page, session) = new_chat(app).await;
    page.record().await;
    page.send("[fixture:text][delay:150] hello").await;
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert_shows(&shown, &stored(&page.api().await, &session).await);

    let states = page.recorded().await;
    let partial = partial_texts(&states, 1);
    let full = squash(&shown[1].text);
    assert!(
        partial
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= 2,
        "the answer grew on screen while it streamed: {states:?}"
    );
    // The last deltas may all be on screen before `done` arrives; the first streamed text is a strict beginning.
    assert!(
        partial.iter().all(|p| full.starts_with(p.as_str())) && partial[0].len() < full.len(),
        "while streaming, the page showed a beginning of the answer: {partial:?} vs {full:?}"
    );
    assert!(
        partial.windows(2).all(|w| w[1].starts_with(w[0].as_str())),
        "the shown text only grew: {partial:?}"
    );
    let last_streaming = states
        .iter()
        .rposition(|s| s.get(1).is_some_and(|m| m.status == "streaming"))
        .expect("a streaming state");
    let first_done = states
        .iter()
        .position(|s| s.get(1).is_some_and(|m| m.status == "done"))
        .expect("a done state");
    assert!(last_streaming < first_done, "streaming, then done");
    page.close().await;
}

/// A reload mid-answer rejoins the running answer: it completes with nothing duplicated or missing.
pub async fn browser_reload_mid_answer_loses_nothing(app: &impl App) {
    let (_browser, page, session) = new_chat(app).await;
    let prompt = "[fixture:text][delay:400] reload me";
    page.send(prompt).await;
    page.wait_for_messages("the answer to start", streaming_with_text)
        .await;
    page.client.refresh().await.expect("reload");
    page.record().await;
    let shown = page
        .wait_for_messages("the answer to finish after the reload", finished(2))
        .await;
    assert_eq!(shown[0].role, "user");
    assert_eq!(shown[0].text, prompt, "the prompt, once");
    assert_done(&page, &shown).await;
    assert_shows(&shown, &stored(&page.api().await, &session).await);
    let states = page.recorded().await;
    assert!(
        !partial_texts(&states, 1).is_empty(),
        "after the reload the answer was still streaming, and was shown live: {states:?}"
    );
    assert!(
        states.iter().all(|s| s.len() <= 2),
        "never more than the one turn on screen: {states:?}"
    );
    page.close().await;
}

/// A second window opened on the session mid-answer joins the same live stream; both end with the same text.
pub async fn browser_second_window_sees_the_same_stream(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    page.record().await;
    page.send("[fixture:text][delay:400] two windows").await;
    page.wait_for_messages("the answer to start", streaming_with_text)
        .await;
    let first = page.open_in_second_window(&format!("/s/{session}")).await;
    page.record().await;
    let in_second = page
        .wait_for_messages("the answer to finish in the second window", finished(2))
        .await;
    let second_states = page.recorded().await;
    page.switch_to(first).await;
    let in_first = page
        .wait_for_messages("the answer to finish in the first window", finished(2))
        .await;
    let first_states = page.recorded().await;

    assert_eq!(
        in_first, in_second,
        "both windows show the same conversation"
    );
    assert_done(&page, &in_first).await;
    assert_shows(&in_first, &stored(&page.api().await, &session).await);
    assert!(
        !partial_texts(&second_states, 1).is_empty(),
        "the second window joined the answer live: {second_states:?}"
    );
    assert!(
        !partial_texts(&first_states, 1).is_empty(),
        "the first window streamed it: {first_states:?}"
    );
    page.close().await;
}

/// Stop ends a running answer as stopped, and the session takes the next prompt.
pub async fn browser_stop_ends_the_answer(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    page.send("[fixture:hang] think forever").await;
    page.wait_for_messages("the answer to start", streaming_with_text)
        .await;
    page.click("stop").await;
    let shown = page
        .wait_for_messages("the answer to stop", finished(2))
        .await;
    assert_eq!(shown[1].status, "stopped", "{shown:?}");
    let api = page.api().await;
    assert_shows(&shown, &stored(&api, &session).await);

    page.send("[fixture:text] and now?").await;
    let shown = page
        .wait_for_messages("the next answer to finish", finished(4))
        .await;
    assert_done(&page, &shown).await;
    assert_eq!(squash(&shown[3].text), squash(&fixture_answer("text")));
    assert_shows(&shown, &stored(&api, &session).await);
    page.close().await;
}

async fn set_flags(stack: &Stack, body: Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/api/admin/flags", stack.base))
        .bearer_auth(&stack.secrets.admin)
        .json(&body)
        .send()
        .await
        .expect("PUT /api/admin/flags");
    assert_eq!(response.status().as_u16(), 200, "flags update {body}");
}

/// With the flag off (rollout 0 %) the app takes the legacy WebSocket: the badge says so and the answer arrives
/// with nothing stored. `?transport=do` overrides the flag, and is remembered. The flag is restored whatever
/// happens.
pub async fn browser_flag_off_uses_the_legacy_websocket(app: &impl App) {
    set_flags(app.stack(), json!({ "rolloutPercent": 0, "kill": false })).await;
    let outcome = AssertUnwindSafe(legacy_then_override(app))
        .catch_unwind()
        .await;
    set_flags(app.stack(), json!({ "rolloutPercent": 100, "kill": false })).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn legacy_then_override(app: &impl App) {
    let (_browser, page, session) = new_chat(app).await;
    let api = page.api().await;
    let flags: Value = api.get("/api/flags").await.json().await.expect("flags");
    assert_eq!(
        flags["agentChat"], false,
        "the flag is off for this user: {flags}"
    );
    page.wait_for_attribute("connection", "data-transport", "ws")
        .await;

    let prompt = "[fixture:text][delay:60] over the socket";
    page.send(prompt).await;
    let shown = page
        .wait_for_messages("the legacy answer to finish", finished(2))
        .await;
    assert_eq!(shown[0].text, prompt);
    assert_done(&page, &shown).await;
    assert_eq!(squash(&shown[1].text), squash(&fixture_answer("text")));
    let log = api.events(&session, 0).await.collect().await;
    assert!(
        log.iter().all(|l| l.envelope.seq.is_none()),
        "nothing was stored: the answer came over the WebSocket, not the DO: {:?}",
        log.iter()
            .map(|l| l.envelope.event.kind())
            .collect::<Vec<_>>()
    );

    page.open(&format!("/s/{session}?transport=do")).await;
    page.wait_for_attribute("connection", "data-transport", "do")
        .await;
    page.send("[fixture:text] back on the durable path").await;
    let shown = page
        .wait_for_messages("the durable answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert_shows(&shown, &stored(&api, &session).await);
    assert_eq!(
        page.js("return localStorage.getItem('vf-transport');")
            .await,
        "do",
        "the override is remembered"
    );
    page.close().await;
}

/// Sends the demo prompt (a delta every `delay_ms`) and allows the command it asks to run once its card shows;
/// its answer then goes on with three paragraphs and a code block.
pub(crate) async fn send_demo_and_allow(page: &Page, delay_ms: u64) {
    page.send(&format!(
        "[fixture:demo][delay:{delay_ms}] What is this project?"
    ))
    .await;
    page.wait_for_attribute("approval", "data-state", "pending")
        .await;
    page.click("approval-allow").await;
}

/// At 375 px wide a finished chat (markdown, a code block, an open tool card) fits without horizontal scrolling;
/// the screenshot is kept as `tests/artifacts/chat-375.png`.
pub async fn browser_chat_fits_a_375px_phone(stack: &Stack) {
    let browser = Browser::start().await;
    let page = browser.page(&stack.base).await;
    page.client
        .set_window_size(375, 812)
        .await
        .expect("a phone-sized window");
    page.sign_in().await;
    let session = page.new_session().await;
    // The demo asks before it runs a command: the card must fit the phone too.
    send_demo_and_allow(&page, 5).await;
    page.wait_for_attribute("approval", "data-state", "allowed")
        .await;
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert_shows(&shown, &stored(&page.api().await, &session).await);
    // Open the tool cards (their input and output are the widest content), then show the end of the answer.
    page.js(
        "document.querySelectorAll('[data-testid=\"tool-call\"]').forEach(d => d.open = true);
         window.scrollTo(0, document.documentElement.scrollHeight);",
    )
    .await;
    assert_eq!(
        page.js("return window.innerWidth;").await,
        375,
        "the viewport is a phone's"
    );
    let overflow = page
        .js("return [document.documentElement.scrollWidth, document.body.scrollWidth];")
        .await;
    let path = repo_root().join("tests/artifacts/chat-375.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    assert!(
        overflow
            .as_array()
            .expect("widths")
            .iter()
            .all(|w| w.as_u64().is_some_and(|w| w <= 375)),
        "no horizontal scroll at 375 px: scrollWidth (html, body) = {overflow}"
    );
    page.close().await;
}

/// Through `make ui` a chat arrives line by line as it is written, as from the Worker itself (trunk serve's proxy
/// held it: the agent's callback address lost its port), and the Origin check lets exactly the UI's origin through.
pub async fn streams_line_by_line_and_admits_only_its_origin(ui: &UiLoop) {
    let user = crate::chat::answer_streams_live(&ui.base).await;

    let cookie = user.cookie.clone().expect("a session cookie");
    let other = format!("http://127.0.0.1:{}", free_port());
    for (origin, status) in [
        (ui.base.clone(), 201),
        (other, 403),
        (ui.base.replace("127.0.0.1", "localhost"), 403),
    ] {
        let response = user
            .http
            .post(format!("{}/api/sessions", ui.base))
            .header("Cookie", &cookie)
            .header("Origin", &origin)
            .json(&json!({ "name": "origin" }))
            .send()
            .await
            .expect("POST /api/sessions");
        assert_eq!(
            response.status().as_u16(),
            status,
            "a session created from {origin}"
        );
    }
}

/// A build landing in `make ui`'s dist reloads the open page: the reload script runs under the app's
/// Content-Security-Policy, and the page comes back on the new build.
pub async fn a_new_build_reloads_the_page(ui: &UiLoop) {
    let browser = Browser::start().await;
    let page = browser.page(&ui.base).await;
    page.open("/login").await;
    page.element("login-token").await;
    page.js("window.vfBeforeTheBuild = true;").await;
    // What trunk watch does when a build lands: index.html replaced (here by the same build, a comment apart).
    let index = ui.dist.join("index.html");
    let html = std::fs::read_to_string(&index).expect("the built index.html");
    std::fs::write(&index, html.replace("</head>", "<!-- rebuilt --></head>"))
        .expect("a new index.html");
    page.wait_until(
        "the page to reload on the new build",
        "window.vfBeforeTheBuild === undefined && document.documentElement.outerHTML.includes('<!-- rebuilt -->')",
    )
    .await;
    page.element("login-token").await;
    page.close().await;
}

/// An approval card appears in the answer; a reload in the middle shows it still actionable; a click in a second
/// window decides it, and both windows show the outcome; the answer then goes on to its end.
pub async fn browser_an_approval_is_decided_from_a_second_window(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    page.send("[fixture:permission] run it").await;
    page.wait_for_attribute("approval", "data-state", "pending")
        .await;
    let path = repo_root().join("tests/artifacts/approval-pending.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    page.open(&format!("/s/{session}")).await;
    page.wait_for_attribute("approval", "data-state", "pending")
        .await;
    let first = page.open_in_second_window(&format!("/s/{session}")).await;
    page.type_into("approval-message", "not that one").await;
    page.click("approval-deny").await;
    page.wait_for_attribute("approval", "data-state", "denied")
        .await;
    page.switch_to(first).await;
    page.wait_for_attribute("approval", "data-state", "denied")
        .await;
    let outcome = page
        .wait_until(
            "the outcome in the first window",
            "(e => e && e.textContent)(document.querySelector('[data-testid=\"approval-outcome\"]'))",
        )
        .await;
    assert_eq!(outcome, "Denied: not that one");
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert!(
        shown[1].text.contains("not that one"),
        "Claude was told why: {shown:?}"
    );
}

/// The arguments of the CLI's last run whose `--model` was `model`.
fn last_run_with_model(stack: &Stack, model: &str) -> Option<Vec<String>> {
    std::fs::read_to_string(stack.args_log())
        .unwrap_or_default()
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Vec<String>>(line).ok())
        .find(|args| args.windows(2).any(|w| w[0] == "--model" && w[1] == model))
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

/// The prompt box's controls reach the CLI: autonomy and model as picked, then plan mode; they are remembered for
/// the session across a reload, and a new session starts from the defaults (agent, standard, the CLI's model).
pub async fn browser_the_turn_controls_reach_the_cli(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    for (id, default) in [
        ("turn-mode", "agent"),
        ("turn-autonomy", "standard"),
        ("turn-model", ""),
    ] {
        assert_eq!(
            page.js(&format!(
                "return document.querySelector('[data-testid=\"{id}\"]').value;"
            ))
            .await,
            default,
            "{id} starts at its default"
        );
    }
    page.choose("turn-autonomy", "conservative").await;
    page.choose("turn-model", "opus").await;
    page.send("[fixture:text] controls").await;
    page.wait_for_messages("the answer to finish", finished(2))
        .await;
    let args = last_run_with_model(stack, "opus").expect("a run with --model opus");
    assert_eq!(
        flag(&args, "--permission-mode"),
        Some("default"),
        "conservative: {args:?}"
    );

    page.open(&format!("/s/{session}")).await;
    page.wait_ready().await;
    page.wait_for_attribute("turn-model", "data-value", "opus")
        .await;
    page.choose("turn-mode", "plan").await;
    page.choose("turn-model", "haiku").await;
    page.wait_for_attribute("turn-autonomy", "disabled", "")
        .await;
    let path = repo_root().join("tests/artifacts/turn-controls.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    page.send("[fixture:text] plan it").await;
    page.wait_for_messages("the second answer to finish", finished(4))
        .await;
    let args = last_run_with_model(stack, "haiku").expect("a run with --model haiku");
    assert_eq!(
        flag(&args, "--permission-mode"),
        Some("plan"),
        "plan mode: {args:?}"
    );

    page.open("/").await;
    page.new_session().await;
    page.wait_for_attribute("turn-autonomy", "data-value", "standard")
        .await;
    page.wait_for_attribute("turn-model", "data-value", "")
        .await;
    page.close().await;
}

/// "Allow for this session" leaves a rule the chat bar lists; forgetting it empties the list, on the server too.
pub async fn browser_session_rules_are_listed_and_forgotten(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    page.send("[fixture:permission-twice] twice").await;
    page.click("approval-allow-session").await;
    page.wait_for_messages("the answer to finish", finished(2))
        .await;
    page.click("rules").await;
    let listed = page
        .wait_until(
            "the rule to be listed",
            "(e => e && e.textContent)(document.querySelector('[data-testid=\"rule\"] code'))",
        )
        .await;
    assert_eq!(listed, "Bash");
    let path = repo_root().join("tests/artifacts/session-rules.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    page.click("rule-forget").await;
    page.element("rules-empty").await;
    let rules: Value = page
        .api()
        .await
        .get(&format!("/api/v15/sessions/{session}/rules"))
        .await
        .json()
        .await
        .expect("the rules as JSON");
    assert_eq!(
        rules["rules"],
        serde_json::json!([]),
        "forgotten on the server"
    );
    page.close().await;
}

/// Claude's questions in the browser: the form shows both questions with their options; a reload in the middle
/// keeps it actionable; a second window answers (one option; two options and a typed answer), and both windows
/// show the answers, which Claude quotes.
pub async fn browser_questions_are_answered_from_a_second_window(stack: &Stack) {
    let (_browser, page, session) = new_chat(stack).await;
    page.send("[fixture:question] plan the app").await;
    page.wait_for_attribute("approval", "data-state", "pending")
        .await;
    assert_eq!(
        page.js("return document.querySelectorAll('[data-testid=\"question\"]').length;")
            .await,
        2,
        "two questions"
    );
    page.open(&format!("/s/{session}")).await;
    page.wait_for_attribute("approval", "data-kind", "question")
        .await;
    let first = page.open_in_second_window(&format!("/s/{session}")).await;
    page.click_labelled("question-option", "SQLite").await;
    page.click_labelled("question-option", "Sign-in").await;
    page.click_labelled("question-option", "Export").await;
    // The second question's free-text answer (the first question's field is the first in the page).
    page.js(
        "const field = document.querySelectorAll('[data-testid=\"question-other-text\"]')[1];
         field.focus();",
    )
    .await;
    page.client
        .active_element()
        .await
        .expect("the focused field")
        .send_keys("Tags")
        .await
        .expect("typing");
    let path = repo_root().join("tests/artifacts/question-pending.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    page.click("question-submit").await;
    page.wait_for_attribute("approval", "data-state", "allowed")
        .await;
    page.switch_to(first).await;
    page.wait_for_attribute("approval", "data-state", "allowed")
        .await;
    let answers = page
        .wait_until(
            "the answers in the first window",
            "(e => e && e.textContent)(document.querySelector('[data-testid=\"question-answers\"]'))",
        )
        .await;
    let answers = answers.as_str().unwrap_or_default();
    assert!(
        answers.contains("SQLite") && answers.contains("Sign-in, Export, Tags"),
        "{answers}"
    );
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert_done(&page, &shown).await;
    assert!(
        shown[1].text.contains("Sign-in, Export, Tags"),
        "Claude read the answers: {shown:?}"
    );
}

/// A plan in the browser: rendered as markdown (its table too), approved with the switch to agent mode on, after
/// which the session's mode picker says agent; a second plan is sent back with a message that Claude quotes.
pub async fn browser_a_plan_is_approved_then_one_is_sent_back(stack: &Stack) {
    let (_browser, page, _session) = new_chat(stack).await;
    page.choose("turn-mode", "plan").await;
    page.send("[fixture:plan] add a flag").await;
    page.wait_for_attribute("approval", "data-kind", "plan")
        .await;
    let table = page
        .wait_until(
            "the plan's table",
            "(e => e && e.querySelector('table') !== null)(document.querySelector('[data-testid=\"plan-body\"]'))",
        )
        .await;
    assert_eq!(table, true, "the plan is rendered markdown");
    let path = repo_root().join("tests/artifacts/plan-pending.png");
    page.screenshot(&path).await;
    println!("    screenshot: {}", path.display());
    page.click("plan-approve").await;
    page.wait_for_attribute("approval", "data-state", "allowed")
        .await;
    page.wait_for_attribute("turn-mode", "data-value", "agent")
        .await;
    let shown = page
        .wait_for_messages("the answer to finish", finished(2))
        .await;
    assert!(shown[1].text.contains("acceptEdits mode"), "{shown:?}");

    page.choose("turn-mode", "plan").await;
    page.send("[fixture:plan] again").await;
    page.wait_until(
        "the second plan",
        "document.querySelectorAll('[data-testid=\"approval\"][data-state=\"pending\"]').length === 1",
    )
    .await;
    page.type_into("plan-message", "cover the error path").await;
    page.click("plan-keep").await;
    let shown = page
        .wait_for_messages("the second answer to finish", finished(4))
        .await;
    assert!(
        shown[3]
            .text
            .contains("Back to planning: cover the error path"),
        "{shown:?}"
    );
    page.wait_for_attribute("turn-mode", "data-value", "plan")
        .await;
    page.close().await;
}
