//! Claude's questions (`AskUserQuestion`) and plans (`ExitPlanMode`) end to end: answered from another client of
//! the user, the answers reach the fake CLI in the tool's input as the SDKs send them; a plan is approved (and the
//! CLI leaves plan mode) or sent back with a message.

use serde_json::{json, Value};
use vf_e2e::events::texts;
use vf_e2e::{Client, EventStream, Stack};
use vf_protocol::{Answers, Event};

use crate::approvals::{approve, confirmation, control_responses, done, read_until, two_clients};

const DATABASE: &str = "Which database should the app use?";
const FEATURES: &str = "Which features do you want in the first version?";

/// A chat with turn options (`mode`, `autonomy`…) besides the prompt.
async fn chat_with(client: &Client, session: &str, prompt: &str, options: Value) -> EventStream {
    let mut body = json!({"sessionId": session, "prompt": prompt});
    body.as_object_mut()
        .expect("an object")
        .extend(options.as_object().cloned().unwrap_or_default());
    let stream = EventStream::new(client.post("/api/v15/chat", body).await);
    assert_eq!(stream.status(), 200, "chat {prompt:?}");
    stream
}

/// The body of the last control response the fake CLI received that has `field`.
fn last_allow(stack: &Stack, field: &str) -> Value {
    control_responses(stack)
        .into_iter()
        .rev()
        .find(|r| !r["response"]["response"][field].is_null())
        .map(|r| r["response"]["response"].clone())
        .unwrap_or(Value::Null)
}

/// Two questions (one single, one multiple choice) arrive with their options; a second client answers them (one
/// option, and two options plus a typed answer); the `confirmation-result` carries the answers, the CLI receives
/// them in the tool's input, and Claude's answer quotes them. Answers with a deny are refused.
pub async fn questions_are_answered_from_a_second_client(stack: &Stack) {
    let (first, second) = two_clients(stack).await;
    let session = first.create_session().await.id;
    let mut stream = first
        .chat(&session, "[fixture:question] plan the app")
        .await;
    let mut seen = Vec::new();
    let (approval_id, tool, input) = confirmation(&mut stream, &mut seen).await;
    assert_eq!(tool, "AskUserQuestion");
    let questions = input["questions"].as_array().expect("the questions");
    assert_eq!(questions.len(), 2);
    assert_eq!(questions[0]["question"], DATABASE);
    assert_eq!(questions[1]["multiSelect"], true);
    assert_eq!(questions[0]["options"][1]["label"], "SQLite");

    let refused = json!({"sessionId": session, "approvalId": approval_id, "approved": false,
        "answers": {DATABASE: "SQLite"}});
    assert_eq!(
        approve(&second, refused).await.0,
        400,
        "answers go with an allow"
    );
    let answers = json!({DATABASE: "SQLite", FEATURES: "Sign-in, Export, Tags"});
    let (status, body) = approve(
        &second,
        json!({"sessionId": session, "approvalId": approval_id, "approved": true, "answers": answers}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stored: Answers = read_until(&mut stream, &mut seen, |e| match e {
        Event::ConfirmationResult {
            answers: Some(answers),
            ..
        } => Some(answers.clone()),
        _ => None,
    })
    .await;
    assert_eq!(serde_json::to_value(&stored).unwrap(), answers);
    seen.extend(stream.collect().await);
    done(&seen);

    let allow = last_allow(stack, "updatedInput");
    assert_eq!(allow["behavior"], "allow");
    assert_eq!(allow["updatedInput"]["answers"], answers, "the SDK's shape");
    assert_eq!(
        allow["updatedInput"]["questions"], input["questions"],
        "the questions as Claude asked them"
    );
    let text = texts(&seen).concat();
    assert!(
        text.contains(r#""Which database should the app use?"="SQLite""#)
            && text.contains(r#"="Sign-in, Export, Tags""#),
        "Claude read the answers: {text}"
    );
    // The replay shows the same answers to a client that reloads.
    let replayed = first.stored(&session).await;
    assert!(replayed.iter().any(|l| matches!(
        &l.envelope.event,
        Event::ConfirmationResult { answers: Some(a), .. } if *a == stored
    )));
}

/// In plan mode a plan arrives as an `ExitPlanMode` confirmation with its markdown; answers for it are refused;
/// approved, the CLI is switched to the autonomy's mode and Claude goes on. A second plan is sent back with a
/// message, which Claude reads.
pub async fn plans_are_approved_or_sent_back(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await.id;
    let options = json!({"mode": "plan", "autonomy": "standard"});
    let mut stream = chat_with(
        &user,
        &session,
        "[fixture:plan] add a flag",
        options.clone(),
    )
    .await;
    let mut seen = Vec::new();
    let (approval_id, tool, input) = confirmation(&mut stream, &mut seen).await;
    assert_eq!(tool, "ExitPlanMode");
    assert!(
        input["plan"]
            .as_str()
            .is_some_and(|p| p.starts_with("## Plan")),
        "the plan: {input}"
    );
    let with_answers = json!({"sessionId": session, "approvalId": approval_id, "approved": true,
        "answers": {"q": "a"}});
    assert_eq!(
        approve(&user, with_answers).await.0,
        400,
        "a plan takes no answers"
    );
    let body = json!({"sessionId": session, "approvalId": approval_id, "approved": true});
    assert_eq!(approve(&user, body).await.0, 200);
    seen.extend(stream.collect().await);
    done(&seen);
    let text = texts(&seen).concat();
    assert!(
        text.contains("in acceptEdits mode"),
        "out of plan mode: {text}"
    );
    let allow = last_allow(stack, "updatedPermissions");
    assert_eq!(
        allow["updatedPermissions"],
        json!([{"type": "setMode", "mode": "acceptEdits", "destination": "session"}])
    );

    let mut stream = chat_with(&user, &session, "[fixture:plan] again", options).await;
    let mut seen = Vec::new();
    let (approval_id, ..) = confirmation(&mut stream, &mut seen).await;
    let message = "also cover the error path";
    let keep = json!({"sessionId": session, "approvalId": approval_id, "approved": false,
        "message": message});
    assert_eq!(approve(&user, keep).await.0, 200);
    seen.extend(stream.collect().await);
    done(&seen);
    let text = texts(&seen).concat();
    assert!(
        text.contains(&format!("Back to planning: {message}")),
        "Claude read why: {text}"
    );
}
