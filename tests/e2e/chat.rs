//! The walking skeleton: one answer streamed from the agent through the Worker and the DO to the client.

use std::collections::BTreeSet;

use vf_e2e::{Client, Stack};
use vf_protocol::transcript::Transcript;
use vf_protocol::Event;

/// A chat returns `connected`, the `user-message`, several `text-delta`s arriving at separate times, and `done`;
/// the reduced transcript is the agent's whole answer.
pub async fn streams_the_answer_live(stack: &Stack) {
    answer_streams_live(&stack.base).await;
}

/// [`streams_the_answer_live`] against the app at `base` (the Worker, or a UI server in front of it); returns
/// the user it signed in.
pub async fn answer_streams_live(base: &str) -> Client {
    let user = Client::signed_in(base).await;
    let session = user.create_session().await;
    let stream = user
        .chat(&session.id, "[fixture:text][delay:120] Say hello")
        .await;
    assert_eq!(stream.status(), 200);
    let lines = stream.collect().await;
    let kinds: Vec<&str> = lines.iter().map(|l| l.envelope.event.kind()).collect();

    assert!(
        matches!(lines[0].envelope.event, Event::Connected { .. }),
        "first line is connected: {kinds:?}"
    );
    assert_eq!(lines[0].envelope.seq, None, "connected is not stored");
    match &lines[1].envelope.event {
        Event::UserMessage { text } => assert_eq!(text, "[fixture:text][delay:120] Say hello"),
        other => panic!("second line is the user message, got {other:?}"),
    }
    assert!(
        lines[1].envelope.seq.is_some(),
        "the user message is stored"
    );
    let deltas: Vec<_> = lines
        .iter()
        .filter(|l| matches!(l.envelope.event, Event::TextDelta { .. }))
        .collect();
    assert!(deltas.len() >= 3, "several text deltas: {kinds:?}");
    let arrivals: BTreeSet<_> = deltas.iter().map(|l| l.at).collect();
    assert!(
        arrivals.len() >= 3,
        "text deltas arrived in {} reads: the stream was buffered",
        arrivals.len()
    );
    let mut gaps: Vec<u128> = deltas
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect();
    gaps.sort_unstable();
    println!(
        "    {} text deltas written 120 ms apart arrived {} ms apart (median; min {} ms, max {} ms)",
        deltas.len(),
        gaps[gaps.len() / 2],
        gaps[0],
        gaps[gaps.len() - 1]
    );
    let last = lines.last().expect("lines");
    let Event::Done { full_text, .. } = &last.envelope.event else {
        panic!("the last line is done: {kinds:?}");
    };

    // Seqs strictly increase and every stored line names this execution.
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l.envelope.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {seqs:?}"
    );
    let Event::Connected { execution_id } = &lines[0].envelope.event else {
        unreachable!()
    };
    assert!(lines[1..]
        .iter()
        .all(|l| l.envelope.execution_id.as_deref() == Some(execution_id.as_str())));

    let mut transcript = Transcript::default();
    for line in &lines {
        transcript.apply(&line.envelope);
    }
    assert_eq!(transcript.messages.len(), 2);
    assert_eq!(
        Some(transcript.messages[1].text()),
        full_text.clone(),
        "the streamed deltas add up to the final text"
    );
    user
}
