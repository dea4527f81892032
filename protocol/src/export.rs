//! A session's transcript as a Markdown document: prompts, answers, tool calls in one line each, approvals and
//! their outcome, and cost. Built from the stored events with the transcript reducer, so it says what the chat shows.

use std::fmt::Write;

use crate::event::{ApprovalScope, DecidedBy, Envelope};
use crate::transcript::{tool_subject, Approval, Part, Role, Status, ToolCall, Transcript};

/// A tool call's input is summarized in at most this many characters.
const SUMMARY_CHARS: usize = 100;

/// The Markdown transcript of `events` (a session's stored log, in seq order), headed by `title`.
pub fn markdown(title: &str, events: &[Envelope]) -> String {
    let mut transcript = Transcript::default();
    for envelope in events {
        transcript.apply(envelope);
    }
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", one_line(title));
    let mut total_cost = 0.0;
    let mut turn = 0;
    for message in &transcript.messages {
        match message.role {
            Role::User => {
                turn += 1;
                let _ = writeln!(out, "## Prompt {turn}\n\n{}\n", message.text().trim_end());
            }
            Role::Assistant => {
                out.push_str("### Answer\n\n");
                for part in &message.parts {
                    match part {
                        Part::Text(text) if !text.trim().is_empty() => {
                            let _ = writeln!(out, "{}\n", text.trim_end());
                        }
                        Part::Text(_) => {}
                        Part::Tool(call) => write_tool(&mut out, call, 0),
                        Part::Approval(approval) => {
                            let _ = writeln!(out, "- {}\n", approval_line(approval));
                        }
                    }
                }
                match &message.status {
                    Status::Streaming => out.push_str("_Still running when exported._\n\n"),
                    Status::Stopped => out.push_str("_Stopped._\n\n"),
                    Status::Failed { message, .. } => {
                        let _ = writeln!(out, "_Failed: {}_\n", one_line(message));
                    }
                    Status::Done {
                        cost_usd,
                        duration_ms,
                        usage,
                    } => {
                        let mut facts = Vec::new();
                        if let Some(cost) = cost_usd {
                            total_cost += cost;
                            facts.push(format!("cost ${cost:.4}"));
                        }
                        if let Some(ms) = duration_ms {
                            facts.push(format!("{:.1} s", *ms as f64 / 1000.0));
                        }
                        if let Some(usage) = usage {
                            facts.push(format!(
                                "{} tokens in, {} out",
                                usage.input_tokens, usage.output_tokens
                            ));
                        }
                        if !facts.is_empty() {
                            let _ = writeln!(out, "_{}_\n", facts.join(" · "));
                        }
                    }
                }
            }
        }
    }
    let _ = writeln!(out, "---\n\nTotal cost: ${total_cost:.4}");
    out
}

/// A tool call as a list item, a subagent's calls nested under it.
fn write_tool(out: &mut String, call: &ToolCall, depth: usize) {
    let _ = writeln!(out, "{}- {}", "  ".repeat(depth), tool_line(call));
    for child in &call.children {
        write_tool(out, child, depth + 1);
    }
    if depth == 0 {
        out.push('\n');
    }
}

/// `**Read** `src/main.rs` → ok (12 lines)`.
fn tool_line(call: &ToolCall) -> String {
    let input = summarize_input(&call.input);
    let outcome = match &call.output {
        None => "no result".to_string(),
        Some(output) => {
            let lines = output.lines().count();
            let word = if call.is_error { "error" } else { "ok" };
            let images = match call.images.len() {
                0 => String::new(),
                1 => ", 1 image".to_string(),
                n => format!(", {n} images"),
            };
            format!(
                "{word} ({lines} line{}{images})",
                if lines == 1 { "" } else { "s" }
            )
        }
    };
    match input {
        Some(input) => format!("Tool **{}** `{}` → {outcome}", call.name, input),
        None => format!("Tool **{}** → {outcome}", call.name),
    }
}

fn approval_line(approval: &Approval) -> String {
    let asked = match summarize_input(&approval.input) {
        Some(input) => format!("Approval asked for **{}** `{input}`", approval.tool_name),
        None => format!("Approval asked for **{}**", approval.tool_name),
    };
    let Some(decision) = &approval.decision else {
        return format!("{asked}: pending");
    };
    let verdict = match (decision.approved, decision.scope) {
        (true, ApprovalScope::Session) => "allowed for the session",
        (true, ApprovalScope::Once) => "allowed",
        (false, _) => "denied",
    };
    let by = match decision.by {
        DecidedBy::User => "by the user",
        DecidedBy::Rule => "by a session rule",
        DecidedBy::Timeout => "after nobody answered",
        DecidedBy::Cancel => "as the answer ended",
    };
    match &decision.message {
        Some(message) => format!("{asked}: {verdict} {by} ({})", one_line(message)),
        None => format!("{asked}: {verdict} {by}"),
    }
}

/// The telling field of a tool's input (a path, a command, a pattern…), else its JSON, on one short line.
fn summarize_input(input: &serde_json::Value) -> Option<String> {
    let text = match input {
        serde_json::Value::Null => return None,
        serde_json::Value::Object(map) if map.is_empty() => return None,
        other => tool_subject(other).map_or_else(|| other.to_string(), String::from),
    };
    let text = one_line(&text).replace('`', "'");
    Some(match text.chars().count() > SUMMARY_CHARS {
        true => format!(
            "{}…",
            text.chars().take(SUMMARY_CHARS - 1).collect::<String>()
        ),
        false => text,
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorCode, Event, Usage};
    use serde_json::json;

    fn at(seq: u64, execution: &str, event: Event) -> Envelope {
        Envelope {
            seq: Some(seq),
            execution_id: Some(execution.into()),
            event,
        }
    }

    fn done(cost: f64) -> Event {
        Event::Done {
            session_id: None,
            full_text: None,
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: 20,
            }),
            cost_usd: Some(cost),
            duration_ms: Some(1500),
            cancelled: None,
        }
    }

    #[test]
    fn turns_tools_approvals_and_cost_in_order() {
        let events = vec![
            at(
                1,
                "e1",
                Event::UserMessage {
                    text: "first question".into(),
                },
            ),
            at(
                2,
                "e1",
                Event::TextDelta {
                    text: "Looking.".into(),
                },
            ),
            at(
                3,
                "e1",
                Event::ToolStart {
                    id: "t1".into(),
                    name: "Read".into(),
                    input: json!({"file_path": "/w/src/main.rs"}),
                    parent_tool_use_id: None,
                },
            ),
            at(
                4,
                "e1",
                Event::ToolResult {
                    id: "t1".into(),
                    name: None,
                    output: "fn main() {}\n// end".into(),
                    is_error: None,
                    parent_tool_use_id: None,
                    images: Vec::new(),
                },
            ),
            at(
                5,
                "e1",
                Event::Confirmation {
                    approval_id: "a1".into(),
                    tool_name: "Bash".into(),
                    input: json!({"command": "cargo test"}),
                    tool_use_id: None,
                    suggestions: None,
                },
            ),
            at(
                6,
                "e1",
                Event::ConfirmationResult {
                    approval_id: "a1".into(),
                    approved: false,
                    scope: ApprovalScope::Once,
                    message: Some("not now".into()),
                    by: DecidedBy::User,
                    answers: None,
                },
            ),
            at(7, "e1", done(0.25)),
            at(
                8,
                "e2",
                Event::UserMessage {
                    text: "second question".into(),
                },
            ),
            at(
                9,
                "e2",
                Event::TextDelta {
                    text: "Sorry.".into(),
                },
            ),
            at(
                10,
                "e2",
                Event::error(ErrorCode::AgentCrashed, "the agent stopped"),
            ),
            at(
                11,
                "e3",
                Event::UserMessage {
                    text: "third".into(),
                },
            ),
            at(12, "e3", done(0.5)),
        ];
        let md = markdown("My  session", &events);
        assert!(md.starts_with("# My session\n"), "{md}");
        let order = [
            "## Prompt 1\n\nfirst question",
            "Looking.",
            "- Tool **Read** `/w/src/main.rs` → ok (2 lines)",
            "- Approval asked for **Bash** `cargo test`: denied by the user (not now)",
            "_cost $0.2500 · 1.5 s · 10 tokens in, 20 out_",
            "## Prompt 2\n\nsecond question",
            "Sorry.",
            "_Failed: the agent stopped_",
            "## Prompt 3\n\nthird",
            "Total cost: $0.7500",
        ];
        let mut from = 0;
        for piece in order {
            let found = md[from..]
                .find(piece)
                .unwrap_or_else(|| panic!("{piece:?} after byte {from} in:\n{md}"));
            from += found + piece.len();
        }
    }

    #[test]
    fn a_subagents_calls_are_nested_under_its_task() {
        let events = vec![
            at(1, "e1", Event::UserMessage { text: "go".into() }),
            at(
                2,
                "e1",
                Event::ToolStart {
                    id: "task".into(),
                    name: "Task".into(),
                    input: json!({"description": "look around"}),
                    parent_tool_use_id: None,
                },
            ),
            at(
                3,
                "e1",
                Event::ToolStart {
                    id: "t2".into(),
                    name: "Grep".into(),
                    input: json!({"pattern": "fn main"}),
                    parent_tool_use_id: Some("task".into()),
                },
            ),
            at(4, "e1", done(0.0)),
        ];
        let md = markdown("t", &events);
        assert!(
            md.contains("- Tool **Task** `look around` → no result\n  - Tool **Grep** `fn main` → no result\n"),
            "{md}"
        );
    }

    #[test]
    fn an_empty_log_is_a_title_and_no_cost() {
        assert_eq!(markdown("t", &[]), "# t\n\n---\n\nTotal cost: $0.0000\n");
    }

    #[test]
    fn long_inputs_are_cut_and_backticks_cannot_break_out() {
        let long = summarize_input(&json!({"command": "x`y ".repeat(100)})).unwrap();
        assert_eq!(long.chars().count(), SUMMARY_CHARS);
        assert!(!long.contains('`'));
        assert_eq!(summarize_input(&json!({})), None);
        assert_eq!(
            summarize_input(&json!({"a": 1})).as_deref(),
            Some("{\"a\":1}")
        );
    }
}
