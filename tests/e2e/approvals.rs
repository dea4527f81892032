//! Tool approvals end to end: Claude asks (the fake CLI's `can_use_tool`), any client of the user decides, the
//! first decision wins, and the answer goes on; rules, timeouts, cancel and a Worker restart included.

use std::time::Duration;

use serde_json::{json, Value};
use vf_e2e::client::Line;
use vf_e2e::events::{terminals, texts};
use vf_e2e::process::{running_chat, wait_for_exit, Running};
use vf_e2e::{Client, EventStream, Stack, StackOptions};
use vf_protocol::{ApprovalScope, DecidedBy, Event};

/// Approvals nobody answers are denied after this (the timeout test waits it out; every other test decides at
/// once, and the restart test needs it longer than a restart of wrangler dev).
const APPROVAL_TIMEOUT_MS: u64 = 30_000;

pub fn options() -> StackOptions {
    StackOptions {
        worker_vars: vec![(
            "APPROVAL_TIMEOUT_MS".into(),
            APPROVAL_TIMEOUT_MS.to_string(),
        )],
        ..StackOptions::default()
    }
}

/// A user with two clients (two logins of the same Claude token: two tabs, or a laptop and a phone).
pub(crate) async fn two_clients(stack: &Stack) -> (Client, Client) {
    let login = Client::login(&stack.base).await;
    let second = Client::login_with(&stack.base, &login.claude_token).await;
    (login.client, second.client)
}

/// Reads `stream` until an event `pick` accepts; returns it and everything read.
pub(crate) async fn read_until<T>(
    stream: &mut EventStream,
    seen: &mut Vec<Line>,
    pick: impl Fn(&Event) -> Option<T>,
) -> T {
    loop {
        let line = stream.next().await.expect("the stream goes on");
        let picked = pick(&line.envelope.event);
        let terminal = line.envelope.event.is_terminal();
        seen.push(line);
        if let Some(value) = picked {
            return value;
        }
        assert!(!terminal, "the answer ended first: {:?}", seen.last());
    }
}

/// The next `confirmation`: its approval id, tool name and input.
pub(crate) async fn confirmation(
    stream: &mut EventStream,
    seen: &mut Vec<Line>,
) -> (String, String, Value) {
    read_until(stream, seen, |e| match e {
        Event::Confirmation {
            approval_id,
            tool_name,
            input,
            ..
        } => Some((approval_id.clone(), tool_name.clone(), input.clone())),
        _ => None,
    })
    .await
}

/// The next `confirmation-result`.
async fn result(
    stream: &mut EventStream,
    seen: &mut Vec<Line>,
) -> (String, bool, ApprovalScope, DecidedBy) {
    read_until(stream, seen, |e| match e {
        Event::ConfirmationResult {
            approval_id,
            approved,
            scope,
            by,
            ..
        } => Some((approval_id.clone(), *approved, *scope, *by)),
        _ => None,
    })
    .await
}

/// A chat of a new user whose agent asks for one approval: the user, the session id, the open stream, what it
/// read so far, and the approval id.
struct Asked {
    user: Client,
    session: String,
    stream: EventStream,
    seen: Vec<Line>,
    approval_id: String,
}

async fn asked(stack: &Stack) -> Asked {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await.id;
    let mut stream = user.chat(&session, "[fixture:permission] list it").await;
    let mut seen = Vec::new();
    let (approval_id, ..) = confirmation(&mut stream, &mut seen).await;
    Asked {
        user,
        session,
        stream,
        seen,
        approval_id,
    }
}

pub(crate) async fn approve(client: &Client, body: Value) -> (u16, Value) {
    let response = client.post("/api/v15/approve", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The control responses the fake CLI received, in order (it logs them into its args log).
pub(crate) fn control_responses(stack: &Stack) -> Vec<Value> {
    std::fs::read_to_string(stack.args_log())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("controlResponse").cloned())
        .collect()
}

pub(crate) fn done(lines: &[Line]) {
    assert!(
        matches!(
            terminals(lines).as_slice(),
            [Event::Done {
                cancelled: None,
                ..
            }]
        ),
        "one done: {:?}",
        terminals(lines)
    );
}

/// A confirmation arrives with its fields; a second client of the same user approves it with the original
/// client's three-field body; the same answer goes on to `done`; a second decision gets 409 and changes nothing;
/// another user gets 404.
pub async fn approvals_a_second_client_approves_and_the_answer_continues(stack: &Stack) {
    let (first, second) = two_clients(stack).await;
    let session = first.create_session().await;
    let mut stream = first
        .chat(&session.id, "[fixture:permission] list it")
        .await;
    let mut seen = Vec::new();
    let (approval_id, tool, input) = confirmation(&mut stream, &mut seen).await;
    assert_eq!(tool, "Bash");
    assert!(
        input["command"].is_string(),
        "the command to approve: {input}"
    );

    let stranger = Client::signed_in(&stack.base).await;
    let body = json!({"sessionId": session.id, "approvalId": approval_id, "approved": true});
    assert_eq!(
        approve(&stranger, body.clone()).await.0,
        404,
        "another user"
    );
    let (status, answer) = approve(&second, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"approvalId": approval_id, "approved": true}));

    let decided = result(&mut stream, &mut seen).await;
    assert_eq!(
        decided,
        (
            approval_id.clone(),
            true,
            ApprovalScope::Once,
            DecidedBy::User
        )
    );
    seen.extend(stream.collect().await);
    done(&seen);
    assert!(
        seen.iter().any(|l| matches!(
            &l.envelope.event,
            Event::ToolResult {
                is_error: None | Some(false),
                ..
            }
        )),
        "the tool ran"
    );
    // Too late: decided already.
    let deny = json!({"sessionId": session.id, "approvalId": approval_id, "approved": false});
    let before = first.snapshot(&session.id).await;
    assert_eq!(approve(&second, deny).await.0, 409);
    assert_eq!(first.snapshot(&session.id).await, before, "changes nothing");
    // Unknown approval, bad body.
    let unknown =
        json!({"sessionId": session.id, "approvalId": "no-such-approval", "approved": true});
    assert_eq!(approve(&first, unknown).await.0, 404);
    assert_eq!(
        approve(&first, json!({"sessionId": session.id})).await.0,
        400
    );
}

/// A deny with a message reaches Claude (the fake quotes it in its answer) and the turn ends cleanly.
pub async fn approvals_a_deny_with_a_message_reaches_claude(stack: &Stack) {
    let Asked {
        user,
        session,
        mut stream,
        mut seen,
        approval_id,
    } = asked(stack).await;
    let message = "use ls -la instead";
    let (status, _) = approve(
        &user,
        json!({"sessionId": session, "approvalId": approval_id, "approved": false, "message": message}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, approved, _, by) = result(&mut stream, &mut seen).await;
    assert_eq!((approved, by), (false, DecidedBy::User));
    seen.extend(stream.collect().await);
    done(&seen);
    let text = texts(&seen).concat();
    assert!(text.contains(message), "Claude was told why: {text}");
    let denied = control_responses(stack)
        .into_iter()
        .any(|r| r.to_string().contains("deny") && r.to_string().contains(message));
    assert!(denied, "the CLI received the deny with the message");
}

/// "Allow for this session" answers the second request itself (`by: "rule"`); the rules can be read and cleared.
pub async fn approvals_allow_for_this_session_answers_later_requests(stack: &Stack) {
    let Running {
        user,
        session,
        mut stream,
        ..
    } = running_chat(&stack.base, "[fixture:permission-twice] two").await;
    let mut seen = Vec::new();
    let (first_id, ..) = confirmation(&mut stream, &mut seen).await;
    let (status, _) = approve(
        &user,
        json!({"sessionId": session.id, "approvalId": first_id, "approved": true, "scope": "session"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        result(&mut stream, &mut seen).await,
        (first_id, true, ApprovalScope::Session, DecidedBy::User)
    );
    let (second_id, ..) = confirmation(&mut stream, &mut seen).await;
    let (id, approved, _, by) = result(&mut stream, &mut seen).await;
    assert_eq!((id, approved, by), (second_id, true, DecidedBy::Rule));
    seen.extend(stream.collect().await);
    done(&seen);

    let rules_path = format!("/api/v15/sessions/{}/rules", session.id);
    let rules: Value = user.get(&rules_path).await.json().await.unwrap();
    assert_eq!(rules["rules"][0]["toolName"], "Bash", "{rules}");
    let stranger = Client::signed_in(&stack.base).await;
    assert_eq!(stranger.get(&rules_path).await.status().as_u16(), 404);
    assert_eq!(user.delete(&rules_path).await.status().as_u16(), 204);
    let rules: Value = user.get(&rules_path).await.json().await.unwrap();
    assert_eq!(rules["rules"], json!([]));
}

/// Cancel while an approval is pending denies it (`by: "cancel"`), ends the turn and the agent's process.
pub async fn approvals_cancel_while_pending_ends_the_turn(stack: &Stack) {
    let Running {
        user,
        session,
        mut stream,
        agent,
        ..
    } = running_chat(&stack.base, "[fixture:permission] list it").await;
    let mut seen = Vec::new();
    let (approval_id, ..) = confirmation(&mut stream, &mut seen).await;
    user.cancel(&session.id).await;
    let (id, approved, _, by) = result(&mut stream, &mut seen).await;
    assert_eq!(
        (id.as_str(), approved, by),
        (approval_id.as_str(), false, DecidedBy::Cancel)
    );
    seen.extend(stream.collect().await);
    assert!(matches!(
        terminals(&seen).as_slice(),
        [Event::Done {
            cancelled: Some(true),
            ..
        }]
    ));
    wait_for_exit(agent).await;
    let late = json!({"sessionId": session.id, "approvalId": approval_id, "approved": true});
    assert_eq!(approve(&user, late).await.0, 409);
}

/// Nobody answers: the approval is denied by the timeout and the turn ends cleanly.
pub async fn approvals_an_unanswered_approval_times_out(stack: &Stack) {
    let Asked {
        mut stream,
        mut seen,
        approval_id,
        ..
    } = asked(stack).await;
    let (id, approved, _, by) = tokio::time::timeout(
        Duration::from_millis(APPROVAL_TIMEOUT_MS * 3),
        result(&mut stream, &mut seen),
    )
    .await
    .expect("the timeout decides");
    assert_eq!((id, approved, by), (approval_id, false, DecidedBy::Timeout));
    seen.extend(stream.collect().await);
    done(&seen);
}

/// wrangler dev is killed while an approval is pending and started again on the same state: the approval is
/// still pending (replayed, undecided), a decision after the restart reaches the agent, and the answer
/// completes with nothing lost and nothing twice.
pub async fn approvals_a_pending_approval_survives_a_worker_restart(stack: &Stack) {
    let Asked {
        user,
        session,
        approval_id,
        ..
    } = asked(stack).await;
    stack.kill_wrangler();
    stack.start_wrangler().await;
    // The replay after the restart (it would stay open while the execution runs): up to the confirmation,
    // nothing decided it.
    let mut replay = user.events(&session, 0).await;
    let mut replayed = Vec::new();
    let (replayed_id, ..) = confirmation(&mut replay, &mut replayed).await;
    assert_eq!(replayed_id, approval_id, "still there after the restart");
    let decided = replayed
        .iter()
        .any(|l| matches!(l.envelope.event, Event::ConfirmationResult { .. }));
    assert!(!decided, "still pending after the restart");
    let (status, _) = approve(
        &user,
        json!({"sessionId": session, "approvalId": approval_id, "approved": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        result(&mut replay, &mut replayed).await,
        (approval_id, true, ApprovalScope::Once, DecidedBy::User),
        "the decision reaches every stream"
    );
    drop(replay);
    let log = user.wait_for_terminal(&session).await;
    done(&log);
    let seqs: Vec<u64> = log.iter().filter_map(|l| l.envelope.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    let results = log
        .iter()
        .filter(|l| matches!(l.envelope.event, Event::ConfirmationResult { .. }))
        .count();
    let tools = log
        .iter()
        .filter(|l| matches!(l.envelope.event, Event::ToolResult { .. }))
        .count();
    assert_eq!((results, tools), (1, 1), "each once");
}
