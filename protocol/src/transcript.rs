//! The transcript reducer: folds events into the messages a chat shows. The app renders it, the tests assert on
//! it, and both get the same answer from the same events.
//!
//! Applying is idempotent per `seq`: an event at or below the last applied seq is ignored, so a client that
//! resumes with `after=N` and happens to receive an overlap shows nothing twice. Events without a seq (the
//! legacy WebSocket path) are applied as they come.

use crate::event::{Answers, ApprovalScope, DecidedBy, Envelope, ErrorCode, Event, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One tool call and, once it came, its result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub output: Option<String>,
    pub is_error: bool,
}

/// A tool call Claude asked the user to allow, and the answer once there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub id: String,
    pub tool_name: String,
    pub input: serde_json::Value,
    pub tool_use_id: Option<String>,
    pub suggestions: Option<serde_json::Value>,
    /// None while it is pending.
    pub decision: Option<Decision>,
}

/// The answer to an [`Approval`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub approved: bool,
    pub scope: ApprovalScope,
    pub message: Option<String>,
    pub by: DecidedBy,
    /// The answers to Claude's questions, when it asked some.
    pub answers: Option<Answers>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Tool(ToolCall),
    Approval(Approval),
}

/// How an assistant message stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Streaming,
    Done {
        usage: Option<Usage>,
        cost_usd: Option<f64>,
        duration_ms: Option<u64>,
    },
    Stopped,
    Failed {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    /// The execution the message belongs to (None on the legacy path).
    pub execution_id: Option<String>,
    pub parts: Vec<Part>,
    pub status: Status,
}

impl Message {
    /// All text parts, concatenated.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Tool(_) | Part::Approval(_) => None,
            })
            .collect()
    }
}

/// The messages of one session, built from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub messages: Vec<Message>,
    /// The highest seq applied: what a client passes as `after` when it resumes.
    pub last_seq: u64,
    /// Prompts waiting for the running answer to end, in order.
    pub queued: Vec<QueuedPrompt>,
}

/// A prompt waiting in the session's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPrompt {
    pub queue_id: String,
    pub text: String,
}

impl Transcript {
    /// Applies one event; returns whether it changed anything.
    pub fn apply(&mut self, envelope: &Envelope) -> bool {
        if let Some(seq) = envelope.seq {
            if seq <= self.last_seq {
                return false;
            }
            self.last_seq = seq;
        }
        let execution = envelope.execution_id.as_deref();
        match &envelope.event {
            Event::Connected { .. } | Event::Heartbeat => return false,
            Event::Queued { queue_id, text } => self.queued.push(QueuedPrompt {
                queue_id: queue_id.clone(),
                text: text.clone(),
            }),
            Event::Dequeued { queue_id, .. } => self.queued.retain(|q| &q.queue_id != queue_id),
            Event::UserMessage { text } => {
                self.messages.push(Message {
                    role: Role::User,
                    execution_id: execution.map(String::from),
                    parts: vec![Part::Text(text.clone())],
                    status: Status::Done {
                        usage: None,
                        cost_usd: None,
                        duration_ms: None,
                    },
                });
                self.assistant(execution);
            }
            Event::SessionInit { .. } => {
                self.assistant(execution);
            }
            Event::TextDelta { text } => {
                let parts = &mut self.assistant(execution).parts;
                match parts.last_mut() {
                    Some(Part::Text(t)) => t.push_str(text),
                    _ => parts.push(Part::Text(text.clone())),
                }
            }
            Event::ToolStart { id, name, input } => {
                self.assistant(execution).parts.push(Part::Tool(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                    output: None,
                    is_error: false,
                }));
            }
            Event::ToolResult {
                id,
                name,
                output,
                is_error,
            } => {
                let parts = &mut self.assistant(execution).parts;
                let existing = parts.iter_mut().rev().find_map(|p| match p {
                    Part::Tool(call) if &call.id == id => Some(call),
                    _ => None,
                });
                let call = match existing {
                    Some(call) => call,
                    None => {
                        parts.push(Part::Tool(ToolCall {
                            id: id.clone(),
                            name: name.clone().unwrap_or_default(),
                            input: serde_json::Value::Null,
                            output: None,
                            is_error: false,
                        }));
                        match parts.last_mut() {
                            Some(Part::Tool(call)) => call,
                            _ => unreachable!("just pushed a tool part"),
                        }
                    }
                };
                call.output = Some(output.clone());
                call.is_error = is_error.unwrap_or(false);
            }
            Event::Done {
                usage,
                cost_usd,
                duration_ms,
                cancelled,
                full_text,
                ..
            } => {
                let message = self.assistant(execution);
                // An agent that streamed no deltas (e.g. the CLI without partial messages) still shows its answer.
                if message.text().is_empty() {
                    if let Some(text) = full_text.as_ref().filter(|t| !t.is_empty()) {
                        message.parts.push(Part::Text(text.clone()));
                    }
                }
                message.status = if cancelled == &Some(true) {
                    Status::Stopped
                } else {
                    Status::Done {
                        usage: *usage,
                        cost_usd: *cost_usd,
                        duration_ms: *duration_ms,
                    }
                };
            }
            Event::Error { error, code } => {
                self.assistant(execution).status = Status::Failed {
                    code: *code,
                    message: error.clone(),
                };
            }
            Event::Confirmation {
                approval_id,
                tool_name,
                input,
                tool_use_id,
                suggestions,
            } => {
                self.assistant(execution)
                    .parts
                    .push(Part::Approval(Approval {
                        id: approval_id.clone(),
                        tool_name: tool_name.clone(),
                        input: input.clone(),
                        tool_use_id: tool_use_id.clone(),
                        suggestions: suggestions.clone(),
                        decision: None,
                    }));
            }
            Event::ConfirmationResult {
                approval_id,
                approved,
                scope,
                message,
                by,
                answers,
            } => {
                let Some(approval) = self.approval_mut(approval_id) else {
                    return false;
                };
                approval.decision = Some(Decision {
                    approved: *approved,
                    scope: *scope,
                    message: message.clone(),
                    by: *by,
                    answers: answers.clone(),
                });
            }
        }
        true
    }

    /// The approvals still waiting for a person, oldest first.
    pub fn pending_approvals(&self) -> impl Iterator<Item = &Approval> {
        self.messages
            .iter()
            .flat_map(|m| &m.parts)
            .filter_map(|p| match p {
                Part::Approval(a) if a.decision.is_none() => Some(a),
                _ => None,
            })
    }

    fn approval_mut(&mut self, id: &str) -> Option<&mut Approval> {
        self.messages
            .iter_mut()
            .rev()
            .flat_map(|m| m.parts.iter_mut().rev())
            .find_map(|p| match p {
                Part::Approval(a) if a.id == id => Some(a),
                _ => None,
            })
    }

    /// Whether the last answer is still being written.
    pub fn is_streaming(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|m| m.role == Role::Assistant && m.status == Status::Streaming)
    }

    /// Forgets everything (after the transcript was cleared on the server).
    pub fn clear(&mut self) {
        self.messages.clear();
        self.queued.clear();
    }

    /// The assistant message events of `execution` go to, opened if the last message is not it.
    fn assistant(&mut self, execution: Option<&str>) -> &mut Message {
        let reuse = self.messages.last().is_some_and(|m| {
            m.role == Role::Assistant
                && (execution.is_none() || m.execution_id.as_deref() == execution)
                && (execution.is_some() || m.status == Status::Streaming)
        });
        if !reuse {
            self.messages.push(Message {
                role: Role::Assistant,
                execution_id: execution.map(String::from),
                parts: Vec::new(),
                status: Status::Streaming,
            });
        }
        self.messages
            .last_mut()
            .expect("an assistant message exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(seq: u64, event: Event) -> Envelope {
        Envelope {
            seq: Some(seq),
            execution_id: Some("e1".into()),
            event,
        }
    }

    fn answer() -> Vec<Envelope> {
        vec![
            stored(1, Event::UserMessage { text: "hi".into() }),
            stored(
                2,
                Event::SessionInit {
                    session_id: "c1".into(),
                    model: None,
                    tools: None,
                },
            ),
            stored(3, Event::TextDelta { text: "Hel".into() }),
            stored(4, Event::TextDelta { text: "lo".into() }),
            stored(
                5,
                Event::ToolStart {
                    id: "t1".into(),
                    name: "Read".into(),
                    input: json!({"file_path": "a"}),
                },
            ),
            stored(
                6,
                Event::ToolResult {
                    id: "t1".into(),
                    name: None,
                    output: "fn main() {}".into(),
                    is_error: None,
                },
            ),
            stored(
                7,
                Event::TextDelta {
                    text: " done".into(),
                },
            ),
            stored(
                8,
                Event::Done {
                    session_id: Some("c1".into()),
                    full_text: None,
                    usage: None,
                    cost_usd: None,
                    duration_ms: Some(5),
                    cancelled: None,
                },
            ),
        ]
    }

    fn reduce(events: &[Envelope]) -> Transcript {
        let mut t = Transcript::default();
        for e in events {
            t.apply(e);
        }
        t
    }

    #[test]
    fn builds_user_and_assistant_messages() {
        let t = reduce(&answer());
        assert_eq!(t.messages.len(), 2);
        assert_eq!(t.messages[0].role, Role::User);
        assert_eq!(t.messages[0].text(), "hi");
        let a = &t.messages[1];
        assert_eq!(a.text(), "Hello done");
        assert_eq!(a.parts.len(), 3);
        match &a.parts[1] {
            Part::Tool(call) => assert_eq!(call.output.as_deref(), Some("fn main() {}")),
            other => panic!("expected a tool, got {other:?}"),
        }
        assert!(matches!(a.status, Status::Done { .. }));
        assert!(!t.is_streaming());
        assert_eq!(t.last_seq, 8);
    }

    #[test]
    fn overlapping_replays_show_nothing_twice() {
        let events = answer();
        let once = reduce(&events);
        let mut t = Transcript::default();
        for cut in [3usize, 5, 8] {
            // Resume from a point before the last one seen: the overlap is ignored.
            for e in &events[..cut] {
                t.apply(e);
            }
        }
        assert_eq!(t, once);
    }

    #[test]
    fn streaming_until_terminal() {
        let events = answer();
        let t = reduce(&events[..4]);
        assert!(t.is_streaming());
        let mut t = reduce(&events[..4]);
        t.apply(&stored(9, Event::error(ErrorCode::AgentCrashed, "gone")));
        assert!(!t.is_streaming());
        assert!(matches!(
            t.messages[1].status,
            Status::Failed {
                code: ErrorCode::AgentCrashed,
                ..
            }
        ));
    }

    #[test]
    fn approvals_show_pending_then_decided() {
        let confirmation = |seq, id: &str| {
            stored(
                seq,
                Event::Confirmation {
                    approval_id: id.into(),
                    tool_name: "Bash".into(),
                    input: json!({"command": "ls"}),
                    tool_use_id: Some("toolu_1".into()),
                    suggestions: None,
                },
            )
        };
        let mut t = reduce(&[
            stored(1, Event::UserMessage { text: "q".into() }),
            confirmation(2, "a1"),
            confirmation(3, "a2"),
        ]);
        let pending: Vec<&str> = t.pending_approvals().map(|a| a.id.as_str()).collect();
        assert_eq!(pending, ["a1", "a2"]);
        assert!(t.apply(&stored(
            4,
            Event::ConfirmationResult {
                approval_id: "a1".into(),
                approved: false,
                scope: ApprovalScope::Once,
                message: Some("not now".into()),
                by: DecidedBy::User,
                answers: None,
            }
        )));
        let pending: Vec<&str> = t.pending_approvals().map(|a| a.id.as_str()).collect();
        assert_eq!(pending, ["a2"]);
        match &t.messages[1].parts[0] {
            Part::Approval(Approval {
                decision:
                    Some(Decision {
                        approved: false,
                        message: Some(m),
                        ..
                    }),
                ..
            }) => assert_eq!(m, "not now"),
            other => panic!("a decided approval: {other:?}"),
        }
        // A result for an approval this transcript never saw changes nothing.
        assert!(!t.apply(&stored(
            5,
            Event::ConfirmationResult {
                approval_id: "zz".into(),
                approved: true,
                scope: ApprovalScope::Session,
                message: None,
                by: DecidedBy::Rule,
                answers: None,
            }
        )));
    }

    #[test]
    fn full_text_fills_an_answer_without_deltas() {
        let t = reduce(&[
            stored(1, Event::UserMessage { text: "q".into() }),
            stored(
                2,
                Event::Done {
                    session_id: None,
                    full_text: Some("whole answer".into()),
                    usage: None,
                    cost_usd: None,
                    duration_ms: None,
                    cancelled: None,
                },
            ),
        ]);
        assert_eq!(t.messages[1].text(), "whole answer");
    }

    #[test]
    fn legacy_events_without_seq_append_in_order() {
        let mut t = Transcript::default();
        t.apply(&Envelope::live(Event::UserMessage { text: "q".into() }));
        t.apply(&Envelope::live(Event::TextDelta { text: "a".into() }));
        t.apply(&Envelope::live(Event::TextDelta { text: "b".into() }));
        assert_eq!(t.messages[1].text(), "ab");
        t.apply(&Envelope::live(Event::cancelled()));
        assert_eq!(t.messages[1].status, Status::Stopped);
    }
}
