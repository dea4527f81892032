//! The Agent SDKs' control protocol with the Claude Code CLI: the lines vf-agent writes, the control lines it reads.
//!
//! Spoken over stdin/stdout with `--input-format stream-json` and `--permission-prompt-tool stdio`.
//! Shapes from the Python SDK (`claude_agent_sdk`): `_internal/client.py` `process_query` (the user message),
//! `_internal/query.py` `Query.initialize`, `_send_control_request` (initialize, interrupt) and
//! `_handle_control_request` (the `can_use_tool` answer and the error answer).

use serde::Deserialize;
use serde_json::{json, Value};
use vf_protocol::api::AgentDecision;
use vf_protocol::DecidedBy;

/// A control line the CLI printed: protocol, never an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The CLI asks us something (`can_use_tool`, or anything else, which gets an error answer).
    Request { request_id: String, request: Value },
    /// The CLI's answer to one of our requests (initialize, interrupt).
    Response {
        request_id: String,
        error: Option<String>,
    },
    /// The CLI no longer needs the answer to its request (it was interrupted meanwhile).
    Cancel { request_id: String },
}

/// A `can_use_tool` request: Claude wants to run a tool that its permission mode does not allow by itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Permission {
    pub tool_name: String,
    #[serde(default)]
    pub input: Value,
    /// The rules the CLI would add for "always allow" (`PermissionUpdate`s).
    #[serde(default)]
    pub permission_suggestions: Option<Value>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
}

impl Incoming {
    /// A `control_response` line's `response` object.
    pub fn response(response: &Value) -> Self {
        Incoming::Response {
            request_id: response["request_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            error: (response["subtype"] == "error").then(|| {
                response["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string()
            }),
        }
    }
}

/// The request's `can_use_tool` body, if it is one.
pub fn permission(request: &Value) -> Option<Permission> {
    if request["subtype"] != "can_use_tool" {
        return None;
    }
    serde_json::from_value(request.clone()).ok()
}

/// One line for the CLI's stdin (with its newline).
fn line(value: Value) -> String {
    value.to_string() + "\n"
}

/// The prompt, as the SDKs send a string prompt: a user message with an empty session id (the CLI fills in its
/// own, or the one of `--resume`).
pub fn user_message(prompt: &str) -> String {
    line(json!({
        "type": "user",
        "session_id": "",
        "message": {"role": "user", "content": prompt},
        "parent_tool_use_id": null,
    }))
}

/// A request of ours: `{"subtype":"initialize","hooks":null}` (no hooks: approvals come through `can_use_tool`)
/// or `{"subtype":"interrupt"}`.
pub fn request(request_id: &str, request: Value) -> String {
    line(json!({"type": "control_request", "request_id": request_id, "request": request}))
}

pub fn initialize() -> Value {
    json!({"subtype": "initialize", "hooks": null})
}

pub fn interrupt() -> Value {
    json!({"subtype": "interrupt"})
}

fn success(request_id: &str, response: Value) -> String {
    line(json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }))
}

/// The answer to a request we do not serve: an error, so the CLI never waits for nothing.
pub fn error(request_id: &str, message: &str) -> String {
    line(json!({
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": message},
    }))
}

/// The tool through which Claude asks the user questions: allowed with the answers added to its input.
pub const ASK_USER_QUESTION: &str = "AskUserQuestion";
/// The tool through which Claude, in plan mode, presents its plan: allowed means the plan is approved.
pub const EXIT_PLAN_MODE: &str = "ExitPlanMode";

/// What Claude asked to run, kept until the decision on it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub tool_name: String,
    pub input: Value,
}

/// The answer to a `can_use_tool` request. Allowed: the input to run with: Claude's, with the user's answers added
/// for `AskUserQuestion` (`answers`, as the SDKs return them); an approved plan (`ExitPlanMode`) also switches the
/// CLI out of plan mode into `mode_after_plan` for the rest of the turn (`updatedPermissions` `setMode`), so that
/// Claude goes on to carry it out. Denied: why, which Claude reads as the tool's error result. "Allow for this
/// session" is not handed to the CLI as a rule: the DO keeps the session's rules and answers later requests
/// itself, so that every request, and who answered it, lands in the transcript.
pub fn decision_response(
    request_id: &str,
    decision: &AgentDecision,
    asked: &Asked,
    mode_after_plan: &str,
) -> String {
    let response = if decision.approved {
        let mut input = asked.input.clone();
        if let (Some(answers), Some(fields)) = (&decision.answers, input.as_object_mut()) {
            if asked.tool_name == ASK_USER_QUESTION {
                fields.insert("answers".into(), json!(answers));
            }
        }
        let mut allow = json!({"behavior": "allow", "updatedInput": input});
        if asked.tool_name == EXIT_PLAN_MODE {
            allow["updatedPermissions"] =
                json!([{"type": "setMode", "mode": mode_after_plan, "destination": "session"}]);
        }
        allow
    } else {
        let message = decision
            .message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| deny_reason(decision.by).to_string());
        json!({"behavior": "deny", "message": message})
    };
    success(request_id, response)
}

/// What Claude is told when a denial came without a message.
pub fn deny_reason(by: DecidedBy) -> &'static str {
    match by {
        DecidedBy::User => "The user denied this tool call.",
        DecidedBy::Rule => "A rule of this session denies this tool call.",
        DecidedBy::Timeout => "Nobody approved this tool call in time, so it was denied.",
        DecidedBy::Cancel => "The run was stopped before this tool call was approved.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vf_protocol::ApprovalScope;

    fn parse(line: &str) -> Value {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(line).unwrap()
    }

    fn decision(approved: bool, by: DecidedBy) -> AgentDecision {
        AgentDecision {
            approval_id: "a1".into(),
            approved,
            scope: ApprovalScope::Once,
            message: None,
            by,
            answers: None,
        }
    }

    fn asked(tool_name: &str, input: Value) -> Asked {
        Asked {
            tool_name: tool_name.into(),
            input,
        }
    }

    #[test]
    fn our_lines_have_the_sdk_shapes() {
        assert_eq!(
            parse(&user_message("hi \"there\"")),
            json!({"type": "user", "session_id": "", "message": {"role": "user", "content": "hi \"there\""},
                "parent_tool_use_id": null})
        );
        assert_eq!(
            parse(&request("vf-1", initialize())),
            json!({"type": "control_request", "request_id": "vf-1",
                "request": {"subtype": "initialize", "hooks": null}})
        );
        assert_eq!(
            parse(&request("vf-2", interrupt()))["request"],
            json!({"subtype": "interrupt"})
        );
        assert_eq!(
            parse(&error("r9", "unsupported")),
            json!({"type": "control_response",
                "response": {"subtype": "error", "request_id": "r9", "error": "unsupported"}})
        );
    }

    #[test]
    fn allow_runs_claudes_input() {
        let bash = asked("Bash", json!({"command": "ls"}));
        let allow = parse(&decision_response(
            "r1",
            &decision(true, DecidedBy::User),
            &bash,
            "acceptEdits",
        ));
        assert_eq!(
            allow,
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "r1",
                "response": {"behavior": "allow", "updatedInput": {"command": "ls"}}}})
        );
        // Answers only ever go to Claude's questions.
        let answered = AgentDecision {
            answers: Some([("q".to_string(), "a".to_string())].into()),
            ..decision(true, DecidedBy::User)
        };
        assert_eq!(
            parse(&decision_response("r1", &answered, &bash, "default"))["response"]["response"],
            json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
        );
    }

    #[test]
    fn answers_fill_in_the_questions_input() {
        let questions = json!([{"question": "Which database?", "header": "Database", "multiSelect": false,
            "options": [{"label": "PostgreSQL", "description": "relational"},
                        {"label": "SQLite", "description": "a file"}]}]);
        let ask = asked(ASK_USER_QUESTION, json!({"questions": questions}));
        let answered = AgentDecision {
            answers: Some([("Which database?".to_string(), "SQLite".to_string())].into()),
            ..decision(true, DecidedBy::User)
        };
        assert_eq!(
            parse(&decision_response("r4", &answered, &ask, "default"))["response"]["response"],
            json!({"behavior": "allow", "updatedInput": {"questions": questions,
                "answers": {"Which database?": "SQLite"}}})
        );
    }

    #[test]
    fn an_approved_plan_leaves_plan_mode() {
        let plan = asked(EXIT_PLAN_MODE, json!({"plan": "1. Read\n2. Fix"}));
        let approved = parse(&decision_response(
            "r5",
            &decision(true, DecidedBy::User),
            &plan,
            "acceptEdits",
        ));
        assert_eq!(
            approved["response"]["response"],
            json!({"behavior": "allow", "updatedInput": {"plan": "1. Read\n2. Fix"},
                "updatedPermissions": [{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]})
        );
        let kept = AgentDecision {
            message: Some("also cover the tests".into()),
            ..decision(false, DecidedBy::User)
        };
        assert_eq!(
            parse(&decision_response("r6", &kept, &plan, "acceptEdits"))["response"]["response"],
            json!({"behavior": "deny", "message": "also cover the tests"})
        );
    }

    #[test]
    fn deny_carries_the_message_or_says_who_denied() {
        let input = asked("Bash", json!({}));
        let said = AgentDecision {
            message: Some("not on main".into()),
            ..decision(false, DecidedBy::User)
        };
        assert_eq!(
            parse(&decision_response("r2", &said, &input, "default"))["response"],
            json!({"subtype": "success", "request_id": "r2",
                "response": {"behavior": "deny", "message": "not on main"}})
        );
        for by in [DecidedBy::User, DecidedBy::Timeout, DecidedBy::Cancel] {
            let blank = AgentDecision {
                message: Some("  ".into()),
                ..decision(false, by)
            };
            let response = parse(&decision_response("r3", &blank, &input, "default"));
            assert_eq!(
                response["response"]["response"]["message"],
                deny_reason(by),
                "{by:?}"
            );
        }
    }

    #[test]
    fn permission_requests_are_read_and_others_are_not() {
        let request = json!({"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "ls"},
            "permission_suggestions": [{"type": "addRules"}], "tool_use_id": "toolu_1", "blocked_path": null});
        assert_eq!(
            permission(&request),
            Some(Permission {
                tool_name: "Bash".into(),
                input: json!({"command": "ls"}),
                permission_suggestions: Some(json!([{"type": "addRules"}])),
                tool_use_id: Some("toolu_1".into()),
            })
        );
        let bare = json!({"subtype": "can_use_tool", "tool_name": "Read", "input": {}});
        assert_eq!(permission(&bare).unwrap().tool_use_id, None);
        assert_eq!(permission(&json!({"subtype": "hook_callback"})), None);
        assert_eq!(permission(&json!({"subtype": "can_use_tool"})), None);
        assert_eq!(
            Incoming::response(&json!({"subtype": "error", "request_id": "vf-1", "error": "no"})),
            Incoming::Response {
                request_id: "vf-1".into(),
                error: Some("no".into())
            }
        );
        assert_eq!(
            Incoming::response(
                &json!({"subtype": "success", "request_id": "vf-1", "response": {}})
            ),
            Incoming::Response {
                request_id: "vf-1".into(),
                error: None
            }
        );
    }
}
