//! End-to-end tests of the `vf-agent` binary driving `vf-fake-claude`, in stdout and in callback mode.

mod common;

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{parse_line, scratch, terminal, write_query, AGENT, FAKE_CLAUDE};
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use vf_protocol::{AgentLine, ErrorCode, Event, LineFramer};

const JWT: &str = "jwt-SECRET-7f3a9c";
const OAUTH: &str = "sk-ant-oat01-OAUTHSECRET-51d0e2";

struct Run {
    lines: Vec<AgentLine>,
    stderr: String,
    status: ExitStatus,
    /// When the process exited.
    ended: Instant,
}

/// The agent with a clean environment: only what the test gives it, the fake CLI with no delay by default, and
/// the secrets (which must never be logged).
fn agent(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(AGENT);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("VF_QUERY_FILE", "query.json")
        .env("VF_CLAUDE_BIN", FAKE_CLAUDE)
        .env("VF_FAKE_DELAY_MS", "0")
        .env("CLAUDE_CODE_OAUTH_TOKEN", OAUTH)
        .env("IS_SANDBOX", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run_agent(prompt: &str, env: &[(&str, &str)]) -> Run {
    let dir = scratch("agent");
    write_query(&dir.join("query.json"), prompt);
    let output = tokio::time::timeout(Duration::from_secs(30), agent(&dir, env).output())
        .await
        .expect("the agent ends by itself")
        .unwrap();
    let ended = Instant::now();
    std::fs::remove_dir_all(&dir).unwrap();
    Run {
        lines: output
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse_line)
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status,
        ended,
    }
}

fn error_code(event: &Event) -> Option<ErrorCode> {
    match event {
        Event::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn every_fixture_ends_with_exactly_one_terminal_event() {
    let cases = [
        ("text", None),
        ("tool", None),
        ("garbage", None),
        ("demo", None),
        ("error-result", Some(ErrorCode::AgentError)),
        ("crash", Some(ErrorCode::AgentCrashed)),
        ("hang", Some(ErrorCode::Timeout)),
        ("cards", None),
    ];
    let prompts: Vec<String> = cases
        .iter()
        .map(|(fixture, _)| format!("[fixture:{fixture}] go"))
        .collect();
    let runs = futures::future::join_all(
        prompts
            .iter()
            .map(|prompt| run_agent(prompt, &[("VF_IDLE_TIMEOUT_SECS", "1")])),
    )
    .await;
    for ((fixture, expected), run) in cases.iter().zip(&runs) {
        assert!(run.status.success(), "{fixture}: {}", run.stderr);
        let last = terminal(&run.lines);
        assert_eq!(error_code(last), *expected, "{fixture}: {last:?}");
        assert!(
            matches!(run.lines[0].event, Event::SessionInit { .. }),
            "{fixture}"
        );
    }
    let crash = terminal(&runs[5].lines);
    assert!(
        matches!(crash, Event::Error { error, .. } if error.contains("exited with code 1")),
        "{crash:?}"
    );
    let hang = terminal(&runs[6].lines);
    assert!(
        matches!(hang, Event::Error { error, .. } if error.contains("silent")),
        "{hang:?}"
    );
    assert!(
        runs[2].stderr.contains("skipped 4 stream-json lines"),
        "{}",
        runs[2].stderr
    );
}

#[tokio::test]
async fn resume_model_and_permission_mode_reach_the_cli_and_the_new_session_id_lands_on_done() {
    let dir = scratch("args");
    let log = dir.join("args.jsonl");
    let log = log.to_str().unwrap();
    let first = run_agent(
        "[fixture:text] hi",
        &[("VF_FAKE_ARGS_LOG", log), ("VF_SDK_SESSION_ID", "")],
    )
    .await;
    let second = run_agent(
        "[fixture:resume] again",
        &[
            ("VF_FAKE_ARGS_LOG", log),
            ("VF_SDK_SESSION_ID", "old-session"),
            ("VF_MODEL", "claude-opus-4-1"),
            ("VF_AUTONOMY_MODE", "autonomous"),
        ],
    )
    .await;
    let argv: Vec<Vec<String>> = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(argv.len(), 2);
    assert!(!argv[0].contains(&"--resume".to_string()), "{:?}", argv[0]);
    let second_args = argv[1].join(" ");
    for expected in [
        "--resume old-session",
        "--model claude-opus-4-1",
        "--permission-mode bypassPermissions",
    ] {
        assert!(second_args.contains(expected), "{second_args}");
    }
    assert!(matches!(terminal(&first.lines), Event::Done { .. }));
    let Event::SessionInit {
        session_id: init, ..
    } = &second.lines[0].event
    else {
        panic!("{:?}", second.lines[0])
    };
    let done = terminal(&second.lines);
    assert_eq!(done.sdk_session_id(), Some(init.as_str()));
    assert_ne!(init, "old-session");
}

#[tokio::test]
async fn the_query_file_is_consumed_and_its_absence_is_reported() {
    let dir = scratch("query");
    write_query(&dir.join("query.json"), "[fixture:text] hi");
    let output = agent(&dir, &[]).output().await.unwrap();
    assert!(output.status.success());
    assert!(
        !dir.join("query.json").exists(),
        "the prompt must not linger on disk"
    );
    // Run again: the file is gone now.
    let output = agent(&dir, &[]).output().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let lines: Vec<AgentLine> = output
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        error_code(terminal(&lines)),
        Some(ErrorCode::DispatchFailed)
    );
}

#[tokio::test]
async fn a_missing_cli_is_a_clear_crash() {
    let run = run_agent("hi", &[("VF_CLAUDE_BIN", "/nonexistent/claude")]).await;
    let last = terminal(&run.lines);
    assert_eq!(run.lines.len(), 1);
    assert!(
        matches!(last, Event::Error { code: ErrorCode::AgentCrashed, error } if error.contains("could not start Claude Code (/nonexistent/claude)")),
        "{last:?}"
    );
}

#[tokio::test]
async fn silences_are_filled_with_heartbeats() {
    let run = run_agent(
        "[fixture:hang] go",
        &[
            ("VF_IDLE_TIMEOUT_SECS", "1.2"),
            ("VF_HEARTBEAT_SECS", "0.25"),
        ],
    )
    .await;
    assert_eq!(error_code(terminal(&run.lines)), Some(ErrorCode::Timeout));
    let beats = run
        .lines
        .iter()
        .filter(|l| matches!(l.event, Event::Heartbeat))
        .count();
    assert!(beats >= 3, "{beats} heartbeats in {:?}", run.lines);
}

#[tokio::test]
async fn max_runtime_stops_a_cli_that_keeps_talking() {
    // A slow but never-silent session: the idle timer keeps being reset, the overall limit still applies.
    let run = run_agent(
        "[fixture:demo] [delay:300] go",
        &[("VF_MAX_RUNTIME_SECS", "1")],
    )
    .await;
    let last = terminal(&run.lines);
    assert!(
        matches!(last, Event::Error { code: ErrorCode::Timeout, error } if error.contains("limit")),
        "{last:?}"
    );
}

#[tokio::test]
async fn sigterm_ends_the_run_as_cancelled() {
    let dir = scratch("sigterm");
    write_query(&dir.join("query.json"), "[fixture:hang] go");
    let mut child = agent(&dir, &[]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next_line().await.unwrap().unwrap();
    assert!(first.contains("session-init"));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let mut lines = vec![parse_line(first.as_bytes())];
    while let Some(line) = stdout.next_line().await.unwrap() {
        lines.push(parse_line(line.as_bytes()));
    }
    assert!(child.wait().await.unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(error_code(terminal(&lines)), Some(ErrorCode::Cancelled));
}

/// What the test's callback endpoint saw.
#[derive(Default)]
struct Received {
    authorization: Option<String>,
    content_type: Option<String>,
    lines: Vec<(Instant, AgentLine)>,
}

/// A stand-in for the Worker's `/internal/stream`: records the headers and each line with its arrival time, then
/// answers `status` with a receipt.
async fn callback_server(status: StatusCode) -> (String, Arc<Mutex<Received>>) {
    async fn stream(
        State((status, received)): State<(StatusCode, Arc<Mutex<Received>>)>,
        headers: HeaderMap,
        body: Body,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
        {
            let mut r = received.lock().unwrap();
            r.authorization = header("authorization");
            r.content_type = header("content-type");
        }
        let mut framer = LineFramer::default();
        let mut chunks = body.into_data_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            let now = Instant::now();
            let mut r = received.lock().unwrap();
            framer.push(&chunk, |line| {
                r.lines.push((now, parse_line(line.unwrap())))
            });
        }
        let r = received.lock().unwrap();
        let terminal = r.lines.iter().any(|(_, l)| l.event.is_terminal());
        (
            status,
            Json(json!({"stored": r.lines.len(), "terminal": terminal})),
        )
    }
    let received = Arc::new(Mutex::new(Received::default()));
    let app = Router::new()
        .route("/internal/stream", post(stream))
        .with_state((status, received.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/internal/stream", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn callback_mode_streams_numbered_lines_as_they_happen() {
    let (url, received) = callback_server(StatusCode::OK).await;
    let started = Instant::now();
    let run = run_agent(
        "[fixture:text] [delay:150] hi",
        &[("VF_CALLBACK_URL", &url), ("VF_STREAM_JWT", JWT)],
    )
    .await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.lines.is_empty(), "nothing on stdout in callback mode");
    assert!(
        run.stderr
            .contains("callback stored 8 lines (terminal: true)"),
        "{}",
        run.stderr
    );
    let received = received.lock().unwrap();
    assert_eq!(
        received.authorization.as_deref(),
        Some(format!("Bearer {JWT}").as_str())
    );
    assert_eq!(
        received.content_type.as_deref(),
        Some("application/x-ndjson")
    );
    let lines: Vec<AgentLine> = received.lines.iter().map(|(_, l)| l.clone()).collect();
    assert!(matches!(terminal(&lines), Event::Done { .. }));
    assert_eq!(lines.len(), 8, "init, 6 deltas, done");
    // The fake takes ~2 s (14 lines, 150 ms apart): lines must land while it runs, not in a lump at the end.
    let first = received.lines[0].0;
    let last = received.lines.last().unwrap().0;
    assert!(
        first.duration_since(started) < Duration::from_millis(1500),
        "first line after {:?}",
        first - started
    );
    assert!(
        last - first > Duration::from_millis(1000),
        "lines spread over {:?}",
        last - first
    );
    assert!(run.ended - first > Duration::from_millis(1000));
    let distinct = received
        .lines
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 > Duration::from_millis(50))
        .count();
    assert!(distinct >= 5, "only {distinct} separate arrivals");
}

#[tokio::test]
async fn a_failing_callback_exits_1_and_never_logs_a_secret() {
    let (url, _) = callback_server(StatusCode::UNAUTHORIZED).await;
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/internal/stream", listener.local_addr().unwrap())
    };
    for (url, expected) in [(url, "401"), (refused, "callback request failed")] {
        let run = run_agent(
            "[fixture:text] hi",
            &[
                ("VF_CALLBACK_URL", &url),
                ("VF_STREAM_JWT", JWT),
                ("VF_CALLBACK_RETRY_SECS", "1"),
            ],
        )
        .await;
        assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
        for secret in [JWT, OAUTH, "SECRET"] {
            assert!(
                !run.stderr.contains(secret),
                "stderr leaks a secret: {}",
                run.stderr
            );
        }
    }
}

/// The stamp at the start of a synthetic delta's text (unix µs).
fn stamp(event: &Event) -> u64 {
    let Event::TextDelta { text } = event else {
        panic!("not a text delta: {event:?}")
    };
    text.split(' ').next().unwrap().parse().unwrap()
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::test]
async fn synthetic_mode_streams_stamped_deltas_through_the_callback_without_a_cli() {
    let (url, received) = callback_server(StatusCode::OK).await;
    let before = unix_micros();
    let run = run_agent(
        "ignored",
        &[
            ("VF_CALLBACK_URL", &url),
            ("VF_STREAM_JWT", JWT),
            ("VF_SYNTHETIC", "20:300:2000:50000"),
            // Would fail the run if the CLI were started.
            ("VF_CLAUDE_BIN", "/nonexistent/claude"),
        ],
    )
    .await;
    let after = unix_micros();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("callback stored 22 lines (terminal: true)"),
        "{}",
        run.stderr
    );
    let received = received.lock().unwrap();
    let lines: Vec<AgentLine> = received.lines.iter().map(|(_, l)| l.clone()).collect();
    assert!(matches!(terminal(&lines), Event::Done { .. }));
    assert!(matches!(lines[0].event, Event::SessionInit { .. }));
    let deltas = &lines[1..21];
    let stamps: Vec<u64> = deltas.iter().map(|l| stamp(&l.event)).collect();
    for line in deltas {
        let Event::TextDelta { text } = &line.event else {
            unreachable!()
        };
        assert_eq!(text.len(), 300);
    }
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert!(before <= stamps[0] && stamps[19] <= after);
    // The first delta waits out the 50 ms pause after session-init.
    let init_arrived = received.lines[0].0;
    let first_arrived = received.lines[1].0;
    assert!(
        first_arrived - init_arrived >= Duration::from_millis(45),
        "{:?}",
        first_arrived - init_arrived
    );
    // Paced on a fixed schedule 2 ms apart from the start (the first one may itself be a little late): the 19
    // intervals take about 38 ms, not nothing.
    assert!(stamps[19] - stamps[0] >= 36_000, "{stamps:?}");
}

#[tokio::test]
async fn synthetic_mode_writes_to_stdout_back_to_back() {
    let run = run_agent("ignored", &[("VF_SYNTHETIC", "500:64:0")]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.lines.len(), 502);
    assert!(matches!(terminal(&run.lines), Event::Done { .. }));
    let stamps: Vec<u64> = run.lines[1..501].iter().map(|l| stamp(&l.event)).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    // No pacing: 500 lines to a pipe take well under a second.
    assert!(stamps[499] - stamps[0] < 1_000_000, "{stamps:?}");
}

/// One answer of the fake DO's approvals endpoint: a status, and for 200 the decision (its `approvalId` is filled
/// in from the path).
type Reply = (StatusCode, Option<serde_json::Value>);

/// What the fake DO's approvals endpoint saw: each ask's approval id and `Authorization` header.
type Asks = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn decide(approved: bool, message: Option<&str>) -> Reply {
    let mut decision = json!({"approved": approved, "scope": "once", "by": "user"});
    if let Some(message) = message {
        decision["message"] = json!(message);
    }
    (StatusCode::OK, Some(decision))
}

/// A stand-in for the DO's `GET /internal/approvals/{id}`: answers with `replies` in order, the last one for
/// every later ask; a 204 is held for a moment first, as the DO holds a pending ask.
async fn approvals_server(replies: Vec<Reply>) -> (String, Asks) {
    type Shared = (Arc<Mutex<Vec<Reply>>>, Asks);
    async fn ask(
        State((replies, asks)): State<Shared>,
        UrlPath(id): UrlPath<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let authorization = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        asks.lock().unwrap().push((id.clone(), authorization));
        let (status, decision) = {
            let mut replies = replies.lock().unwrap();
            if replies.len() > 1 {
                replies.remove(0)
            } else {
                replies[0].clone()
            }
        };
        if status == StatusCode::NO_CONTENT {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match decision {
            Some(mut decision) => {
                decision["approvalId"] = json!(id);
                (status, Json(decision)).into_response()
            }
            None => status.into_response(),
        }
    }
    let asks = Asks::default();
    let app = Router::new()
        .route("/internal/approvals/{id}", get(ask))
        .with_state((Arc::new(Mutex::new(replies)), asks.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/internal/approvals",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, asks)
}

/// A run on the DO path's approvals (stdout mode), with what the fake CLI logged: its arguments and every control
/// message it received.
struct ApprovalRun {
    run: Run,
    asks: Vec<(String, Option<String>)>,
    log: Vec<serde_json::Value>,
}

impl ApprovalRun {
    fn confirmations(&self) -> Vec<&Event> {
        self.run
            .lines
            .iter()
            .map(|l| &l.event)
            .filter(|e| matches!(e, Event::Confirmation { .. }))
            .collect()
    }

    /// The `response` bodies of the control responses the CLI received.
    fn answers(&self) -> Vec<&serde_json::Value> {
        self.log
            .iter()
            .filter_map(|l| l.get("controlResponse"))
            .map(|r| &r["response"]["response"])
            .collect()
    }

    fn full_text(&self) -> &str {
        match terminal(&self.run.lines) {
            Event::Done {
                full_text: Some(text),
                ..
            } => text,
            other => panic!("not done: {other:?}\n{}", self.run.stderr),
        }
    }
}

async fn approval_run(prompt: &str, replies: Vec<Reply>) -> ApprovalRun {
    let (url, asks) = approvals_server(replies).await;
    let dir = scratch("approvals");
    let log = dir.join("args.jsonl");
    let run = run_agent(
        prompt,
        &[
            ("VF_APPROVALS_URL", &url),
            ("VF_STREAM_JWT", JWT),
            ("VF_FAKE_ARGS_LOG", log.to_str().unwrap()),
        ],
    )
    .await;
    let log = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        !run.stderr.contains("did not exit"),
        "the CLI's input is closed after its result: {}",
        run.stderr
    );
    let asks = asks.lock().unwrap().clone();
    ApprovalRun { run, asks, log }
}

#[tokio::test]
async fn an_allowed_tool_call_runs_and_the_cli_got_the_sdk_arguments_and_messages() {
    let run = approval_run("[fixture:permission] go", vec![decide(true, None)]).await;
    let argv: Vec<String> = serde_json::from_value(run.log[0].clone()).unwrap();
    let argv = argv.join(" ");
    for expected in [
        "-p --input-format stream-json --output-format stream-json",
        "--permission-prompt-tool stdio",
    ] {
        assert!(argv.contains(expected), "{argv}");
    }
    let initialize = &run.log[1]["controlRequest"];
    assert_eq!(
        initialize["request"],
        json!({"subtype": "initialize", "hooks": null})
    );
    let [Event::Confirmation {
        approval_id,
        tool_name,
        input,
        tool_use_id,
        suggestions,
    }] = run.confirmations()[..]
    else {
        panic!("one confirmation: {:?}", run.run.lines)
    };
    assert_eq!(tool_name, "Bash");
    assert_eq!(input["command"], "echo hello");
    assert_eq!(tool_use_id.as_deref(), Some("toolu_01PermBash"));
    assert_eq!(suggestions.as_ref().unwrap()[0]["type"], "addRules");
    assert_eq!(
        run.asks,
        [(approval_id.clone(), Some(format!("Bearer {JWT}")))]
    );
    assert_eq!(
        run.answers(),
        [&json!({"behavior": "allow", "updatedInput": input})]
    );
    assert!(run.full_text().contains("hello"));
    // The confirmation sits between the tool call and its result, numbered like every other line.
    let kinds: Vec<&str> = run.run.lines.iter().map(|l| l.event.kind()).collect();
    let at = kinds.iter().position(|k| *k == "confirmation").unwrap();
    assert_eq!(
        kinds[at - 1..=at + 1],
        ["tool-start", "confirmation", "tool-result"]
    );
}

#[tokio::test]
async fn a_denied_tool_call_ends_cleanly_and_the_answer_quotes_the_message() {
    let run = approval_run(
        "[fixture:permission] go",
        vec![decide(false, Some("not on a Friday"))],
    )
    .await;
    assert_eq!(
        run.answers(),
        [&json!({"behavior": "deny", "message": "not on a Friday"})]
    );
    assert!(run.full_text().contains("not on a Friday"));
    assert!(run.run.lines.iter().any(|l| matches!(
        &l.event,
        Event::ToolResult { output, is_error: Some(true), .. } if output == "not on a Friday"
    )));
}

#[tokio::test]
async fn pending_and_failing_asks_are_repeated_until_the_decision() {
    let run = approval_run(
        "[fixture:permission] go",
        vec![
            (StatusCode::NO_CONTENT, None),
            (StatusCode::SERVICE_UNAVAILABLE, None),
            (StatusCode::NO_CONTENT, None),
            decide(true, None),
        ],
    )
    .await;
    assert_eq!(run.asks.len(), 4, "{:?}", run.asks);
    assert!(run.asks.iter().all(|(id, _)| *id == run.asks[0].0));
    assert_eq!(run.answers()[0]["behavior"], "allow");
    assert!(run.full_text().contains("hello"));
}

#[tokio::test]
async fn an_approval_the_do_no_longer_knows_is_denied() {
    let run = approval_run(
        "[fixture:permission] go",
        vec![(StatusCode::NOT_FOUND, None)],
    )
    .await;
    let reason = vf_sandbox::agent::control::deny_reason(vf_protocol::DecidedBy::Cancel);
    assert_eq!(
        run.answers(),
        [&json!({"behavior": "deny", "message": reason})]
    );
    assert!(run.full_text().contains(reason));
}

#[tokio::test]
async fn each_request_is_asked_for_on_its_own() {
    let run = approval_run("[fixture:permission-twice] go", vec![decide(true, None)]).await;
    let ids: Vec<&str> = run
        .confirmations()
        .iter()
        .map(|c| match c {
            Event::Confirmation { approval_id, .. } => approval_id.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    let asked: Vec<&str> = run.asks.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(asked, ids);
    assert_eq!(run.answers().len(), 2);
    assert_eq!(run.full_text(), "I asked twice.");
}

/// A CLI of a few lines of shell: it asks something vf-agent does not serve and two permissions at once, writes
/// the three answers it gets to `$VF_TEST_ANSWERS`, then ends its turn.
const SCRIPTED_CLI: &str = r#"#!/bin/sh
read -r initialize
read -r prompt
echo '{"type":"control_request","request_id":"x1","request":{"subtype":"mcp_message","server_name":"s","message":{}}}'
echo '{"type":"control_request","request_id":"x2","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"one"}}}'
echo '{"type":"control_request","request_id":"x3","request":{"subtype":"can_use_tool","tool_name":"Write","input":{"file_path":"a"}}}'
for n in 1 2 3; do read -r answer; printf '%s\n' "$answer" >> "$VF_TEST_ANSWERS"; done
echo '{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s1"}'
cat > /dev/null
"#;

#[tokio::test]
async fn unknown_requests_are_refused_and_several_permissions_may_wait_at_once() {
    let dir = scratch("scripted");
    let cli = dir.join("claude.sh");
    std::fs::write(&cli, SCRIPTED_CLI).unwrap();
    std::fs::set_permissions(&cli, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let answers = dir.join("answers.jsonl");
    let (url, asks) = approvals_server(vec![decide(true, None)]).await;
    let run = run_agent(
        "hi",
        &[
            ("VF_CLAUDE_BIN", cli.to_str().unwrap()),
            ("VF_APPROVALS_URL", &url),
            ("VF_STREAM_JWT", JWT),
            ("VF_TEST_ANSWERS", answers.to_str().unwrap()),
        ],
    )
    .await;
    let answers: Vec<serde_json::Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(terminal(&run.lines), Event::Done { .. }),
        "{}",
        run.stderr
    );
    assert_eq!(
        answers[0],
        json!({"type": "control_response", "response": {"subtype": "error", "request_id": "x1",
            "error": "vf-agent does not serve \"mcp_message\" requests"}})
    );
    let mut allowed: Vec<(&str, &serde_json::Value)> = answers[1..]
        .iter()
        .map(|a| {
            assert_eq!(a["response"]["response"]["behavior"], "allow");
            (
                a["response"]["request_id"].as_str().unwrap(),
                &a["response"]["response"]["updatedInput"],
            )
        })
        .collect();
    allowed.sort_by_key(|(id, _)| *id);
    assert_eq!(
        allowed,
        [
            ("x2", &json!({"command": "one"})),
            ("x3", &json!({"file_path": "a"}))
        ]
    );
    assert_eq!(asks.lock().unwrap().len(), 2);
    let confirmations = run
        .lines
        .iter()
        .filter(|l| matches!(l.event, Event::Confirmation { .. }))
        .count();
    assert_eq!(confirmations, 2);
}

#[tokio::test]
async fn sigterm_interrupts_the_cli_before_it_is_killed() {
    let (url, _) = approvals_server(vec![(StatusCode::NO_CONTENT, None)]).await;
    let dir = scratch("interrupt");
    let log = dir.join("args.jsonl");
    write_query(&dir.join("query.json"), "[fixture:permission] go");
    let mut child = agent(
        &dir,
        &[
            ("VF_APPROVALS_URL", &url),
            ("VF_STREAM_JWT", JWT),
            ("VF_FAKE_ARGS_LOG", log.to_str().unwrap()),
            // The user takes their time: that alone must not end the run.
            ("VF_IDLE_TIMEOUT_SECS", "0.3"),
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    while let Some(line) = stdout.next_line().await.unwrap() {
        let line = parse_line(line.as_bytes());
        let asked = matches!(line.event, Event::Confirmation { .. });
        lines.push(line);
        if asked {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let signalled = Instant::now();
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    while let Some(line) = stdout.next_line().await.unwrap() {
        lines.push(parse_line(line.as_bytes()));
    }
    assert!(child.wait().await.unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(error_code(terminal(&lines)), Some(ErrorCode::Cancelled));
    assert!(
        log.lines().any(|l| l.contains(r#""subtype":"interrupt""#)),
        "{log}"
    );
    // The fake ends its turn when interrupted: no need to wait out the grace period.
    assert!(signalled.elapsed() < Duration::from_millis(1_400));
}
