//! The events of the agent protocol: what the agent emits, what the DO stores, what every client reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The user's answers to Claude's questions (`AskUserQuestion`), as the CLI reads them from the tool's input:
/// question text → the chosen option's label (several labels joined by ", " for a multiple choice), or the text the
/// user typed instead.
pub type Answers = BTreeMap<String, String>;

/// One event of the protocol. Names and fields follow the original VaporForge agent protocol, so clients and
/// agents of that system interoperate with ours. In events, `sessionId` is *Claude's* session id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// The user's prompt; written by the DO when a turn starts.
    UserMessage { text: String },
    /// First line of a chat response; never stored.
    Connected { execution_id: String },
    /// Claude Code started (or resumed) a session.
    SessionInit {
        session_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tools: Option<Vec<String>>,
    },
    /// A piece of the assistant's answer.
    TextDelta { text: String },
    /// The assistant called a tool. `parentToolUseId`: the id of the Task/Agent call whose subagent made it.
    ToolStart {
        id: String,
        name: String,
        #[serde(default)]
        input: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_tool_use_id: Option<String>,
    },
    /// A tool's result. `images`: pictures the tool returned (a screenshot, an image file it read), carried in the
    /// event itself, since a client shows only what the event holds and never fetches anything for it.
    ToolResult {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        output: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_tool_use_id: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
    },
    /// The answer is complete. Terminal.
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancelled: Option<bool>,
    },
    /// The execution failed. Terminal. `error` is safe to show to the user.
    Error { error: String, code: ErrorCode },
    /// The agent asks the user to allow a tool call (Claude Code's `can_use_tool`). `approvalId` is unique within
    /// the session; `suggestions` is what "allow for this session" would add (the CLI's permission suggestions).
    Confirmation {
        approval_id: String,
        tool_name: String,
        #[serde(default)]
        input: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_use_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suggestions: Option<serde_json::Value>,
    },
    /// The answer to a `confirmation`, whoever gave it; stored by the DO.
    ConfirmationResult {
        approval_id: String,
        approved: bool,
        scope: ApprovalScope,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        by: DecidedBy,
        /// The answers, when the confirmation asked Claude's questions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answers: Option<Answers>,
    },
    /// What the CLI says about its own progress (retrying the API, compacting, a subagent's task): shown under
    /// the running answer while it lasts, never stored.
    Status {
        kind: StatusKind,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// Keeps idle streams open through proxies; never stored.
    Heartbeat,
    /// A prompt sent with `"queue": true` while an answer ran: it waits for the running answer to end.
    Queued { queue_id: String, text: String },
    /// A queued prompt left the queue: it started as its own turn, or it was removed.
    Dequeued {
        queue_id: String,
        reason: DequeueReason,
    },
}

/// Why a queued prompt left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DequeueReason {
    /// Its turn began (its `user-message` follows).
    Started,
    /// The user removed it, or the session was cleared or deleted.
    Cancelled,
}

/// An image a tool returned, as base64 data of one of [`Image::MEDIA_TYPES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub media_type: String,
    pub data: String,
}

impl Image {
    /// The raster types a browser shows safely from a `data:` URL (no SVG: it can carry script).
    pub const MEDIA_TYPES: [&'static str; 4] =
        ["image/png", "image/jpeg", "image/gif", "image/webp"];

    /// Whether this image may be shown: a known raster type and data that is plain base64.
    pub fn is_safe(&self) -> bool {
        Self::MEDIA_TYPES.contains(&self.media_type.as_str())
            && !self.data.is_empty()
            && self
                .data
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    }

    /// The `data:` URL a page shows it from.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type, self.data)
    }
}

/// What a `status` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusKind {
    /// The API failed and Claude Code retries it.
    ApiRetry,
    /// The account nears or hit its usage limit.
    RateLimit,
    /// Claude Code is compacting the conversation.
    Compacting,
    /// A subagent's task started, progressed or ended.
    Task,
    /// A kind this version does not know; kept so that newer agents do not break older clients.
    #[serde(other)]
    Other,
}
/// How far an approval reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalScope {
    /// This one call.
    #[default]
    Once,
    /// This call, and later calls the session's rule covers ("allow for this session").
    Session,
}

/// Who decided a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    /// A person, from any tab or device.
    User,
    /// A rule the user made with "allow for this session".
    Rule,
    /// Nobody answered within `APPROVAL_TIMEOUT_MS`: denied.
    Timeout,
    /// The execution ended (cancel, the watchdog) while it was pending: denied.
    Cancel,
}

/// Token usage of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why an execution failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The agent never called back within the bridge timeout.
    Timeout,
    /// The agent died or went silent mid-stream.
    AgentCrashed,
    /// The agent could not be started.
    DispatchFailed,
    /// The execution was stopped.
    Cancelled,
    /// Claude Code itself reported a failure (max turns, an error during execution, bad credentials…).
    AgentError,
    /// A code this version does not know; kept so that newer agents do not break older clients.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// Whether the DO appends this event to the session's log.
    pub fn is_persisted(&self) -> bool {
        !matches!(
            self,
            Event::Connected { .. } | Event::Heartbeat | Event::Status { .. }
        )
    }

    /// Whether this event ends an execution.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Error { .. })
    }

    /// The `type` of this event on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::UserMessage { .. } => "user-message",
            Event::Connected { .. } => "connected",
            Event::SessionInit { .. } => "session-init",
            Event::TextDelta { .. } => "text-delta",
            Event::ToolStart { .. } => "tool-start",
            Event::ToolResult { .. } => "tool-result",
            Event::Done { .. } => "done",
            Event::Error { .. } => "error",
            Event::Confirmation { .. } => "confirmation",
            Event::ConfirmationResult { .. } => "confirmation-result",
            Event::Status { .. } => "status",
            Event::Heartbeat => "heartbeat",
            Event::Queued { .. } => "queued",
            Event::Dequeued { .. } => "dequeued",
        }
    }

    /// Claude's session id, carried by `session-init` and `done`.
    pub fn sdk_session_id(&self) -> Option<&str> {
        match self {
            Event::SessionInit { session_id, .. } => Some(session_id),
            Event::Done {
                session_id: Some(id),
                ..
            } => Some(id),
            _ => None,
        }
    }

    /// An `error` event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Event::Error {
            error: message.into(),
            code,
        }
    }

    /// The `done` of an execution that was stopped before it finished.
    pub fn cancelled() -> Self {
        Event::Done {
            session_id: None,
            full_text: None,
            usage: None,
            cost_usd: None,
            duration_ms: None,
            cancelled: Some(true),
        }
    }

    /// This event as one NDJSON line (with its trailing newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("events always serialize");
        line.push(b'\n');
        line
    }
}

/// An event as a client reads it: persisted events carry the session-wide `seq` and their `executionId`.
///
/// Serialized flat (`{"seq":1,"executionId":"…","type":…}`). The (de)serializers are written by hand because
/// `connected` has an `executionId` field of its own: a derived `flatten` would hand that key to the envelope and
/// leave the event without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub seq: Option<u64>,
    pub execution_id: Option<String>,
    pub event: Event,
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object =
            match serde_json::to_value(&self.event).map_err(serde::ser::Error::custom)? {
                serde_json::Value::Object(map) => map,
                _ => return Err(serde::ser::Error::custom("an event is an object")),
            };
        if let Some(seq) = self.seq {
            object.insert("seq".into(), seq.into());
        }
        if let Some(id) = &self.execution_id {
            object.insert("executionId".into(), id.clone().into());
        }
        object.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let seq = match value.get("seq") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| D::Error::custom("seq must be a non-negative integer"))?,
            ),
        };
        let execution_id = match value.get("executionId") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| D::Error::custom("executionId must be a string"))?
                    .to_string(),
            ),
        };
        let event = Event::deserialize(value).map_err(D::Error::custom)?;
        Ok(Envelope {
            seq,
            execution_id,
            event,
        })
    }
}

impl Envelope {
    /// An event that is not stored (no seq).
    pub fn live(event: Event) -> Self {
        Envelope {
            seq: None,
            execution_id: None,
            event,
        }
    }
}

/// Builds the wire lines of one execution's events, `{"seq":N,"executionId":"…",<the event's fields>}` (a live-only
/// event: without `seq`): the execution id is quoted once per batch and each event serialized once, straight into
/// its line. The DO stores the same text it sends, so replay is a copy, not a parse-and-serialize.
#[derive(Debug, Clone)]
pub struct StoredLines {
    /// `"executionId":"…"`, quoted.
    execution_field: String,
}

impl StoredLines {
    pub fn new(execution_id: &str) -> Self {
        let quoted = serde_json::to_string(execution_id).expect("strings serialize");
        StoredLines {
            execution_field: format!("\"executionId\":{quoted}"),
        }
    }

    /// The line of `event` stored as `seq`, without its newline.
    pub fn line(&self, seq: u64, event: &Event) -> String {
        self.write(Some(seq), event)
    }

    /// The line of an event that is sent but not stored (a `status`), without its newline.
    pub fn live(&self, event: &Event) -> String {
        self.write(None, event)
    }

    fn write(&self, seq: Option<u64>, event: &Event) -> String {
        let mut line = Vec::with_capacity(64 + self.execution_field.len());
        line.push(b'{');
        if let Some(seq) = seq {
            line.extend_from_slice(b"\"seq\":");
            line.extend_from_slice(seq.to_string().as_bytes());
            line.push(b',');
        }
        line.extend_from_slice(self.execution_field.as_bytes());
        let body = line.len();
        serde_json::to_writer(&mut line, event).expect("events always serialize");
        // The event's own `{` becomes the comma after the envelope's fields: every event has at least its
        // `type`, so the object is never empty.
        line[body] = b',';
        String::from_utf8(line).expect("JSON is UTF-8")
    }
}

/// One line of an agent's callback stream: an event, stamped with its position in the execution (`aseq`,
/// 1-based). The stamp lets the DO drop a line it already stored when an agent resends after a reconnect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aseq: Option<u64>,
    #[serde(flatten)]
    pub event: Event,
}

impl AgentLine {
    /// This line as NDJSON (with its trailing newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("agent lines always serialize");
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(event: Event, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(event.kind(), expected["type"]);
        let back: Event = serde_json::from_value(expected).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn names_and_fields_match_the_original_protocol() {
        roundtrip(
            Event::UserMessage { text: "hi".into() },
            json!({"type":"user-message","text":"hi"}),
        );
        roundtrip(
            Event::Connected {
                execution_id: "e1".into(),
            },
            json!({"type":"connected","executionId":"e1"}),
        );
        roundtrip(
            Event::SessionInit {
                session_id: "s".into(),
                model: Some("m".into()),
                tools: Some(vec!["Read".into()]),
            },
            json!({"type":"session-init","sessionId":"s","model":"m","tools":["Read"]}),
        );
        roundtrip(
            Event::TextDelta { text: "x".into() },
            json!({"type":"text-delta","text":"x"}),
        );
        roundtrip(
            Event::ToolStart {
                id: "t".into(),
                name: "Read".into(),
                input: json!({"file_path":"/a"}),
                parent_tool_use_id: None,
            },
            json!({"type":"tool-start","id":"t","name":"Read","input":{"file_path":"/a"}}),
        );
        roundtrip(
            Event::ToolStart {
                id: "t2".into(),
                name: "Grep".into(),
                input: json!({}),
                parent_tool_use_id: Some("task".into()),
            },
            json!({"type":"tool-start","id":"t2","name":"Grep","input":{},"parentToolUseId":"task"}),
        );
        roundtrip(
            Event::ToolResult {
                id: "t".into(),
                name: None,
                output: "ok".into(),
                is_error: Some(true),
                parent_tool_use_id: None,
                images: Vec::new(),
            },
            json!({"type":"tool-result","id":"t","output":"ok","isError":true}),
        );
        roundtrip(
            Event::ToolResult {
                id: "t".into(),
                name: Some("Read".into()),
                output: String::new(),
                is_error: None,
                parent_tool_use_id: Some("task".into()),
                images: vec![Image {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into(),
                }],
            },
            json!({"type":"tool-result","id":"t","name":"Read","output":"","parentToolUseId":"task",
                   "images":[{"mediaType":"image/png","data":"iVBORw0KGgo="}]}),
        );
        roundtrip(
            Event::Status {
                kind: StatusKind::ApiRetry,
                message: "API unreachable".into(),
                attempt: Some(3),
                retry_in_ms: Some(16_000),
            },
            json!({"type":"status","kind":"api-retry","message":"API unreachable","attempt":3,"retryInMs":16000}),
        );
        roundtrip(
            Event::Done {
                session_id: Some("s".into()),
                full_text: Some("all".into()),
                usage: Some(Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                }),
                cost_usd: Some(0.5),
                duration_ms: Some(9),
                cancelled: None,
            },
            json!({"type":"done","sessionId":"s","fullText":"all","usage":{"inputTokens":1,"outputTokens":2},"costUsd":0.5,"durationMs":9}),
        );
        roundtrip(
            Event::error(ErrorCode::AgentCrashed, "boom"),
            json!({"type":"error","error":"boom","code":"agent-crashed"}),
        );
        roundtrip(Event::Heartbeat, json!({"type":"heartbeat"}));
        roundtrip(
            Event::Queued {
                queue_id: "q1".into(),
                text: "next".into(),
            },
            json!({"type":"queued","queueId":"q1","text":"next"}),
        );
        roundtrip(
            Event::Dequeued {
                queue_id: "q1".into(),
                reason: DequeueReason::Cancelled,
            },
            json!({"type":"dequeued","queueId":"q1","reason":"cancelled"}),
        );
    }

    #[test]
    fn agent_lines_carry_their_position() {
        let line = AgentLine {
            aseq: Some(3),
            event: Event::TextDelta { text: "a".into() },
        };
        let bytes = line.to_line();
        assert_eq!(
            bytes,
            b"{\"aseq\":3,\"type\":\"text-delta\",\"text\":\"a\"}\n"
        );
        let back: AgentLine = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, line);
        // A plain event (an agent of the original system) is a line without aseq.
        let plain: AgentLine = serde_json::from_str(r#"{"type":"heartbeat"}"#).unwrap();
        assert_eq!(plain.aseq, None);
    }

    #[test]
    fn unknown_status_kinds_are_kept_readable() {
        let e: Event =
            serde_json::from_str(r#"{"type":"status","kind":"hook","message":"x"}"#).unwrap();
        assert!(matches!(
            e,
            Event::Status {
                kind: StatusKind::Other,
                ..
            }
        ));
    }

    #[test]
    fn only_plain_raster_images_are_safe() {
        let image = |media_type: &str, data: &str| Image {
            media_type: media_type.into(),
            data: data.into(),
        };
        assert!(image("image/png", "iVBORw0KGgo=").is_safe());
        assert_eq!(
            image("image/png", "AA==").data_url(),
            "data:image/png;base64,AA=="
        );
        assert!(!image("image/svg+xml", "PHN2Zz4=").is_safe());
        assert!(!image("image/png", "AA==\"onerror=").is_safe());
        assert!(!image("image/png", "").is_safe());
    }

    #[test]
    fn unknown_error_codes_are_kept_readable() {
        let e: Event =
            serde_json::from_str(r#"{"type":"error","error":"x","code":"quota"}"#).unwrap();
        assert_eq!(e, Event::error(ErrorCode::Unknown, "x"));
    }

    #[test]
    fn persisted_and_terminal() {
        assert!(!Event::Heartbeat.is_persisted());
        assert!(!Event::Connected {
            execution_id: "e".into()
        }
        .is_persisted());
        assert!(Event::TextDelta { text: "a".into() }.is_persisted());
        assert!(!Event::Status {
            kind: StatusKind::Compacting,
            message: String::new(),
            attempt: None,
            retry_in_ms: None,
        }
        .is_persisted());
        assert!(Event::error(ErrorCode::Timeout, "t").is_terminal());
        assert!(!Event::TextDelta { text: "a".into() }.is_terminal());
    }

    #[test]
    fn connected_keeps_its_execution_id_inside_an_envelope() {
        let line = r#"{"type":"connected","executionId":"e9"}"#;
        let envelope: Envelope = serde_json::from_str(line).unwrap();
        assert_eq!(
            envelope.event,
            Event::Connected {
                execution_id: "e9".into()
            }
        );
        let back = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"type":"connected","executionId":"e9"})
        );
        assert!(serde_json::from_str::<Envelope>(r#"{"seq":-1,"type":"heartbeat"}"#).is_err());
    }

    #[test]
    fn stored_line_equals_the_serialized_envelope() {
        let lines = StoredLines::new("ex\"1");
        for event in [
            Event::TextDelta {
                text: "a \"quoted\"\n".into(),
            },
            Event::Heartbeat,
        ] {
            let line = lines.line(7, &event);
            let parsed: Envelope = serde_json::from_str(&line).unwrap();
            assert_eq!(
                parsed,
                Envelope {
                    seq: Some(7),
                    execution_id: Some("ex\"1".into()),
                    event: event.clone()
                }
            );
            let live: Envelope = serde_json::from_str(&lines.live(&event)).unwrap();
            assert_eq!(
                live,
                Envelope {
                    seq: None,
                    execution_id: Some("ex\"1".into()),
                    event
                }
            );
        }
    }
}
