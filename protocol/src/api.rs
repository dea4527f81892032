//! Request and response bodies of the HTTP API, and the validation every entry point shares.

use serde::{Deserialize, Serialize};

use crate::event::{Answers, ApprovalScope, DecidedBy};

/// Prompts over this size are refused with 413: far above any typed or pasted question, far below what would
/// strain a row, a KV value or a process environment.
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;
/// Session names are labels, not documents.
pub const MAX_SESSION_NAME_CHARS: usize = 120;
/// `claude setup-token` prints long-lived OAuth tokens with this prefix.
pub const CLAUDE_TOKEN_PREFIX: &str = "sk-ant-oat01-";

/// An error body: `{"error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub token: String,
}

/// `POST /api/auth/login` and `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user_id: String,
    /// The stored Claude token, masked (`sk-ant-oat01-…abcd`); never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hint: Option<String>,
}

/// A chat session, as stored in KV and returned by the sessions routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub sandbox_id: String,
    /// Milliseconds since the epoch.
    pub created_at: u64,
}

/// `POST /api/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    #[serde(default)]
    pub name: Option<String>,
}

/// How Claude Code works on the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    #[default]
    Agent,
    Plan,
}

/// How much Claude Code may do without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Autonomy {
    Conservative,
    Standard,
    Autonomous,
}

/// The controls of one turn, as the prompt box sends them (and as the app remembers them per session). Absent
/// fields leave the choice to the CLI (its default model, its default permission mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SessionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autonomy: Option<Autonomy>,
}

/// `POST /api/v15/chat`: `{sessionId, prompt, mode?, model?, autonomy?, queue?, idempotencyKey?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    pub session_id: String,
    pub prompt: String,
    #[serde(flatten)]
    pub turn: TurnOptions,
    /// While an answer runs: wait for it to end (202 [`QueuedResponse`]) instead of being refused with 409.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queue: bool,
    /// A key the client picks once per prompt (the outbox): the same key again answers what the first request
    /// got and never starts a second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// A session holds at most this many queued prompts; one more is refused with 429.
pub const MAX_QUEUED_PROMPTS: usize = 20;

/// `POST /api/v15/chat` with `"queue": true` while an answer runs: 202 with the prompt's place in the queue
/// (1 = next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedResponse {
    pub queue_id: String,
    pub position: u32,
}

/// The name a session gets when it is created without one; its title is then the start of its first prompt.
pub const DEFAULT_SESSION_NAME: &str = "New chat";

/// What a session is doing, as the session list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionStatus {
    #[default]
    Idle,
    Running,
    AwaitingApproval,
    /// Its last answer ended with an error.
    Failed,
}

/// One entry of `GET /api/sessions`: the record and what the session is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    #[serde(flatten)]
    pub record: SessionRecord,
    pub status: SessionStatus,
    /// Milliseconds since the epoch: the last turn started or ended, or an approval was asked or answered.
    pub last_activity_at: u64,
    /// The sum of its answers' costs.
    pub cost_usd: f64,
    /// Its name, else the start of its first prompt.
    pub title: String,
}

/// A line of `GET /api/sessions/watch`: the whole list (first, and after every change), or a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SessionListEvent {
    Sessions { sessions: Vec<SessionSummary> },
    Heartbeat,
}

/// `PATCH /api/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameRequest {
    pub name: String,
}

impl RenameRequest {
    /// The trimmed name, if it is one.
    pub fn validate(&self) -> Result<String, Invalid> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(Invalid::Bad("name is empty".into()));
        }
        if name.chars().count() > MAX_SESSION_NAME_CHARS {
            return Err(Invalid::Bad(format!(
                "name is longer than {MAX_SESSION_NAME_CHARS} characters"
            )));
        }
        Ok(name.to_string())
    }
}

/// What a session's DO tells its user's index on each transition: the whole state, stamped with the log's seq at
/// that moment, so an update that arrives late (after a newer one) changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionUpdate {
    pub id: String,
    pub version: u64,
    pub status: SessionStatus,
    pub last_activity_at: u64,
    pub cost_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_prompt: Option<String>,
}

/// A session rule ("allow for this session"): calls of `tool_name` are allowed without asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRule {
    pub tool_name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// `GET /api/v15/sessions/{id}/rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesResponse {
    pub rules: Vec<SessionRule>,
}

/// Why a request body was refused; the message is shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// 400.
    Bad(String),
    /// 413.
    TooLarge(String),
}

impl ChatRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_valid_id(&self.session_id) {
            return Err(Invalid::Bad("sessionId is not a valid session id".into()));
        }
        if self.prompt.trim().is_empty() {
            return Err(Invalid::Bad("prompt is empty".into()));
        }
        if self.prompt.len() > MAX_PROMPT_BYTES {
            return Err(Invalid::TooLarge(format!(
                "prompt is {} bytes; the limit is {MAX_PROMPT_BYTES}",
                self.prompt.len()
            )));
        }
        if let Some(model) = &self.turn.model {
            let ok = !model.is_empty()
                && model.len() <= 64
                && model
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-[]".contains(&b));
            if !ok {
                return Err(Invalid::Bad("model is not a valid model name".into()));
            }
        }
        if let Some(key) = &self.idempotency_key {
            if !is_valid_id(key) {
                return Err(Invalid::Bad(
                    "idempotencyKey must be 1 to 64 letters, digits or dashes".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Ids we mint are UUIDs; anything outside `[A-Za-z0-9-]{1,64}` is refused before it reaches a key or a path.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `name` can be a Claude Code tool name (`Bash`, `mcp__github__create_issue`): what a session rule is
/// keyed by.
pub fn is_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Masks a secret for display: its prefix and last four characters.
pub fn mask_token(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if token.starts_with(CLAUDE_TOKEN_PREFIX) && token.len() > CLAUDE_TOKEN_PREFIX.len() + 8 {
        format!("{CLAUDE_TOKEN_PREFIX}…{tail}")
    } else {
        format!("…{tail}")
    }
}

/// The pending-query file the DO writes into the sandbox and `vf-agent` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingQuery {
    pub prompt: String,
    /// Our session id.
    pub session_id: String,
    pub execution_id: String,
    /// Claude's session id to resume, if any.
    #[serde(default)]
    pub sdk_session_id: Option<String>,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
}

/// `POST /internal/stream` response: how much of the body the DO stored. 200, or 409 when the body skipped
/// ahead of what the DO stored (see [`crate::ingest`]): the agent then resends from `last_aseq + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackReceipt {
    pub stored: u64,
    /// Whether the execution is over (its terminal event is stored, or it was cancelled or timed out).
    pub terminal: bool,
    /// The highest `aseq` the DO has stored for the execution, from any connection.
    #[serde(default)]
    pub last_aseq: u64,
}

/// `GET /internal/stream` (the execution token again): what the DO has of the execution's stream, so an agent
/// can drop acknowledged lines from its journal, resend only the rest after a reconnect, and notice a
/// connection that stalled (its lines stopped arriving although it keeps writing them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamMark {
    /// The highest `aseq` stored.
    pub last_aseq: u64,
    /// Milliseconds since the DO last heard from the agent's current callback connection (a chunk, or the
    /// connection opening).
    pub idle_ms: u64,
}

/// The longest message a user can send with a decision (what Claude is told on a deny); longer ones are cut.
pub const MAX_APPROVAL_MESSAGE_CHARS: usize = 4_000;

/// `POST /api/v15/approve`. The original VaporForge client sends only the first three fields: `scope` then
/// defaults to `once` and there is no message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveRequest {
    pub session_id: String,
    pub approval_id: String,
    pub approved: bool,
    #[serde(default)]
    pub scope: Option<ApprovalScope>,
    #[serde(default)]
    pub message: Option<String>,
    /// The answers to Claude's questions: only to allow an `AskUserQuestion` confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
}

/// At most this many answers (the CLI asks 1 to 4 questions).
pub const MAX_ANSWERS: usize = 8;
/// A question is a sentence; its text is the answer's key.
pub const MAX_QUESTION_CHARS: usize = 1_000;

impl ApproveRequest {
    /// Checks the ids; cuts an over-long message at [`MAX_APPROVAL_MESSAGE_CHARS`] (a message is advice to
    /// Claude, so a long paste is shortened rather than refused) and drops an empty one.
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if !is_valid_id(&self.session_id) {
            return Err(Invalid::Bad("sessionId is not a valid id".into()));
        }
        if !is_valid_id(&self.approval_id) {
            return Err(Invalid::Bad("approvalId is not a valid id".into()));
        }
        self.message = self.message.as_deref().and_then(shortened);
        if let Some(answers) = self.answers.take() {
            if !self.approved {
                return Err(Invalid::Bad("answers go with approved: true".into()));
            }
            if answers.len() > MAX_ANSWERS {
                return Err(Invalid::Bad(format!(
                    "at most {MAX_ANSWERS} answers are taken"
                )));
            }
            let mut kept = Answers::new();
            for (question, answer) in answers {
                if question.trim().is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
                    return Err(Invalid::Bad(
                        "an answer's question is empty or too long".into(),
                    ));
                }
                let answer = shortened(&answer)
                    .ok_or_else(|| Invalid::Bad(format!("the answer to {question:?} is empty")))?;
                kept.insert(question, answer);
            }
            self.answers = Some(kept);
        }
        Ok(self)
    }
}

/// `POST /api/v15/approve` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveResponse {
    pub approval_id: String,
    pub approved: bool,
}

/// `GET /internal/approvals/{approvalId}` (the agent, with its execution token): the decision, once there is
/// one (200); 204 while it is still pending (the DO holds the request open a while first, then the agent asks
/// again); 404 when the approval or the execution is unknown or over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentDecision {
    pub approval_id: String,
    pub approved: bool,
    pub scope: ApprovalScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub by: DecidedBy,
    /// The user's answers, when Claude asked questions: the agent adds them to the tool's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
}

/// A message or an answer as kept: trimmed, cut at [`MAX_APPROVAL_MESSAGE_CHARS`] (advice to Claude, so a long
/// paste is shortened rather than refused); None when empty.
fn shortened(text: &str) -> Option<String> {
    Some(
        text.trim()
            .chars()
            .take(MAX_APPROVAL_MESSAGE_CHARS)
            .collect::<String>(),
    )
    .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(prompt: &str) -> ChatRequest {
        ChatRequest {
            session_id: "0b7c-11".into(),
            prompt: prompt.into(),
            turn: TurnOptions::default(),
            queue: false,
            idempotency_key: None,
        }
    }

    #[test]
    fn chat_validation() {
        assert_eq!(chat("hello").validate(), Ok(()));
        assert!(matches!(chat("  \n").validate(), Err(Invalid::Bad(_))));
        assert!(matches!(
            chat(&"x".repeat(MAX_PROMPT_BYTES + 1)).validate(),
            Err(Invalid::TooLarge(_))
        ));
        let mut bad_id = chat("hi");
        bad_id.session_id = "../etc".into();
        assert!(bad_id.validate().is_err());
        let mut model = chat("hi");
        model.turn.model = Some("claude-sonnet-4-5".into());
        assert_eq!(model.validate(), Ok(()));
        model.turn.model = Some("a b".into());
        assert!(model.validate().is_err());
        let mut keyed = chat("hi");
        keyed.idempotency_key = Some("k-1".into());
        assert_eq!(keyed.validate(), Ok(()));
        keyed.idempotency_key = Some("k/1".into());
        assert!(keyed.validate().is_err());
    }

    #[test]
    fn queue_and_key_are_optional_and_kept_with_the_turn_options() {
        let req: ChatRequest = serde_json::from_str(
            r#"{"sessionId":"s1","prompt":"p","mode":"plan","queue":true,"idempotencyKey":"k1"}"#,
        )
        .unwrap();
        assert!(req.queue);
        assert_eq!(req.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(req.turn.mode, Some(SessionMode::Plan));
        let back: ChatRequest =
            serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn summaries_flatten_the_record() {
        let summary = SessionSummary {
            record: SessionRecord {
                id: "s1".into(),
                user_id: "u".into(),
                name: "n".into(),
                sandbox_id: "sbx-s1".into(),
                created_at: 1,
            },
            status: SessionStatus::AwaitingApproval,
            last_activity_at: 2,
            cost_usd: 0.5,
            title: "n".into(),
        };
        let v = serde_json::to_value(&summary).unwrap();
        assert_eq!(v["status"], "awaiting-approval");
        assert_eq!(v["id"], "s1");
        assert_eq!(v["lastActivityAt"], 2);
        let record: SessionRecord = serde_json::from_value(v).unwrap();
        assert_eq!(record.id, "s1");
    }

    #[test]
    fn chat_request_uses_the_contract_field_names() {
        let req: ChatRequest = serde_json::from_str(
            r#"{"sessionId":"s1","prompt":"p","mode":"plan","model":"m","autonomy":"autonomous"}"#,
        )
        .unwrap();
        assert_eq!(req.turn.mode, Some(SessionMode::Plan));
        assert_eq!(req.turn.autonomy, Some(Autonomy::Autonomous));
        assert_eq!(req.turn.model.as_deref(), Some("m"));
        let sent = serde_json::to_value(chat("p")).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"sessionId": "0b7c-11", "prompt": "p"})
        );
        assert!(serde_json::from_str::<ChatRequest>(r#"{"sessionId":"s1"}"#).is_err());
        assert!(serde_json::from_str::<ChatRequest>(r#"{"sessionId":1,"prompt":"p"}"#).is_err());
    }

    #[test]
    fn the_original_clients_approve_body_is_enough() {
        let req: ApproveRequest =
            serde_json::from_str(r#"{"sessionId":"s1","approvalId":"a1","approved":true}"#)
                .unwrap();
        let req = req.validate().unwrap();
        assert_eq!((req.scope, req.message.as_deref()), (None, None));
        let long = ApproveRequest {
            message: Some(format!(
                "  {}  ",
                "m".repeat(MAX_APPROVAL_MESSAGE_CHARS + 10)
            )),
            ..req.clone()
        };
        assert_eq!(
            long.validate().unwrap().message.unwrap().len(),
            MAX_APPROVAL_MESSAGE_CHARS
        );
        let bad = ApproveRequest {
            approval_id: "../x".into(),
            ..req
        };
        assert!(bad.validate().is_err());
        assert!(
            serde_json::from_str::<ApproveRequest>(r#"{"sessionId":"s1","approvalId":"a1"}"#)
                .is_err()
        );
    }

    #[test]
    fn answers_are_checked_and_kept_trimmed() {
        let with = |approved: bool, answers: serde_json::Value| {
            serde_json::from_value::<ApproveRequest>(serde_json::json!({
                "sessionId": "s1", "approvalId": "a1", "approved": approved, "answers": answers
            }))
            .unwrap()
            .validate()
        };
        let ok = with(
            true,
            serde_json::json!({"Which database?": "  PostgreSQL "}),
        )
        .unwrap();
        assert_eq!(
            ok.answers.unwrap()["Which database?"],
            "PostgreSQL",
            "trimmed"
        );
        assert!(matches!(
            with(false, serde_json::json!({"Which?": "A"})),
            Err(Invalid::Bad(m)) if m.contains("approved")
        ));
        assert!(with(true, serde_json::json!({"Which?": "   "})).is_err());
        assert!(with(true, serde_json::json!({"": "A"})).is_err());
        assert!(with(
            true,
            serde_json::json!({"q".repeat(MAX_QUESTION_CHARS + 1): "A"})
        )
        .is_err());
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_ANSWERS)
            .map(|i| (format!("q{i}"), "a".into()))
            .collect();
        assert!(with(true, serde_json::Value::Object(many)).is_err());
        assert!(
            serde_json::from_value::<ApproveRequest>(serde_json::json!({
                "sessionId": "s1", "approvalId": "a1", "approved": true, "answers": {"q": 1}
            }))
            .is_err(),
            "answers are text"
        );
    }

    #[test]
    fn masking_never_shows_the_secret_part() {
        let token = "sk-ant-oat01-SECRETSECRETSECRETwxyz";
        let masked = mask_token(token);
        assert_eq!(masked, "sk-ant-oat01-…wxyz");
        assert!(!masked.contains("SECRET"));
        assert_eq!(mask_token("ab"), "…ab");
    }
}
