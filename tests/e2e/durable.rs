//! Durable streams: the stream belongs to the DO, so clients can leave, come back, and watch together.

use std::time::{Duration, Instant};

use serde_json::json;
use vf_e2e::client::Line;
use vf_e2e::{Client, EventStream, Stack};
use vf_protocol::transcript::Transcript;
use vf_protocol::Event;

/// Seqs of stored lines.
fn seqs(lines: &[Line]) -> Vec<u64> {
    lines.iter().filter_map(|l| l.envelope.seq).collect()
}

/// A small deterministic generator, so a failing run can be replayed from its printed seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A client that drops its stream at random points of a 2,000-event answer and resumes with `after` ends with
/// exactly the full sequence, in order, each event once.
pub async fn resume_after_random_disconnects(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let seed = Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    println!("    seed {seed}");
    let mut rng = XorShift(seed | 1);

    let mut stream = user.chat(&session.id, "[burst:2000:64][delay:1] go").await;
    assert_eq!(stream.status(), 200);
    let mut seen: Vec<Line> = Vec::new();
    let mut reconnects = 0;
    loop {
        let budget = 1 + rng.below(400);
        let mut ended = false;
        for _ in 0..budget {
            match stream.next().await {
                Some(line)
                    if matches!(
                        line.envelope.event,
                        Event::Heartbeat | Event::Connected { .. }
                    ) => {}
                Some(line) => {
                    let terminal = line.envelope.event.is_terminal();
                    seen.push(line);
                    if terminal {
                        ended = true;
                        break;
                    }
                }
                None => break,
            }
        }
        if ended {
            break;
        }
        drop(stream);
        reconnects += 1;
        let after = seen.last().and_then(|l| l.envelope.seq).unwrap_or(0);
        stream = user.events(&session.id, after).await;
        assert_eq!(stream.status(), 200);
    }
    let full = user.stored(&session.id).await;
    println!("    {} events over {reconnects} reconnects", seen.len());
    assert!(seen.len() >= 2000, "the whole burst: {}", seen.len());
    assert_eq!(
        seqs(&seen),
        seqs(&full),
        "resumed sequence == stored sequence"
    );
    let seq = seqs(&seen);
    assert!(
        seq.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    let bodies = |lines: &[Line]| {
        lines
            .iter()
            .map(|l| format!("{:?}", l.envelope))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bodies(&seen),
        bodies(&full),
        "the same events, not only the same seqs"
    );
}

/// Two subscribers (the chat response and another tab) see identical sequences, and a third joining mid-answer
/// sees the same tail.
pub async fn concurrent_subscribers_see_identical_sequences(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let chat = user.chat(&session.id, "[burst:300:200][delay:5] go").await;
    let other_tab = user.events(&session.id, 0).await;
    let mut phone = user.events(&session.id, 0).await;
    let mut phone_lines = Vec::new();
    // The phone reads a little, drops, and rejoins mid-answer.
    for _ in 0..20 {
        if let Some(line) = phone.next().await {
            phone_lines.push(line);
        }
    }
    drop(phone);
    let after = phone_lines
        .iter()
        .filter_map(|l| l.envelope.seq)
        .max()
        .unwrap_or(0);
    let rejoined = user.events(&session.id, after).await;
    let (chat, other_tab, rejoined) =
        tokio::join!(chat.collect(), other_tab.collect(), rejoined.collect());
    let first = chat[1].envelope.seq.expect("the user message is stored");
    let from_first =
        |lines: &[Line]| -> Vec<u64> { seqs(lines).into_iter().filter(|s| *s >= first).collect() };
    assert!(chat.last().unwrap().envelope.event.is_terminal());
    assert_eq!(
        from_first(&chat),
        from_first(&other_tab),
        "chat response vs other tab"
    );
    phone_lines.extend(rejoined);
    let phone_seqs: Vec<u64> = phone_lines.iter().filter_map(|l| l.envelope.seq).collect();
    assert_eq!(
        from_first(&chat),
        phone_seqs,
        "the phone saw everything once"
    );
}

/// A client that goes away mid-answer does not stop the execution: the log keeps growing to the end.
pub async fn a_disconnect_does_not_stop_the_execution(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "[fixture:text][delay:150] hi").await;
    for _ in 0..3 {
        stream.next().await.expect("the stream starts");
    }
    drop(stream);
    let log = user.wait_for_terminal(&session.id).await;
    let Event::Done { full_text, .. } = &log.last().unwrap().envelope.event else {
        panic!("the answer completed: {:?}", log.last());
    };
    let mut transcript = Transcript::default();
    for line in &log {
        transcript.apply(&line.envelope);
    }
    assert_eq!(Some(transcript.messages[1].text()), full_text.clone());
}

/// While an execution runs, a second chat gets 409 and changes nothing.
pub async fn one_execution_at_a_time(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut first = user
        .chat(&session.id, "[fixture:text][delay:200] one")
        .await;
    first.next().await.expect("connected");
    let before = user.events(&session.id, 0).await;
    drop(before);
    let second = user
        .post(
            "/api/v15/chat",
            json!({"sessionId": session.id, "prompt": "two"}),
        )
        .await;
    assert_eq!(second.status().as_u16(), 409);
    let body: serde_json::Value = second.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("already running"));
    let lines = first.collect().await;
    let users: Vec<_> = user
        .wait_for_terminal(&session.id)
        .await
        .into_iter()
        .filter(|l| matches!(l.envelope.event, Event::UserMessage { .. }))
        .collect();
    assert_eq!(users.len(), 1, "the refused prompt was not stored");
    assert!(lines.last().unwrap().envelope.event.is_terminal());
    // And the session takes the next prompt once the first is done.
    user.turn(&session.id, "[fixture:text] three").await;
}

/// Claude's session id is kept and passed to the next turn (`--resume`), and the newest id wins.
pub async fn the_next_turn_resumes_claudes_session(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let first = user.turn(&session.id, "[fixture:text] first").await;
    let Event::Done {
        session_id: Some(claude_id),
        ..
    } = &first.last().unwrap().envelope.event
    else {
        panic!("done carries Claude's session id");
    };
    let marker = format!("second-{}", vf_e2e::client::uuid_like());
    let second = user
        .turn(&session.id, &format!("[fixture:resume] {marker}"))
        .await;
    let log = std::fs::read_to_string(stack.args_log()).expect("the fake logs its arguments");
    let resumed = log.lines().any(|line| {
        let args: Vec<String> = serde_json::from_str(line).unwrap_or_default();
        args.windows(2)
            .any(|w| w[0] == "--resume" && &w[1] == claude_id)
    });
    assert!(
        resumed,
        "the second turn ran with --resume {claude_id}: {log}"
    );
    let Event::Done {
        session_id: Some(new_id),
        ..
    } = &second.last().unwrap().envelope.event
    else {
        panic!("the resumed turn is done");
    };
    assert_ne!(new_id, claude_id, "the resumed run reported a new id");
    user.turn(&session.id, "[fixture:text] third").await;
    let log = std::fs::read_to_string(stack.args_log()).unwrap();
    let last_resume = log
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Vec<String>>(line).ok())
        .find_map(|args| {
            args.windows(2)
                .find(|w| w[0] == "--resume")
                .map(|w| w[1].clone())
        });
    assert_eq!(
        last_resume.as_deref(),
        Some(new_id.as_str()),
        "the newest id is the one resumed"
    );
}

/// Clearing empties the transcript, is refused while an answer runs, and seqs continue after it.
pub async fn clear_empties_the_transcript(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let path = format!("/api/v15/sessions/{}/events", session.id);
    let mut running = user.chat(&session.id, "[fixture:text][delay:200] hi").await;
    running.next().await.expect("connected");
    assert_eq!(
        user.delete(&path).await.status().as_u16(),
        409,
        "refused while running"
    );
    let lines = running.collect().await;
    let last_seq = lines.iter().filter_map(|l| l.envelope.seq).max().unwrap();
    assert_eq!(user.delete(&path).await.status().as_u16(), 204);
    assert!(user.stored(&session.id).await.is_empty(), "cleared");
    let next = user.turn(&session.id, "[fixture:text] again").await;
    assert!(
        next[1].envelope.seq.unwrap() > last_seq,
        "seqs never go back"
    );
}

/// A malformed `after` is a 400 with a clear message.
pub async fn a_bad_after_is_400(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    for bad in ["x", "-1", "1.5", "99999999999999999999"] {
        let response = user
            .get(&format!(
                "/api/v15/sessions/{}/events?after={bad}",
                session.id
            ))
            .await;
        assert_eq!(response.status().as_u16(), 400, "after={bad}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("after"));
    }
}

/// An idle stream carries heartbeats, and streams are uncompressed NDJSON even for a client that accepts gzip.
pub async fn idle_streams_carry_heartbeats_uncompressed(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let chat = user.chat(&session.id, "[fixture:hang] wait").await;
    let response = user
        .http
        .get(format!(
            "{}/api/v15/sessions/{}/events?after=0",
            stack.base, session.id
        ))
        .header("Cookie", user.cookie.clone().unwrap())
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(response
        .headers()
        .get("content-encoding")
        .is_none_or(|v| v == "identity"));
    let mut stream = EventStream::new(response);
    let mut heartbeats = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while heartbeats < 2 && Instant::now() < deadline {
        match stream.next().await {
            Some(line) if matches!(line.envelope.event, Event::Heartbeat) => heartbeats += 1,
            Some(_) => {}
            None => break,
        }
    }
    assert!(heartbeats >= 2, "an idle stream carries heartbeats");
    user.cancel(&session.id).await;
    drop(chat);
}

/// A turn whose `--resume` fails before Claude Code starts (the sandbox lost the transcript) ends with an error,
/// and the next turn starts a fresh Claude session instead of failing the same way forever.
pub async fn a_lost_transcript_does_not_poison_the_session(stack: &Stack) {
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let first = user.turn(&session.id, "[fixture:text] first").await;
    assert!(matches!(
        first.last().unwrap().envelope.event,
        Event::Done { .. }
    ));
    let lost = user
        .turn(&session.id, "[fixture:resume-missing] second")
        .await;
    assert!(matches!(
        lost.last().unwrap().envelope.event,
        Event::Error { .. }
    ));
    let marker = vf_e2e::client::uuid_like();
    let third = user
        .turn(&session.id, &format!("[fixture:text] third {marker}"))
        .await;
    assert!(matches!(
        third.last().unwrap().envelope.event,
        Event::Done { .. }
    ));
    let log = std::fs::read_to_string(stack.args_log()).unwrap();
    let third_args: Vec<String> = log
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("the third run's arguments");
    assert!(
        !third_args.iter().any(|a| a == "--resume"),
        "the turn after a lost transcript starts fresh: {third_args:?}"
    );
}
