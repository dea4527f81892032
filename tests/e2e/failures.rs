//! The error chain and recovery: every way an execution can go wrong ends in exactly one terminal event, and the
//! session takes the next prompt.

use std::time::{Duration, Instant};

use serde_json::json;
use vf_e2e::callback::{execution_token, post_callback};
use vf_e2e::client::Line;
use vf_e2e::events::{execution_id, terminals, texts};
use vf_e2e::process::{alive, running_chat, wait_for_agent, Running};
use vf_e2e::{Client, Stack, StackOptions};
use vf_protocol::{ErrorCode, Event};

fn error_code(lines: &[Line]) -> Option<ErrorCode> {
    match terminals(lines).as_slice() {
        [Event::Error { code, .. }] => Some(*code),
        _ => None,
    }
}

/// Cancel stops the agent process in the sandbox (its status says so), ends the execution with a terminal
/// event, and the session accepts the next prompt.
pub async fn cancel_kills_the_sandbox_process(stack: &Stack) {
    let Running {
        user,
        session,
        stream,
        agent: pid,
        ..
    } = running_chat(&stack.base, "[fixture:hang] think forever").await;
    let process = stack
        .sandbox_process(pid)
        .await
        .expect("the sandbox knows the agent");
    assert_eq!(process["status"], "running");
    user.cancel(&session.id).await;
    let lines = stream.collect().await;
    match terminals(&lines).as_slice() {
        [Event::Done {
            cancelled: Some(true),
            ..
        }] => {}
        other => panic!("one terminal done{{cancelled}}: {other:?}"),
    }
    let after = stack
        .sandbox_processes()
        .await
        .into_iter()
        .find(|p| p["id"] == process["id"])
        .expect("the sandbox still lists the agent");
    assert_eq!(after["status"], "killed", "{after}");
    assert!(!alive(pid), "the agent process is gone");
    let next = user.turn(&session.id, "[fixture:text] next").await;
    assert!(
        matches!(
            terminals(&next).as_slice(),
            [Event::Done {
                cancelled: None,
                ..
            }]
        ),
        "{:?}",
        terminals(&next)
    );
}

/// An agent killed mid-stream (its callback ends without a terminal event, its process is gone) ends the
/// execution with `agent-crashed`.
pub async fn a_killed_agent_yields_agent_crashed(stack: &Stack) {
    let Running {
        mut stream,
        agent: pid,
        ..
    } = running_chat(&stack.base, "[fixture:text][delay:300] hi").await;
    stream.next().await.expect("the user message");
    // SAFETY: killing a process this test found by its environment; no memory is involved.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let lines = stream.collect().await;
    assert_eq!(
        error_code(&lines),
        Some(ErrorCode::AgentCrashed),
        "{:?}",
        terminals(&lines)
    );
}

/// A CLI that crashes, and one that prints garbage, each end with exactly one terminal event.
pub async fn cli_crash_and_garbage_end_cleanly(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let crashed = user.turn(&session.id, "[fixture:crash] hi").await;
    assert_eq!(error_code(&crashed), Some(ErrorCode::AgentCrashed));
    let garbage = user.turn(&session.id, "[fixture:garbage] hi").await;
    assert!(matches!(
        terminals(&garbage).as_slice(),
        [Event::Done { .. }]
    ));
    let failed = user.turn(&session.id, "[fixture:error-result] hi").await;
    assert_eq!(error_code(&failed), Some(ErrorCode::AgentError));
}

/// With the sandbox down, a chat ends with `dispatch-failed` and a message safe to show.
pub async fn sandbox_down_is_dispatch_failed(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    stack.stop_sandbox();
    let lines = user.chat(&session.id, "hi").await.collect().await;
    stack.start_sandbox();
    assert_eq!(error_code(&lines), Some(ErrorCode::DispatchFailed));
    let error = match terminals(&lines).first() {
        Some(Event::Error { error, .. }) => error.clone(),
        other => panic!("an error: {other:?}"),
    };
    assert!(
        !error.contains("127.0.0.1") && !error.contains("http"),
        "no internals: {error}"
    );
    // The sandbox is back once it answers its ping: the session works again.
    stack.wait_for_sandbox().await;
    let again = user.turn(&session.id, "[fixture:text] hi").await;
    assert!(matches!(terminals(&again).as_slice(), [Event::Done { .. }]));
}

/// An agent line over the size limit is neither stored whole nor dropped silently: a visible marker takes its
/// place, and the stream goes on.
pub async fn an_oversized_line_leaves_a_marker(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "[fixture:hang] wait").await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    wait_for_agent(&execution).await;
    let bearer = execution_token(stack, &execution, &session.id);
    let huge = format!(
        "{{\"type\":\"text-delta\",\"text\":\"{}\"}}\n",
        "x".repeat(3 * 1024 * 1024)
    );
    let body = format!(
        "{huge}{{\"type\":\"text-delta\",\"text\":\"after the big one\"}}\nnot json at all\n"
    );
    let response = post_callback(stack, &bearer, body).await;
    assert_eq!(response.status().as_u16(), 200);
    user.cancel(&session.id).await;
    let texts = texts(&stream.collect().await);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("exceeded") && t.contains("limit")),
        "a marker: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "after the big one"),
        "the stream went on: {texts:?}"
    );
    assert!(
        texts.iter().all(|t| t.len() < 1024 * 1024),
        "nothing oversized stored"
    );
}

/// Kill wrangler dev (workerd and the DO with it) mid-answer and start it again on the same state: everything
/// stored before the kill replays, the agent reconnects and resends what the DO had not stored, and the answer
/// completes with nothing lost and nothing twice.
pub async fn an_answer_survives_a_worker_restart(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "[fixture:text][delay:400] hi").await;
    let mut before = Vec::new();
    while before.len() < 5 {
        let line = stream.next().await.expect("lines before the kill");
        if !matches!(line.envelope.event, Event::Heartbeat) {
            before.push(line);
        }
    }
    drop(stream);
    stack.kill_wrangler();
    stack.start_wrangler().await;
    let log = user.wait_for_terminal(&session.id).await;
    for line in before.iter().filter(|l| l.envelope.seq.is_some()) {
        assert!(
            log.iter().any(|l| l.envelope == line.envelope),
            "stored before the kill, replayed after: {:?}",
            line.envelope
        );
    }
    let seqs: Vec<u64> = log.iter().filter_map(|l| l.envelope.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    match terminals(&log).as_slice() {
        [Event::Done { full_text, .. }] => {
            let mut transcript = vf_protocol::transcript::Transcript::default();
            for line in &log {
                transcript.apply(&line.envelope);
            }
            assert_eq!(
                Some(transcript.messages[1].text()),
                full_text.clone(),
                "nothing lost, nothing twice"
            );
            println!("    the agent reconnected and the answer completed");
        }
        other => panic!("the answer completes after the restart: {other:?}"),
    }
    let next = user.turn(&session.id, "[fixture:text] next").await;
    assert!(matches!(terminals(&next).as_slice(), [Event::Done { .. }]));
}

/// A stack whose agent command misbehaves on purpose: it never calls back, or exits before calling back.
pub fn broken_agent_options() -> StackOptions {
    StackOptions {
        bridge_timeout_ms: 3_000,
        watchdog_ms: 1_500,
        agent_script: Some(
            "case \"$(cat \"$VF_QUERY_FILE\")\" in *exit-early*) exit 3;; *) exec sleep 600;; esac\n".into(),
        ),
        ..StackOptions::default()
    }
}

/// The agent never calls back: after the bridge timeout, `error` `timeout` is stored and sent, and the session
/// takes the next prompt.
pub async fn an_agent_that_never_calls_back_times_out(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let started = Instant::now();
    let lines = user.chat(&session.id, "silence").await.collect().await;
    assert_eq!(
        error_code(&lines),
        Some(ErrorCode::Timeout),
        "{:?}",
        terminals(&lines)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(3_000),
        "not before the bridge timeout"
    );
    let stored = user.stored(&session.id).await;
    assert_eq!(
        error_code(&stored),
        Some(ErrorCode::Timeout),
        "the timeout is stored"
    );
    let next = user
        .post(
            "/api/v15/chat",
            json!({"sessionId": session.id, "prompt": "again"}),
        )
        .await;
    assert_eq!(
        next.status().as_u16(),
        200,
        "the session takes the next prompt"
    );
}

/// The agent process exits before calling back: the watchdog sees the dead process and ends the execution with
/// `agent-crashed`, well before the bridge timeout.
pub async fn an_agent_that_exits_early_is_crashed(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let lines = user.chat(&session.id, "exit-early").await.collect().await;
    assert_eq!(
        error_code(&lines),
        Some(ErrorCode::AgentCrashed),
        "{:?}",
        terminals(&lines)
    );
}
