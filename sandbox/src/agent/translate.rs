//! Claude Code's stream-json lines → protocol events: a pure state machine fed one line at a time.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use vf_protocol::framer::MAX_LINE_BYTES;
use vf_protocol::{ErrorCode, Event, Image, Usage};

use super::control::Incoming;

mod status;
use status::{RateLimitInfo, Said, SystemLine};

/// The most a single text or tool output may weigh, JSON-escaped, so that no agent line nears the 1 MiB limit of
/// the framer (`vf_protocol::framer::MAX_LINE_BYTES`).
pub const MAX_TEXT_BYTES: usize = 512 * 1024;

/// The most the images of one tool result may weigh together (base64): with its output capped at
/// [`MAX_TEXT_BYTES`], the line stays under the framer's limit. A larger image is named in the output instead.
pub const MAX_IMAGE_BYTES: usize = MAX_LINE_BYTES - MAX_TEXT_BYTES - 64 * 1024;

/// What a CLI line stands for.
#[derive(Debug, PartialEq)]
pub enum Translation {
    Events(Vec<Event>),
    Control(Incoming),
}

/// Turns stream-json lines into events. Keeps what spans lines: the latest Claude session id, which message is
/// being streamed, the names of pending tool calls, and how many lines it could not use.
#[derive(Debug, Default)]
pub struct Translator {
    session_id: Option<String>,
    /// The message whose text is arriving as partial deltas (`Some(None)` when the stream gave no message id).
    /// With `--include-partial-messages` the CLI also prints each complete `assistant` message; text already
    /// streamed for it must not be shown twice.
    streamed: Option<Option<String>>,
    current: Option<String>,
    tool_names: HashMap<String, String>,
    skipped: u64,
}

impl Translator {
    /// What one line of the CLI's output stands for: events (often none), or a control message, which is
    /// protocol between the CLI and us and never an event.
    pub fn translate(&mut self, line: &[u8]) -> Translation {
        match serde_json::from_slice::<Line>(line) {
            Ok(line) => self.read(line),
            Err(_) => {
                self.skip();
                Translation::Events(Vec::new())
            }
        }
    }

    /// Counts a line that could not be used at all (not JSON, over-long, unknown type).
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Claude's session id from the latest `init` or `result` line.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    fn read(&mut self, line: Line) -> Translation {
        let events = match line {
            Line::ControlRequest {
                request_id,
                request,
            } => {
                return Translation::Control(Incoming::Request {
                    request_id,
                    request,
                })
            }
            Line::ControlResponse { response } => {
                return Translation::Control(Incoming::response(&response))
            }
            Line::ControlCancelRequest { request_id } => {
                return Translation::Control(Incoming::Cancel { request_id })
            }
            Line::System(SystemLine {
                subtype,
                session_id: Some(session_id),
                model,
                tools,
                ..
            }) if subtype == "init" => {
                self.session_id = Some(session_id.clone());
                vec![Event::SessionInit {
                    session_id,
                    model,
                    tools,
                }]
            }
            Line::System(system) => match system.status() {
                Said::Status(event) => vec![event],
                Said::Noise => Vec::new(),
                Said::Unknown => {
                    self.skip();
                    Vec::new()
                }
            },
            Line::RateLimitEvent { rate_limit_info } => {
                rate_limit_info.status().into_iter().collect()
            }
            Line::StreamEvent {
                event,
                parent_tool_use_id,
            } => match event {
                StreamEvent::MessageStart { message } => {
                    self.current = message.id;
                    self.streamed = None;
                    Vec::new()
                }
                StreamEvent::ContentBlockDelta {
                    delta: Delta::TextDelta { text },
                } if parent_tool_use_id.is_none() => {
                    self.streamed = Some(self.current.clone());
                    vec![Event::TextDelta {
                        text: truncate(text),
                    }]
                }
                _ => Vec::new(),
            },
            Line::Assistant {
                message,
                parent_tool_use_id,
            } => {
                // Text of a sub-agent (a Task tool call) is its own conversation, not part of this answer.
                let show_text = parent_tool_use_id.is_none()
                    && !self
                        .streamed
                        .as_ref()
                        .is_some_and(|id| id.is_none() || *id == message.id);
                message
                    .content
                    .into_iter()
                    .filter_map(|block| match block {
                        Block::Text { text } if show_text => Some(Event::TextDelta {
                            text: truncate(text),
                        }),
                        Block::ToolUse { id, name, input } => {
                            self.tool_names.insert(id.clone(), name.clone());
                            Some(Event::ToolStart {
                                id,
                                name,
                                input: cap_input(input),
                                parent_tool_use_id: parent_tool_use_id.clone(),
                            })
                        }
                        _ => None,
                    })
                    .collect()
            }
            Line::User {
                message,
                parent_tool_use_id,
            } => message
                .content
                .into_iter()
                .filter_map(|block| match block {
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => {
                        let (output, images) = tool_output(content);
                        Some(Event::ToolResult {
                            name: self.tool_names.remove(&tool_use_id),
                            id: tool_use_id,
                            output: truncate(output),
                            is_error: Some(is_error),
                            parent_tool_use_id: parent_tool_use_id.clone(),
                            images,
                        })
                    }
                    _ => None,
                })
                .collect(),
            Line::Result(result) => {
                if let Some(id) = &result.session_id {
                    self.session_id = Some(id.clone());
                }
                vec![self.result(result)]
            }
            Line::Unknown => {
                self.skip();
                Vec::new()
            }
        };
        Translation::Events(events)
    }

    fn result(&self, result: ResultLine) -> Event {
        if result.is_error || result.subtype != "success" {
            return Event::error(ErrorCode::AgentError, truncate(result.failure()));
        }
        Event::Done {
            session_id: self.session_id.clone(),
            full_text: result.result.map(truncate),
            usage: result.usage.map(|u| Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            }),
            cost_usd: result.total_cost_usd,
            duration_ms: result.duration_ms,
            cancelled: None,
        }
    }
}

/// A tool result's content, a string or content blocks: the text of its text blocks, joined, and its base64
/// images (up to [`MAX_IMAGE_BYTES`] in all). What cannot be shown is named in the text instead.
fn tool_output(content: Option<Value>) -> (String, Vec<Image>) {
    let blocks = match content {
        None | Some(Value::Null) => return (String::new(), Vec::new()),
        Some(Value::String(text)) => return (text, Vec::new()),
        Some(Value::Array(blocks)) => blocks,
        Some(other) => return (other.to_string(), Vec::new()),
    };
    let (mut texts, mut images, mut budget) = (Vec::new(), Vec::new(), MAX_IMAGE_BYTES);
    for block in blocks {
        match (block["type"].as_str(), block["text"].as_str()) {
            (Some("text"), Some(text)) => texts.push(text.to_string()),
            (Some("image"), _) => match image(&block["source"]) {
                Some(image) if image.data.len() <= budget => {
                    budget -= image.data.len();
                    images.push(image);
                }
                Some(image) => texts.push(format!(
                    "[image omitted: {} KB, over the {} KB a tool result may carry]",
                    image.data.len() / 1024,
                    MAX_IMAGE_BYTES / 1024
                )),
                None => texts.push("[image omitted: not an inline PNG, JPEG, GIF or WebP]".into()),
            },
            (kind, _) => texts.push(format!("[{} omitted]", kind.unwrap_or("content"))),
        }
    }
    (texts.join("\n"), images)
}

/// An image block's `source`, when it is inline base64 data of a type a page may show.
fn image(source: &Value) -> Option<Image> {
    if source["type"] != "base64" {
        return None;
    }
    let image = Image {
        media_type: source["media_type"].as_str()?.to_string(),
        data: source["data"].as_str()?.to_string(),
    };
    image.is_safe().then_some(image)
}

/// Cuts `text` so that its JSON-escaped form fits [`MAX_TEXT_BYTES`], with a visible marker at the cut.
pub fn truncate(mut text: String) -> String {
    let mut escaped = 0;
    for (at, c) in text.char_indices() {
        escaped += match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if escaped > MAX_TEXT_BYTES {
            let dropped = text.len() - at;
            text.truncate(at);
            text.push_str(&format!("\n…[truncated {dropped} bytes]"));
            break;
        }
    }
    text
}

/// A tool input too large for one line becomes its JSON text, truncated: still readable, never a broken line.
pub fn cap_input(input: Value) -> Value {
    let text = input.to_string();
    if text.len() > MAX_TEXT_BYTES {
        Value::String(truncate(text))
    } else {
        input
    }
}

/// One line of `claude -p --output-format stream-json --verbose`, as much of it as we use.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    System(SystemLine),
    RateLimitEvent {
        rate_limit_info: RateLimitInfo,
    },
    StreamEvent {
        event: StreamEvent,
        #[serde(default)]
        parent_tool_use_id: Option<String>,
    },
    Assistant {
        message: Message,
        #[serde(default)]
        parent_tool_use_id: Option<String>,
    },
    User {
        message: Message,
        #[serde(default)]
        parent_tool_use_id: Option<String>,
    },
    Result(ResultLine),
    ControlRequest {
        request_id: String,
        request: Value,
    },
    ControlResponse {
        response: Value,
    },
    ControlCancelRequest {
        request_id: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: MessageId,
    },
    ContentBlockDelta {
        delta: Delta,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageId {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    TextDelta {
        text: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<String>,
    #[serde(deserialize_with = "blocks")]
    content: Vec<Block>,
}

/// A message's content blocks; a plain user turn has a bare string instead, which carries no tool result.
fn blocks<'de, D: serde::Deserializer<'de>>(content: D) -> Result<Vec<Block>, D::Error> {
    match Value::deserialize(content)? {
        Value::String(_) => Ok(Vec::new()),
        blocks => serde_json::from_value(blocks).map_err(serde::de::Error::custom),
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<Value>,
        #[serde(default)]
        is_error: bool,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ResultLine {
    subtype: String,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    total_cost_usd: Option<f64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    num_turns: Option<u64>,
    #[serde(default)]
    usage: Option<CliUsage>,
    /// Newer CLIs list what went wrong on error results.
    #[serde(default)]
    errors: Vec<String>,
}

impl ResultLine {
    /// A message for the user: what the CLI said, or what its subtype means.
    fn failure(self) -> String {
        let said = match (self.errors.is_empty(), self.result) {
            (false, _) => Some(self.errors.join("; ")),
            (true, Some(text)) if !text.trim().is_empty() => Some(text),
            _ => None,
        };
        match (self.subtype.as_str(), said) {
            ("error_max_turns", _) => format!(
                "Claude Code stopped after reaching its maximum number of turns ({}).",
                self.num_turns.unwrap_or_default()
            ),
            ("error_during_execution", Some(said)) => {
                format!("Claude Code failed during execution: {said}")
            }
            ("error_during_execution", None) => "Claude Code failed during execution.".into(),
            (_, Some(said)) => said,
            (subtype, None) => format!("Claude Code reported an error ({subtype})."),
        }
    }
}

#[derive(Deserialize)]
struct CliUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_claude::{self, Answer, Step, Vars};
    use serde_json::json;

    fn only_events(translation: Translation) -> Vec<Event> {
        match translation {
            Translation::Events(events) => events,
            Translation::Control(control) => panic!("not an event line: {control:?}"),
        }
    }

    /// Replays a fixture as the fake would print it, through a fresh translator, every permission given.
    fn replay(name: &str) -> (Vec<Event>, u64) {
        replay_answered(name, &Answer::Allowed(json!({"updatedInput": {}})))
    }

    /// Replays a fixture with every permission answered `answer`.
    fn replay_answered(name: &str, answer: &Answer) -> (Vec<Event>, u64) {
        let vars = Vars {
            session_id: "sess-1".into(),
            new_session_id: "sess-new".into(),
            cwd: "/w".into(),
            model: "m".into(),
            permission_mode: "default".into(),
        };
        let steps = fake_claude::steps(fake_claude::fixture(name).unwrap(), &vars, true).unwrap();
        let mut translator = Translator::default();
        let mut events = Vec::new();
        for step in steps {
            let line = match step {
                Step::Print(line) => line,
                Step::Branch { allowed, line } => {
                    match fake_claude::branch(&line, allowed, answer) {
                        Some(line) => line,
                        None => continue,
                    }
                }
                Step::Exit(_) | Step::Hang => break,
                Step::Sleep(_) | Step::Ask(_) => continue,
            };
            events.extend(only_events(translator.translate(line.as_bytes())));
        }
        (events, translator.skipped())
    }

    /// Events as JSON, with each run of text deltas merged into one entry that records how many there were.
    fn compact(events: &[Event]) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for event in events {
            match (event, out.last_mut()) {
                (Event::TextDelta { text }, Some(last)) if last["type"] == "text-deltas" => {
                    last["count"] = json!(last["count"].as_u64().unwrap() + 1);
                    last["text"] = json!(format!("{}{text}", last["text"].as_str().unwrap()));
                }
                (Event::TextDelta { text }, _) => {
                    out.push(json!({"type": "text-deltas", "count": 1, "text": text}))
                }
                (event, _) => out.push(serde_json::to_value(event).unwrap()),
            }
        }
        out
    }

    fn init(session: &str) -> Value {
        let tools = [
            "Task",
            "Bash",
            "Glob",
            "Grep",
            "LS",
            "Read",
            "Edit",
            "MultiEdit",
            "Write",
            "WebFetch",
            "TodoWrite",
            "WebSearch",
        ];
        json!({"type": "session-init", "sessionId": session, "model": "m", "tools": tools})
    }

    fn texts(count: u64, text: &str) -> Value {
        json!({"type": "text-deltas", "count": count, "text": text})
    }

    fn done(session: &str, text: &str, usage: (u64, u64), cost: f64, ms: u64) -> Value {
        json!({"type": "done", "sessionId": session, "fullText": text,
            "usage": {"inputTokens": usage.0, "outputTokens": usage.1}, "costUsd": cost, "durationMs": ms})
    }

    #[test]
    fn demo() {
        let answer = "VaporForge is a browser chat UI for Claude Code, which runs in a sandbox container next to \
            your code. Your prompt goes to a Durable Object: it starts the agent, stores every event the agent \
            streams back, and fans them out to each open tab, so you can close this tab mid-answer and pick the \
            stream up later, from any device.\n\nEvery event is one line of JSON, for example:\n\n```json\n\
            {\"type\":\"text-delta\",\"text\":\"Hello\"}\n```\n\nThis answer is a scripted demo. Log in with a \
            Claude token to talk to the real agent.";
        let readme = "# VaporForge\n\nA browser chat UI for Claude Code running in a sandbox.\nAnswers stream \
            through a Durable Object that stores every event,\nso a closed tab never loses an answer.\n";
        let command =
            json!({"command": "head -5 README.md", "description": "Show the start of the README"});
        let (events, skipped) = replay("demo");
        assert_eq!(
            compact(&events),
            [
                init("sess-1"),
                texts(3, "Let me look at the project's README first."),
                json!({"type": "tool-start", "id": "toolu_01DemoBash", "name": "Bash", "input": command}),
                json!({"type": "tool-result", "id": "toolu_01DemoBash", "name": "Bash", "output": readme,
                    "isError": false}),
                texts(18, answer),
                done("sess-1", answer, (18, 214), 0.0231, 6120),
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn cards_group_the_subagents_calls_and_carry_its_image() {
        let (events, skipped) = replay("cards");
        assert_eq!(skipped, 0);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::ToolStart {
                    name,
                    parent_tool_use_id,
                    ..
                } => format!("start {name} {parent_tool_use_id:?}"),
                Event::ToolResult {
                    name: Some(name),
                    parent_tool_use_id,
                    images,
                    ..
                } => format!("result {name} {parent_tool_use_id:?} {}", images.len()),
                Event::Status { message, .. } => format!("status {message}"),
                other => other.kind().to_string(),
            })
            .collect();
        let task = Some("toolu_03CardsTask");
        assert_eq!(
            kinds,
            [
                "session-init".to_string(),
                "text-delta".into(),
                "start Edit None".into(),
                "result Edit None 0".into(),
                "start Bash None".into(),
                "result Bash None 0".into(),
                "start Task None".into(),
                "status Subagent started: Find the config".into(),
                format!("start Grep {task:?}"),
                format!("result Grep {task:?} 0"),
                format!("start Read {task:?}"),
                format!("result Read {task:?} 1"),
                "status Subagent completed: Found the config".into(),
                "result Task None 0".into(),
                "text-delta".into(),
                "done".into(),
            ]
        );
    }

    #[test]
    fn status_lines_become_live_statuses() {
        let (events, skipped) = replay("status");
        assert_eq!(skipped, 0);
        let said: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Status { kind, message, .. } => Some((*kind, message.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            said,
            [
                (
                    vf_protocol::StatusKind::ApiRetry,
                    "The API is overloaded: retry 1 of 10 in 2 s"
                ),
                (
                    vf_protocol::StatusKind::Compacting,
                    "Compacting the conversation…"
                ),
                (
                    vf_protocol::StatusKind::RateLimit,
                    "Nearing the usage limit (5-hour window), 90 % used; resets at 14:00 UTC"
                ),
            ]
        );
        assert!(matches!(events.last(), Some(Event::Done { .. })));
    }

    #[test]
    fn permission_given_and_refused() {
        let command = json!({"command": "echo hello", "description": "Print hello"});
        let start = json!({"type": "tool-start", "id": "toolu_01PermBash", "name": "Bash", "input": command});
        let (allowed, _) = replay("permission");
        assert_eq!(
            compact(&allowed)[1..4],
            [
                texts(1, "I'll run the command."),
                start.clone(),
                json!({"type": "tool-result", "id": "toolu_01PermBash", "name": "Bash", "output": "hello",
                    "isError": false}),
            ]
        );
        assert!(
            matches!(allowed.last(), Some(Event::Done { full_text: Some(t), .. }) if t.contains("hello"))
        );
        let (denied, skipped) =
            replay_answered("permission", &Answer::Denied("not \"now\"".into()));
        assert_eq!(
            compact(&denied)[2..],
            [
                start,
                json!({"type": "tool-result", "id": "toolu_01PermBash", "name": "Bash", "output": "not \"now\"",
                    "isError": true}),
                texts(1, "The command was denied: not \"now\""),
                done(
                    "sess-1",
                    "The command was denied: not \"now\"",
                    (4, 40),
                    0.0121,
                    3120
                ),
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn control_lines_are_protocol_not_events() {
        let mut translator = Translator::default();
        let request = json!({"subtype": "can_use_tool", "tool_name": "Bash", "input": {}});
        let lines = [
            json!({"type": "control_request", "request_id": "r1", "request": request}),
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "vf-1"}}),
            json!({"type": "control_cancel_request", "request_id": "r1"}),
        ];
        let translated: Vec<Translation> = lines
            .iter()
            .map(|line| translator.translate(line.to_string().as_bytes()))
            .collect();
        assert_eq!(
            translated,
            [
                Translation::Control(Incoming::Request {
                    request_id: "r1".into(),
                    request
                }),
                Translation::Control(Incoming::Response {
                    request_id: "vf-1".into(),
                    error: None
                }),
                Translation::Control(Incoming::Cancel {
                    request_id: "r1".into()
                }),
            ]
        );
        assert_eq!(translator.skipped(), 0);
    }

    #[test]
    fn text() {
        let text =
            "Hello! I'm Claude Code, running in your VaporForge sandbox. What shall we build?";
        let (events, skipped) = replay("text");
        assert_eq!(
            compact(&events),
            [
                init("sess-1"),
                texts(6, text),
                done("sess-1", text, (4, 22), 0.0042, 1450)
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn tool_without_partial_messages() {
        let (events, _) = replay("tool");
        assert_eq!(
            compact(&events),
            [
                init("sess-1"),
                texts(1, "I'll look for the manifest."),
                json!({"type": "tool-start", "id": "toolu_01Glob", "name": "Glob", "input": {"pattern": "**/Cargo.toml"}}),
                json!({"type": "tool-result", "id": "toolu_01Glob", "name": "Glob", "output": "/w/Cargo.toml",
                    "isError": false}),
                json!({"type": "tool-start", "id": "toolu_02Bash", "name": "Bash",
                    "input": {"command": "cat missing.txt", "description": "Show missing.txt"}}),
                json!({"type": "tool-result", "id": "toolu_02Bash", "name": "Bash",
                    "output": "cat: missing.txt: No such file or directory", "isError": true}),
                json!({"type": "tool-start", "id": "toolu_03Read", "name": "Read", "input": {"file_path": "/w/Cargo.toml"}}),
                json!({"type": "tool-result", "id": "toolu_03Read", "name": "Read",
                    "output": "[workspace]\nmembers = [\"app\"]", "isError": false}),
                texts(1, "The workspace has one member: app."),
                done(
                    "sess-1",
                    "The workspace has one member: app.",
                    (31, 96),
                    0.0188,
                    5210
                ),
            ]
        );
    }

    #[test]
    fn error_result() {
        let (events, _) = replay("error-result");
        assert_eq!(
            compact(&events),
            [
                init("sess-1"),
                texts(3, "Running the migration now."),
                json!({"type": "error", "code": "agent-error",
                    "error": "Claude Code failed during execution: Tool execution failed: database is locked"}),
            ]
        );
    }

    #[test]
    fn crash_and_hang_have_no_terminal_event_of_their_own() {
        let (crash, _) = replay("crash");
        assert_eq!(
            compact(&crash),
            [init("sess-1"), texts(3, "Starting on it: first I will")]
        );
        let (hang, _) = replay("hang");
        assert_eq!(
            compact(&hang),
            [init("sess-1"), texts(2, "Thinking about it ")]
        );
    }

    #[test]
    fn resume_reports_the_new_session_id_on_done() {
        let text = "Picking up where we left off.";
        let (events, _) = replay("resume");
        assert_eq!(
            compact(&events),
            [
                init("sess-new"),
                texts(3, text),
                done("sess-new", text, (5, 12), 0.0031, 980)
            ]
        );
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let (events, skipped) = replay("garbage");
        assert_eq!(
            compact(&events),
            [
                init("sess-1"),
                texts(2, "Still here."),
                done("sess-1", "Still here.", (3, 5), 0.002, 700)
            ]
        );
        // A non-JSON line, an unknown type, a cut-off line and a JSON array; the compact_boundary is known noise.
        assert_eq!(skipped, 4);
    }

    fn translate_all(lines: &[Value]) -> Vec<Event> {
        let mut translator = Translator::default();
        lines
            .iter()
            .flat_map(|line| only_events(translator.translate(line.to_string().as_bytes())))
            .collect()
    }

    fn delta(text: &str) -> Value {
        json!({"type": "stream_event", "event": {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}}})
    }

    fn assistant(id: &str, text: &str) -> Value {
        json!({"type": "assistant", "message": {"id": id, "content": [{"type": "text", "text": text}]}})
    }

    #[test]
    fn streamed_text_is_never_shown_twice_but_unstreamed_text_is_shown() {
        let start = |id: &str| json!({"type": "stream_event", "event": {"type": "message_start", "message": {"id": id}}});
        let events = translate_all(&[
            start("a"),
            delta("Hi"),
            assistant("a", "Hi"),
            start("b"),
            assistant("b", "Not streamed"),
            delta("No id"),
        ]);
        let texts: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::TextDelta { text } => text.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["Hi", "Not streamed", "No id"]);
        // Partial deltas without any message id still suppress the complete message that follows.
        assert_eq!(translate_all(&[delta("x"), assistant("m", "x")]).len(), 1);
    }

    #[test]
    fn sub_agent_text_is_left_out_but_its_tools_are_shown_under_their_task() {
        let events = translate_all(&[
            json!({"type": "assistant", "parent_tool_use_id": "toolu_task",
            "message": {"content": [{"type": "text", "text": "inner"},
                {"type": "tool_use", "id": "t1", "name": "Grep", "input": {}}]}}),
            json!({"type": "user", "parent_tool_use_id": "toolu_task", "message": {"content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "3 matches"}]}}),
        ]);
        assert_eq!(
            events,
            [
                Event::ToolStart {
                    id: "t1".into(),
                    name: "Grep".into(),
                    input: json!({}),
                    parent_tool_use_id: Some("toolu_task".into()),
                },
                Event::ToolResult {
                    id: "t1".into(),
                    name: Some("Grep".into()),
                    output: "3 matches".into(),
                    is_error: Some(false),
                    parent_tool_use_id: Some("toolu_task".into()),
                    images: Vec::new(),
                }
            ]
        );
    }

    #[test]
    fn what_the_cli_says_of_itself_is_a_live_status_and_noise_is_dropped() {
        let mut translator = Translator::default();
        let mut read = |line: Value| only_events(translator.translate(line.to_string().as_bytes()));
        let retry = read(
            json!({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
            "retry_delay_ms": 1000, "error_status": 529, "error": "overloaded", "uuid": "u", "session_id": "s"}),
        );
        assert!(
            matches!(
                &retry[..],
                [Event::Status {
                    attempt: Some(1),
                    ..
                }]
            ),
            "{retry:?}"
        );
        assert!(!retry[0].is_persisted());
        let limit = read(
            json!({"type": "rate_limit_event", "uuid": "u", "session_id": "s",
            "rate_limit_info": {"status": "allowed_warning", "rateLimitType": "five_hour"}}),
        );
        assert_eq!(limit.len(), 1);
        assert!(read(
            json!({"type": "rate_limit_event", "uuid": "u", "session_id": "s",
            "rate_limit_info": {"status": "allowed"}})
        )
        .is_empty());
        assert!(
            read(json!({"type": "system", "subtype": "hook_response", "hook_name": "x"}))
                .is_empty()
        );
        assert_eq!(translator.skipped(), 0);
        assert!(translator
            .translate(br#"{"type":"system","subtype":"brand_new"}"#)
            .eq(&Translation::Events(Vec::new())));
        assert_eq!(translator.skipped(), 1);
    }

    #[test]
    fn failures_read_well() {
        let result = |fields: Value| {
            let mut line = json!({"type": "result", "session_id": "s"});
            line.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            translate_all(&[line])
        };
        assert_eq!(
            result(json!({"subtype": "error_max_turns", "is_error": true, "num_turns": 7})),
            [Event::error(
                ErrorCode::AgentError,
                "Claude Code stopped after reaching its maximum number of turns (7)."
            )]
        );
        assert_eq!(
            result(
                json!({"subtype": "success", "is_error": true, "result": "Invalid API key · Please run /login"})
            ),
            [Event::error(
                ErrorCode::AgentError,
                "Invalid API key · Please run /login"
            )]
        );
        assert_eq!(
            result(json!({"subtype": "error_during_execution", "is_error": true})),
            [Event::error(
                ErrorCode::AgentError,
                "Claude Code failed during execution."
            )]
        );
    }

    #[test]
    fn the_latest_session_id_wins() {
        let events = translate_all(&[
            json!({"type": "system", "subtype": "init", "session_id": "old"}),
            json!({"type": "result", "subtype": "success", "session_id": "new", "result": "ok"}),
        ]);
        assert_eq!(events[1].sdk_session_id(), Some("new"));
    }

    #[test]
    fn tool_output_blocks_and_plain_user_turns() {
        let events = translate_all(&[
            json!({"type": "user", "message": {"role": "user", "content": "just a prompt"}}),
            json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t",
                "content": [{"type": "text", "text": "a"}, {"type": "document", "source": {}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zz4="}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                        "data": "A".repeat(MAX_IMAGE_BYTES)}}]}]}}),
        ]);
        assert_eq!(
            events,
            [Event::ToolResult {
                id: "t".into(),
                name: None,
                output: format!(
                    "a\n[document omitted]\n{}\n{}\n[image omitted: {} KB, over the {} KB a tool result may carry]",
                    "[image omitted: not an inline PNG, JPEG, GIF or WebP]",
                    "[image omitted: not an inline PNG, JPEG, GIF or WebP]",
                    MAX_IMAGE_BYTES / 1024,
                    MAX_IMAGE_BYTES / 1024
                ),
                is_error: Some(false),
                parent_tool_use_id: None,
                images: vec![Image {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into()
                }],
            }]
        );
    }

    #[test]
    fn huge_outputs_are_truncated_with_a_marker_and_lines_stay_under_the_framer_limit() {
        let big = "x".repeat(MAX_TEXT_BYTES + 1000);
        let cut = truncate(big);
        assert!(
            cut.ends_with("\n…[truncated 1000 bytes]"),
            "{}",
            &cut[cut.len() - 40..]
        );
        // Newlines double when escaped: the bound is on the escaped form.
        let newlines = "\n".repeat(MAX_TEXT_BYTES);
        let events = translate_all(&[
            json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": newlines}]}}),
            json!({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "w", "name": "Write",
                "input": {"content": "y".repeat(2 * MAX_TEXT_BYTES)}}]}}),
        ]);
        for event in &events {
            let line = vf_protocol::AgentLine {
                aseq: Some(1),
                event: event.clone(),
            }
            .to_line();
            assert!(
                line.len() < vf_protocol::framer::MAX_LINE_BYTES,
                "{} bytes",
                line.len()
            );
        }
        assert!(
            matches!(&events[1], Event::ToolStart { input: Value::String(s), .. } if s.contains("[truncated"))
        );
        assert_eq!(truncate("short".into()), "short");
    }
}
