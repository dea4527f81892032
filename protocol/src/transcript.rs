//! The transcript reducer: folds events into the messages a chat shows. The app renders it, the tests assert on
//! it, and both get the same answer from the same events.
//!
//! Applying is idempotent per `seq`: an event at or below the last applied seq is ignored, so a client that
//! resumes with `after=N` and happens to receive an overlap shows nothing twice. Events without a seq (the
//! legacy WebSocket path) are applied as they come.

use crate::event::{
    Answers, ApprovalScope, DecidedBy, Envelope, ErrorCode, Event, Image, StatusKind, Usage,
};

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
    /// The images of its result that are safe to show.
    pub images: Vec<Image>,
    /// The calls a subagent made for it (a Task/Agent call), in order.
    pub children: Vec<ToolCall>,
}

impl ToolCall {
    fn new(id: &str, name: &str, input: serde_json::Value) -> Self {
        ToolCall {
            id: id.to_string(),
            name: name.to_string(),
            input,
            output: None,
            is_error: false,
            images: Vec::new(),
            children: Vec::new(),
        }
    }

    /// This call or one of its descendants, by id.
    fn find_mut(&mut self, id: &str) -> Option<&mut ToolCall> {
        if self.id == id {
            return Some(self);
        }
        self.children
            .iter_mut()
            .rev()
            .find_map(|child| child.find_mut(id))
    }
}

/// What the CLI last said about its own progress while the answer runs (a `status` event). Live only: the next
/// event of the answer clears it, and a replay never shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub kind: StatusKind,
    pub message: String,
    pub attempt: Option<u32>,
    pub retry_in_ms: Option<u64>,
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
    /// What the CLI says it is doing, while the answer streams.
    pub activity: Option<Activity>,
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
            Event::Status {
                kind,
                message,
                attempt,
                retry_in_ms,
            } => {
                // Only a running answer shows it; a status never opens a message of its own.
                let Some(running) = self
                    .messages
                    .last_mut()
                    .filter(|m| m.role == Role::Assistant && m.status == Status::Streaming)
                else {
                    return false;
                };
                running.activity = Some(Activity {
                    kind: *kind,
                    message: message.clone(),
                    attempt: *attempt,
                    retry_in_ms: *retry_in_ms,
                });
                return true;
            }
            // The queue is not the answer: what the CLI said it was doing still holds.
            Event::Queued { .. } | Event::Dequeued { .. } => {}
            // Anything else the answer does ends what the CLI said it was doing.
            _ => {
                if let Some(last) = self.messages.last_mut() {
                    last.activity = None;
                }
            }
        }
        match &envelope.event {
            Event::Connected { .. } | Event::Heartbeat | Event::Status { .. } => return false,
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
                    activity: None,
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
            Event::ToolStart {
                id,
                name,
                input,
                parent_tool_use_id,
            } => {
                let call = ToolCall::new(id, name, input.clone());
                let parts = &mut self.assistant(execution).parts;
                match parent_tool_use_id
                    .as_deref()
                    .and_then(|p| find_call(parts, p))
                {
                    Some(parent) => parent.children.push(call),
                    None => parts.push(Part::Tool(call)),
                }
            }
            Event::ToolResult {
                id,
                name,
                output,
                is_error,
                parent_tool_use_id,
                images,
            } => {
                let parts = &mut self.assistant(execution).parts;
                if find_call(parts, id).is_none() {
                    // A result whose call this client never saw (it started before a clear, say) still shows.
                    let call = ToolCall::new(
                        id,
                        name.as_deref().unwrap_or_default(),
                        serde_json::Value::Null,
                    );
                    match parent_tool_use_id
                        .as_deref()
                        .and_then(|p| find_call(parts, p))
                    {
                        Some(parent) => parent.children.push(call),
                        None => parts.push(Part::Tool(call)),
                    }
                }
                let call = find_call(parts, id).expect("the call exists now");
                call.output = Some(output.clone());
                call.is_error = is_error.unwrap_or(false);
                call.images = images.iter().filter(|i| i.is_safe()).cloned().collect();
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
                activity: None,
            });
        }
        self.messages
            .last_mut()
            .expect("an assistant message exists")
    }
}

/// The telling field of a tool's input (its command, file, path, pattern, URL, query or description), for a
/// one-line summary of the call; None when it has none of them.
pub fn tool_subject(input: &serde_json::Value) -> Option<&str> {
    const KEYS: [&str; 7] = [
        "command",
        "file_path",
        "path",
        "pattern",
        "url",
        "query",
        "description",
    ];
    KEYS.iter()
        .find_map(|key| input.get(*key).and_then(serde_json::Value::as_str))
}

/// The call `id` among `parts`, at any depth (a subagent's calls sit under their Task call).
fn find_call<'a>(parts: &'a mut [Part], id: &str) -> Option<&'a mut ToolCall> {
    parts.iter_mut().rev().find_map(|part| match part {
        Part::Tool(call) => call.find_mut(id),
        _ => None,
    })
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
                    parent_tool_use_id: None,
                },
            ),
            stored(
                6,
                Event::ToolResult {
                    id: "t1".into(),
                    name: None,
                    output: "fn main() {}".into(),
                    is_error: None,
                    parent_tool_use_id: None,
                    images: Vec::new(),
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

    fn tool_start(id: &str, name: &str, parent: Option<&str>) -> Event {
        Event::ToolStart {
            id: id.into(),
            name: name.into(),
            input: json!({}),
            parent_tool_use_id: parent.map(String::from),
        }
    }

    fn tool_result(id: &str, parent: Option<&str>, images: Vec<Image>) -> Event {
        Event::ToolResult {
            id: id.into(),
            name: None,
            output: format!("out of {id}"),
            is_error: None,
            parent_tool_use_id: parent.map(String::from),
            images,
        }
    }

    fn status(message: &str) -> Envelope {
        Envelope::live(Event::Status {
            kind: StatusKind::ApiRetry,
            message: message.into(),
            attempt: Some(1),
            retry_in_ms: Some(500),
        })
    }

    #[test]
    fn a_subagents_calls_are_grouped_under_its_task() {
        let t = reduce(&[
            stored(1, Event::UserMessage { text: "q".into() }),
            stored(2, tool_start("task", "Task", None)),
            stored(3, tool_start("grep", "Grep", Some("task"))),
            stored(4, tool_start("nested", "Task", Some("task"))),
            stored(5, tool_start("read", "Read", Some("nested"))),
            stored(6, tool_result("read", Some("nested"), Vec::new())),
            stored(7, tool_result("grep", Some("task"), Vec::new())),
            // A parent this client never saw: the call shows at the top.
            stored(8, tool_start("orphan", "Bash", Some("gone"))),
            stored(9, tool_result("task", None, Vec::new())),
        ]);
        let parts = &t.messages[1].parts;
        assert_eq!(parts.len(), 2, "{parts:?}");
        let Part::Tool(task) = &parts[0] else {
            panic!("{parts:?}")
        };
        assert_eq!(task.output.as_deref(), Some("out of task"));
        let children: Vec<_> = task.children.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(children, ["grep", "nested"]);
        assert_eq!(task.children[0].output.as_deref(), Some("out of grep"));
        assert_eq!(task.children[1].children[0].id, "read");
        assert_eq!(
            task.children[1].children[0].output.as_deref(),
            Some("out of read")
        );
        assert!(matches!(&parts[1], Part::Tool(call) if call.id == "orphan"));
    }

    #[test]
    fn a_result_of_an_unseen_call_joins_its_parent() {
        let t = reduce(&[
            stored(1, Event::UserMessage { text: "q".into() }),
            stored(2, tool_start("task", "Task", None)),
            stored(3, tool_result("late", Some("task"), Vec::new())),
        ]);
        let Part::Tool(task) = &t.messages[1].parts[0] else {
            panic!()
        };
        assert_eq!(task.children[0].id, "late");
        assert_eq!(task.children[0].output.as_deref(), Some("out of late"));
    }

    #[test]
    fn only_safe_images_are_kept() {
        let png = Image {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        };
        let svg = Image {
            media_type: "image/svg+xml".into(),
            data: "PHN2Zz4=".into(),
        };
        let t = reduce(&[
            stored(1, Event::UserMessage { text: "q".into() }),
            stored(2, tool_start("shot", "Read", None)),
            stored(3, tool_result("shot", None, vec![png.clone(), svg])),
        ]);
        let Part::Tool(call) = &t.messages[1].parts[0] else {
            panic!()
        };
        assert_eq!(call.images, [png]);
    }

    #[test]
    fn a_status_shows_on_the_running_answer_until_its_next_event() {
        let mut t = reduce(&answer()[..2]);
        assert!(t.apply(&status("retry 1")));
        assert!(t.apply(&status("retry 2")));
        let activity = t.messages[1].activity.as_ref().unwrap();
        assert_eq!(activity.message, "retry 2");
        assert_eq!(activity.retry_in_ms, Some(500));
        // A status carries no seq: the next stored event still applies.
        t.apply(&stored(3, Event::TextDelta { text: "x".into() }));
        assert_eq!(t.messages[1].activity, None);
        // After the answer ended, a late status changes nothing and opens no message.
        t.apply(&stored(4, Event::cancelled()));
        assert!(!t.apply(&status("late")));
        assert_eq!(t.messages.len(), 2);
        assert_eq!(t.messages[1].activity, None);
    }
}
