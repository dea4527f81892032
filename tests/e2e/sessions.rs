//! Issue 13: queued prompts, idempotency keys, the live session list (status, activity, cost, title, rename)
//! and the Markdown export, over HTTP against the real stack.

use std::time::Duration;

use serde_json::{json, Value};
use vf_e2e::client::{uuid_like, Line};
use vf_e2e::events::{prompts, terminals};
use vf_e2e::wait::until;
use vf_e2e::{Client, EventStream, Stack};
use vf_protocol::api::{SessionListEvent, SessionStatus, SessionSummary, MAX_QUEUED_PROMPTS};
use vf_protocol::{DequeueReason, Event};

/// `POST /api/v15/chat` with `queue` (and an idempotency key, if given): the status and the JSON body.
async fn queue(user: &Client, session_id: &str, prompt: &str, key: Option<&str>) -> (u16, Value) {
    let mut body =
        json!({"sessionId": session_id, "prompt": prompt, "queue": true, "mode": "plan"});
    if let Some(key) = key {
        body["idempotencyKey"] = key.into();
    }
    let response = user.post("/api/v15/chat", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the stored log holds `n` terminal events and nothing runs after the last; returns it.
async fn wait_for_turns(user: &Client, session_id: &str, n: usize) -> Vec<Line> {
    until(
        format!("{n} finished turns in the stored log"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let lines = user.stored(session_id).await;
            let ended = lines.last().is_some_and(|l| l.envelope.event.is_terminal());
            (ended && terminals(&lines).len() >= n).then_some(lines)
        },
    )
    .await
}

/// A prompt sent with `queue` while an answer runs waits (202, its position, a `queued` event), starts as its
/// own turn with its own options when the answer ends (`dequeued` `started` right before its user message),
/// in order; a removed one (`dequeued` `cancelled`) never runs; without `queue` the answer is still 409.
pub async fn sessions_queued_prompts_run_in_order_and_a_removed_one_never_runs(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let marker = uuid_like();
    let mut first = user
        .chat(
            &session.id,
            &format!("[fixture:text][delay:250] first {marker}"),
        )
        .await;
    assert_eq!(first.status(), 200);
    first.next().await.expect("connected");

    let plain = user
        .post(
            "/api/v15/chat",
            json!({"sessionId": session.id, "prompt": "not queued"}),
        )
        .await;
    assert_eq!(plain.status().as_u16(), 409, "without queue: 409 as before");

    let second = format!("[fixture:text] second {marker}");
    let (status, queued) = queue(&user, &session.id, &second, None).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["position"], 1);
    let second_id = queued["queueId"].as_str().expect("a queueId").to_string();
    let (status, removed) = queue(&user, &session.id, "[fixture:text] removed", None).await;
    assert_eq!((status, removed["position"].as_u64()), (202, Some(2)));
    let removed_id = removed["queueId"].as_str().unwrap().to_string();
    let third = format!("[fixture:text] third {marker}");
    let (status, _) = queue(&user, &session.id, &third, None).await;
    assert_eq!(status, 202);

    let path = format!("/api/v15/sessions/{}/queue/{removed_id}", session.id);
    assert_eq!(user.delete(&path).await.status().as_u16(), 204, "removed");
    assert_eq!(user.delete(&path).await.status().as_u16(), 404, "gone");

    // The first answer's own stream ends at its own terminal event, having shown the queue.
    let lines = first.collect().await;
    assert!(lines.last().unwrap().envelope.event.is_terminal());
    assert!(lines.iter().any(
        |l| matches!(&l.envelope.event, Event::Queued { queue_id, text } if *queue_id == second_id && *text == second)
    ));

    let log = wait_for_turns(&user, &session.id, 3).await;
    assert_eq!(
        prompts(&log),
        [
            format!("[fixture:text][delay:250] first {marker}"),
            second.clone(),
            third
        ],
        "in order; the removed one never ran"
    );
    assert!(
        terminals(&log).iter().all(|t| matches!(
            t,
            Event::Done {
                cancelled: None,
                ..
            }
        )),
        "{:?}",
        terminals(&log)
    );
    let started = log
        .iter()
        .position(|l| {
            matches!(&l.envelope.event, Event::Dequeued { queue_id, reason: DequeueReason::Started } if *queue_id == second_id)
        })
        .expect("dequeued started");
    assert!(
        matches!(&log[started + 1].envelope.event, Event::UserMessage { text } if *text == second),
        "the queued prompt's turn follows its dequeued event"
    );
    assert_eq!(
        log[started].envelope.execution_id,
        log[started + 1].envelope.execution_id
    );
    assert!(
        log.iter().any(|l| matches!(&l.envelope.event,
        Event::Dequeued { queue_id, reason: DequeueReason::Cancelled } if *queue_id == removed_id))
    );
    // The queued prompts kept the options they were sent with (plan mode); the first was sent without.
    let args = std::fs::read_to_string(stack.args_log()).expect("the fake logs its arguments");
    let planned: Vec<bool> = args
        .lines()
        .filter_map(|line| serde_json::from_str::<Vec<String>>(line).ok())
        .rev()
        .take(3)
        .map(|args| {
            args.windows(2)
                .any(|w| w[0] == "--permission-mode" && w[1] == "plan")
        })
        .collect();
    assert_eq!(
        planned,
        [true, true, false],
        "the last three turns' modes: {args}"
    );
}

/// Past the cap, a queued prompt is refused with 429; deleting the session empties the queue (nothing of it
/// starts).
pub async fn sessions_the_queue_is_capped_and_emptied_by_delete(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut running = user
        .chat(&session.id, "[fixture:text][delay:400] long")
        .await;
    running.next().await.expect("connected");
    for n in 1..=MAX_QUEUED_PROMPTS {
        let (status, body) = queue(&user, &session.id, &format!("[fixture:text] q{n}"), None).await;
        assert_eq!((status, body["position"].as_u64()), (202, Some(n as u64)));
    }
    let (status, body) = queue(&user, &session.id, "[fixture:text] one too many", None).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("waiting"));
    assert_eq!(
        user.delete(&format!("/api/sessions/{}", session.id))
            .await
            .status()
            .as_u16(),
        204
    );
    drop(running);
    // No queued prompt starts: nothing of this session runs in the sandbox a moment later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let processes = stack.sandbox_processes().await;
    assert!(
        !processes
            .iter()
            .any(|p| p.to_string().contains(&session.id) && p["running"] == true),
        "{processes:?}"
    );
}

/// The same idempotency key again starts no second turn: a started turn answers with its events, a queued
/// prompt with the same queue id.
pub async fn sessions_replaying_an_idempotency_key_starts_no_second_turn(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let key = uuid_like();
    let body =
        json!({"sessionId": session.id, "prompt": "[fixture:text] once", "idempotencyKey": key});
    let first = EventStream::new(user.post("/api/v15/chat", body.clone()).await);
    assert_eq!(first.status(), 200);
    let first = first.collect().await;
    assert!(first.last().unwrap().envelope.event.is_terminal());
    // The response was "lost"; the outbox sends the same request again.
    let again = EventStream::new(user.post("/api/v15/chat", body.clone()).await);
    assert_eq!(again.status(), 200, "the replay answers the first turn");
    let again = again.collect().await;
    assert_eq!(prompts(&again), ["[fixture:text] once"]);
    assert!(again.last().unwrap().envelope.event.is_terminal());
    let log = user.stored(&session.id).await;
    assert_eq!(prompts(&log).len(), 1, "one turn");

    // Queued, twice with the same key: one queued prompt.
    let mut running = user
        .chat(&session.id, "[fixture:text][delay:200] busy")
        .await;
    running.next().await.expect("connected");
    let key = uuid_like();
    let (s1, q1) = queue(&user, &session.id, "[fixture:text] later", Some(&key)).await;
    let (s2, q2) = queue(&user, &session.id, "[fixture:text] later", Some(&key)).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(q1["queueId"], q2["queueId"]);
    drop(running);
    let log = wait_for_turns(&user, &session.id, 3).await;
    assert_eq!(
        prompts(&log),
        [
            "[fixture:text] once",
            "[fixture:text][delay:200] busy",
            "[fixture:text] later"
        ]
    );
    // And once it ran, the key still answers 202 with its queue id, starting nothing.
    let (s3, q3) = queue(&user, &session.id, "[fixture:text] later", Some(&key)).await;
    assert_eq!((s3, &q3["queueId"]), (202, &q1["queueId"]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(prompts(&user.stored(&session.id).await).len(), 3);
}

/// A watch stream of the session list: every line is the whole list.
struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    async fn open(user: &Client) -> Watch {
        let response = user.get("/api/sessions/watch").await;
        assert_eq!(response.status().as_u16(), 200);
        Watch {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next list (heartbeats skipped).
    async fn next(&mut self) -> Vec<SessionSummary> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                match serde_json::from_slice::<SessionListEvent>(&line).expect("a list line") {
                    SessionListEvent::Sessions { sessions } => return sessions,
                    SessionListEvent::Heartbeat => continue,
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("a list line within 20 s")
                .expect("the watch stream reads")
                .expect("the watch stream stays open");
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Reads lists until `id`'s status is `status`; returns that entry.
    async fn until_status(&mut self, id: &str, status: SessionStatus) -> SessionSummary {
        loop {
            let list = self.next().await;
            if let Some(s) = list
                .into_iter()
                .find(|s| s.record.id == id && s.status == status)
            {
                return s;
            }
        }
    }
}

/// The list tells the truth, live: a watcher sees a new session, then running and idle by themselves; the
/// list carries the cost, the title (the first prompt while the name is the default), the last activity, and
/// is sorted by it; a rename shows at once; another user sees none of it.
pub async fn sessions_the_list_is_live_and_tells_the_truth(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let other = Client::signed_in(&stack.base).await;
    let mut watch = Watch::open(&user).await;
    assert!(watch.next().await.is_empty(), "a new user has no sessions");
    let older = user.create_session().await;
    let response = user.post("/api/sessions", json!({})).await;
    assert_eq!(response.status().as_u16(), 201);
    let session: vf_protocol::api::SessionRecord = response.json().await.unwrap();
    let mut listed = Vec::new();
    while listed.len() < 2 {
        listed = watch.next().await;
    }

    let mut stream = user
        .chat(
            &session.id,
            "[fixture:text][delay:150] Fix   the\nflaky build please",
        )
        .await;
    stream.next().await.expect("connected");
    let running = watch
        .until_status(&session.id, SessionStatus::Running)
        .await;
    assert_eq!(
        running.title, "[fixture:text][delay:150] Fix the flaky build please",
        "the first prompt on one line"
    );
    let idle = watch.until_status(&session.id, SessionStatus::Idle).await;
    assert!((idle.cost_usd - 0.0042).abs() < 1e-9, "{idle:?}");
    assert!(idle.last_activity_at >= running.last_activity_at);

    let list: Vec<SessionSummary> = user.get("/api/sessions").await.json().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s.record.id.as_str()).collect();
    assert_eq!(
        ids,
        [session.id.as_str(), older.id.as_str()],
        "most recently active first"
    );
    assert_eq!(list[0].status, SessionStatus::Idle);
    assert_eq!(list[1].title, "e2e", "a named session keeps its name");

    let renamed = user
        .patch(
            &format!("/api/sessions/{}", session.id),
            json!({"name": "  Build fix "}),
        )
        .await;
    assert_eq!(renamed.status().as_u16(), 200);
    let renamed: SessionSummary = renamed.json().await.unwrap();
    assert_eq!(
        (renamed.record.name.as_str(), renamed.title.as_str()),
        ("Build fix", "Build fix")
    );
    loop {
        let list = watch.next().await;
        if list
            .iter()
            .any(|s| s.record.id == session.id && s.title == "Build fix")
        {
            break;
        }
    }
    let empty = user
        .patch(
            &format!("/api/sessions/{}", session.id),
            json!({"name": "  "}),
        )
        .await;
    assert_eq!(empty.status().as_u16(), 400);

    let theirs: Vec<Value> = other.get("/api/sessions").await.json().await.unwrap();
    assert!(theirs.is_empty(), "{theirs:?}");

    // A failed answer shows as failed.
    user.turn(&session.id, "[fixture:crash] boom").await;
    watch.until_status(&session.id, SessionStatus::Failed).await;

    // Deleted: it leaves the list.
    user.delete(&format!("/api/sessions/{}", session.id)).await;
    loop {
        if !watch.next().await.iter().any(|s| s.record.id == session.id) {
            break;
        }
    }
}

/// The transcript downloads as Markdown, its turns in order, with tool calls, cost and a filename.
pub async fn sessions_the_transcript_exports_as_markdown(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    user.turn(&session.id, "[fixture:text] the first question")
        .await;
    user.turn(&session.id, "[fixture:tool] the second question")
        .await;
    let response = user
        .get(&format!("/api/v15/sessions/{}/export", session.id))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/markdown"));
    assert!(header("content-disposition").contains("attachment; filename=\"vaporforge-"));
    let markdown = response.text().await.unwrap();
    let first = markdown
        .find("## Prompt 1\n\n[fixture:text] the first question")
        .expect(&markdown);
    let answer = markdown.find("Hello! I'm Claude Code").expect(&markdown);
    let second = markdown
        .find("## Prompt 2\n\n[fixture:tool] the second question")
        .expect(&markdown);
    let tool = markdown.find("- Tool **").expect(&markdown);
    assert!(
        first < answer && answer < second && second < tool,
        "{markdown}"
    );
    assert!(markdown.starts_with("# e2e\n"), "{markdown}");
    assert!(markdown.contains("cost $0.0042"), "{markdown}");
    assert!(markdown.contains("Total cost: $"), "{markdown}");
}

/// The queue is in the DO's SQLite: a prompt queued before the Worker restarts runs after it.
pub async fn sessions_the_queue_survives_a_worker_restart(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user
        .chat(&session.id, "[fixture:text][delay:400] before")
        .await;
    stream.next().await.expect("connected");
    let marker = uuid_like();
    let (status, _) = queue(
        &user,
        &session.id,
        &format!("[fixture:text] after {marker}"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    drop(stream);
    stack.kill_wrangler();
    stack.start_wrangler().await;
    let log = wait_for_turns(&user, &session.id, 2).await;
    assert_eq!(
        prompts(&log),
        [
            "[fixture:text][delay:400] before".to_string(),
            format!("[fixture:text] after {marker}")
        ]
    );
    assert!(matches!(
        terminals(&log).as_slice(),
        [Event::Done { .. }, Event::Done { .. }]
    ));
}

/// On the approvals stack: a session waiting for a person is `awaiting-approval` in the list, then running
/// again once allowed, then idle.
pub async fn sessions_the_list_shows_a_session_awaiting_approval(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut watch = Watch::open(&user).await;
    let mut stream = user.chat(&session.id, "[fixture:permission] list it").await;
    let approval_id = loop {
        let line = stream.next().await.expect("a confirmation before the end");
        if let Event::Confirmation { approval_id, .. } = line.envelope.event {
            break approval_id;
        }
    };
    watch
        .until_status(&session.id, SessionStatus::AwaitingApproval)
        .await;
    let listed: Vec<SessionSummary> = user.get("/api/sessions").await.json().await.unwrap();
    assert_eq!(listed[0].status, SessionStatus::AwaitingApproval);
    let response = user
        .post(
            "/api/v15/approve",
            json!({"sessionId": session.id, "approvalId": approval_id, "approved": true}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    watch.until_status(&session.id, SessionStatus::Idle).await;
    stream.collect().await;
}
