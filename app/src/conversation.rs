//! One session's conversation as the hook keeps it: the transcript reducer, plus a prompt sent but not yet seen.

use vf_protocol::transcript::{Approval, Message, QueuedPrompt, Role, Status, Transcript};
use vf_protocol::{Envelope, Event};

/// What applying a batch of events changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// The first message index that changed or was added; the reducer only ever touches the last message or
    /// appends, so everything before it is untouched.
    pub changed_from: Option<usize>,
    /// An answer that was being written when the batch started and ended in it.
    pub finished: Option<Finished>,
    /// Approvals asked for in the batch and still waiting for a person at its end.
    pub asked: Vec<Approval>,
}

/// An answer that just ended: what a notification or an error banner says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub status: Status,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct Conversation {
    transcript: Transcript,
    /// A prompt was sent and its `user-message` has not arrived.
    awaiting_turn: bool,
    /// The seq the transcript had when the prompt was sent.
    turn_base: u64,
    /// The sent turn did not follow the transcript directly: someone else's events came in between and were
    /// never seen here, so the history must be reloaded to be whole.
    missed_events: bool,
}

impl Conversation {
    pub fn messages(&self) -> &[Message] {
        &self.transcript.messages
    }

    /// The `after` of a resume.
    pub fn last_seq(&self) -> u64 {
        self.transcript.last_seq
    }

    /// An answer is open: being written, asked for and not yet started, or queued prompts are waiting to start
    /// theirs (the server starts the next as the running one ends).
    pub fn unfinished(&self) -> bool {
        self.awaiting_turn || self.transcript.is_streaming() || !self.transcript.queued.is_empty()
    }

    /// The prompts waiting for the running answer to end, in order.
    pub fn queued(&self) -> &[QueuedPrompt] {
        &self.transcript.queued
    }

    /// Whether events of another client were skipped (see `missed_events`); reading it clears it.
    pub fn take_missed_events(&mut self) -> bool {
        std::mem::take(&mut self.missed_events)
    }

    /// A prompt was sent.
    pub fn expect_turn(&mut self) {
        self.awaiting_turn = true;
        self.turn_base = self.transcript.last_seq;
    }

    /// The prompt was refused, or a stream that replays everything ended without its turn: nothing is coming.
    pub fn forget_turn(&mut self) {
        self.awaiting_turn = false;
    }

    /// Applies a batch of events, in order.
    pub fn apply(&mut self, batch: &[Envelope]) -> Applied {
        let before = self.transcript.messages.len();
        let was_streaming = self.transcript.is_streaming();
        let mut changed = false;
        for envelope in batch {
            let applied = self.transcript.apply(envelope);
            if applied && self.awaiting_turn && matches!(envelope.event, Event::UserMessage { .. })
            {
                self.awaiting_turn = false;
                self.missed_events |= envelope.seq.is_some_and(|seq| seq > self.turn_base + 1);
            }
            changed |= applied;
        }
        let finished = (was_streaming && !self.transcript.is_streaming())
            .then(|| self.transcript.messages.last())
            .flatten()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| Finished {
                status: m.status.clone(),
                text: m.text(),
            });
        let asked = batch
            .iter()
            .filter_map(|e| match &e.event {
                Event::Confirmation { approval_id, .. } => Some(approval_id),
                _ => None,
            })
            .filter_map(|id| self.transcript.pending_approvals().find(|a| a.id == *id))
            .cloned()
            .collect();
        Applied {
            changed_from: changed.then_some(before.saturating_sub(1)),
            finished,
            asked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vf_protocol::ErrorCode;

    fn stored(seq: u64, event: Event) -> Envelope {
        Envelope {
            seq: Some(seq),
            execution_id: Some(format!("e{}", seq / 10)),
            event,
        }
    }

    fn done() -> Event {
        serde_json::from_str(r#"{"type":"done"}"#).unwrap()
    }

    fn user(text: &str) -> Event {
        Event::UserMessage { text: text.into() }
    }

    fn delta(text: &str) -> Event {
        Event::TextDelta { text: text.into() }
    }

    #[test]
    fn queued_prompts_keep_the_session_unfinished_until_they_start_or_leave() {
        let mut c = Conversation::default();
        c.apply(&[stored(1, user("hi")), stored(2, delta("yo"))]);
        c.apply(&[stored(
            3,
            Event::Queued {
                queue_id: "q1".into(),
                text: "next".into(),
            },
        )]);
        assert_eq!(c.queued().len(), 1);
        c.apply(&[stored(4, done())]);
        assert!(c.unfinished(), "the next turn is coming");
        c.apply(&[stored(
            11,
            Event::Dequeued {
                queue_id: "q1".into(),
                reason: vf_protocol::DequeueReason::Started,
            },
        )]);
        assert!(c.queued().is_empty());
        c.apply(&[stored(12, user("next")), stored(13, done())]);
        assert!(!c.unfinished());
        assert_eq!(c.messages().len(), 4);
    }

    #[test]
    fn a_sent_prompt_is_unfinished_until_its_answer_ends() {
        let mut c = Conversation::default();
        assert!(!c.unfinished());
        c.expect_turn();
        assert!(c.unfinished());
        c.apply(&[stored(1, user("hi"))]);
        assert!(c.unfinished(), "the answer is streaming");
        c.apply(&[stored(2, delta("yo")), stored(3, done())]);
        assert!(!c.unfinished());
        assert!(!c.take_missed_events());
    }

    #[test]
    fn a_refused_prompt_is_forgotten() {
        let mut c = Conversation::default();
        c.expect_turn();
        c.forget_turn();
        assert!(!c.unfinished());
    }

    #[test]
    fn reports_what_changed() {
        let mut c = Conversation::default();
        let a = c.apply(&[stored(1, user("hi")), stored(2, delta("a"))]);
        assert_eq!(a.changed_from, Some(0));
        assert_eq!(c.messages().len(), 2);
        let a = c.apply(&[stored(3, delta("b"))]);
        assert_eq!(a.changed_from, Some(1));
        // A replayed overlap changes nothing.
        let a = c.apply(&[stored(2, delta("a")), stored(3, delta("b"))]);
        assert_eq!(a.changed_from, None);
        assert_eq!(c.messages()[1].text(), "ab");
        let a = c.apply(&[Envelope::live(Event::Heartbeat)]);
        assert_eq!(a, Applied::default());
    }

    #[test]
    fn reports_an_answer_that_ends_while_watched() {
        let mut c = Conversation::default();
        c.apply(&[stored(1, user("hi")), stored(2, delta("partial"))]);
        let a = c.apply(&[stored(3, delta(" answer")), stored(4, done())]);
        let finished = a.finished.expect("the answer ended");
        assert_eq!(finished.text, "partial answer");
        assert!(matches!(finished.status, Status::Done { .. }));
    }

    #[test]
    fn reports_approvals_still_waiting_at_the_end_of_the_batch() {
        let ask = |id: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "type": "confirmation", "approvalId": id, "toolName": "Bash", "input": {"command": "ls"}
            }))
            .unwrap()
        };
        let decided: Event = serde_json::from_value(serde_json::json!({
            "type": "confirmation-result", "approvalId": "a1", "approved": true, "scope": "once", "by": "user"
        }))
        .unwrap();
        let mut c = Conversation::default();
        c.apply(&[stored(1, user("hi"))]);
        // Asked and decided in one batch (a replay of a decided approval): nobody needs telling.
        let a = c.apply(&[stored(2, ask("a1")), stored(3, decided)]);
        assert!(a.asked.is_empty());
        let a = c.apply(&[stored(4, ask("a2"))]);
        assert_eq!(a.asked.len(), 1);
        assert_eq!(a.asked[0].id, "a2");
        assert_eq!(a.asked[0].tool_name, "Bash");
    }

    #[test]
    fn history_that_arrives_finished_is_not_reported() {
        let mut c = Conversation::default();
        let a = c.apply(&[
            stored(1, user("hi")),
            stored(2, delta("x")),
            stored(3, done()),
        ]);
        assert_eq!(a.finished, None);
    }

    #[test]
    fn failures_are_reported_with_their_message() {
        let mut c = Conversation::default();
        c.apply(&[stored(1, user("hi"))]);
        let a = c.apply(&[stored(2, Event::error(ErrorCode::AgentCrashed, "it died"))]);
        assert!(matches!(
            a.finished.unwrap().status,
            Status::Failed { code: ErrorCode::AgentCrashed, ref message } if message == "it died"
        ));
    }

    #[test]
    fn a_turn_after_unseen_events_asks_for_a_reload() {
        let mut c = Conversation::default();
        c.apply(&[stored(1, user("a")), stored(2, done())]);
        c.expect_turn();
        // Another tab ran seqs 3 and 4; our turn starts at 5.
        c.apply(&[stored(5, user("b"))]);
        assert!(c.take_missed_events());
        assert!(!c.take_missed_events(), "reading clears it");
    }

    #[test]
    fn the_legacy_path_applies_events_without_seq() {
        let mut c = Conversation::default();
        c.expect_turn();
        c.apply(&[Envelope::live(user("q"))]);
        c.apply(&[Envelope::live(delta("a"))]);
        assert!(c.unfinished());
        let a = c.apply(&[Envelope::live(done())]);
        assert!(a.finished.is_some());
        assert!(!c.unfinished());
        assert!(!c.take_missed_events());
    }
}
