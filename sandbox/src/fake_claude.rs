//! The scripted stand-in for the `claude` CLI: arguments, fixtures and the prompt tags that choose them.
//!
//! The binary `vf-fake-claude` only plays the steps built here.

use std::time::Duration;

use serde_json::{json, Value};

/// The model the fake reports when `--model` is not given.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5-20250929";
/// Pause between printed lines unless `VF_FAKE_DELAY_MS` or a `[delay:MS]` tag says otherwise.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(40);

/// Recorded sessions in the CLI's own stream-json format. Besides CLI lines, a fixture may hold directives only the
/// fake understands (`{"_fake":"sleep","ms":200}`, `{"_fake":"exit","code":1}`, `{"_fake":"hang"}`,
/// `{"_fake":"raw","text":"not json"}`, `{"_fake":"ask","request":{"subtype":"can_use_tool",…}}`), lines printed
/// only after a permission was given or refused (`{"_if":"allowed",…}`, `{"_if":"denied",…}`; a refusal may be
/// quoted as `{{message}}`, an allow's answers to `AskUserQuestion` as `{{answers}}` and the permission mode an
/// approved plan switched to as `{{mode}}`) and placeholders (`{{session_id}}`, `{{new_session_id}}`, `{{cwd}}`, `{{model}}`,
/// `{{permission_mode}}`).
pub const FIXTURES: [(&str, &str); 15] = [
    ("demo", include_str!("../fixtures/demo.jsonl")),
    ("text", include_str!("../fixtures/text.jsonl")),
    ("tool", include_str!("../fixtures/tool.jsonl")),
    (
        "error-result",
        include_str!("../fixtures/error-result.jsonl"),
    ),
    ("crash", include_str!("../fixtures/crash.jsonl")),
    ("resume", include_str!("../fixtures/resume.jsonl")),
    ("garbage", include_str!("../fixtures/garbage.jsonl")),
    ("hang", include_str!("../fixtures/hang.jsonl")),
    // What the real CLI does when `--resume` names a transcript this sandbox does not have: it says
    // "No conversation found" on stderr and exits 1, before any stream-json.
    (
        "resume-missing",
        include_str!("../fixtures/resume-missing.jsonl"),
    ),
    // Asks to run Bash once; the answer says what happened either way.
    ("permission", include_str!("../fixtures/permission.jsonl")),
    // Asks to run Bash twice, one request after the other: the second is what a session rule answers.
    (
        "permission-twice",
        include_str!("../fixtures/permission-twice.jsonl"),
    ),
    // Asks two questions (`AskUserQuestion`: one single choice, one multiple choice) and answers with what the user
    // chose.
    ("question", include_str!("../fixtures/question.jsonl")),
    // Presents a plan (`ExitPlanMode`); approved, it says which mode it now works in; refused, it quotes the
    // user's message.
    ("plan", include_str!("../fixtures/plan.jsonl")),
    // A code block, an Edit, a Bash run with its output, and a Task whose subagent greps and reads an image.
    ("cards", include_str!("../fixtures/cards.jsonl")),
    // What the CLI says of itself while the user waits: an API retry, compacting, a rate-limit warning, each
    // held for two seconds, then the answer.
    ("status", include_str!("../fixtures/status.jsonl")),
];

pub fn fixture(name: &str) -> Option<&'static str> {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The arguments the fake accepts: the ones `vf-agent` passes, parsed as strictly as the real CLI does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub resume: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    /// With `--include-partial-messages`, `stream_event` lines are printed; without it they are left out.
    pub partial: bool,
    /// `--input-format stream-json`: the prompt is the first user message on stdin, and stdin stays open for
    /// control messages until the caller closes it.
    pub stream_input: bool,
    /// `--permission-prompt-tool stdio`: permissions are asked with `can_use_tool` control requests.
    pub permission_prompt: bool,
    /// A prompt given as an argument rather than on stdin.
    pub prompt: Option<String>,
}

/// Parses the argv (without the program name); the error is a usage message, for exit code 2.
pub fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let (mut print, mut verbose, mut format) = (false, false, None);
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or(format!("error: option '{flag} <value>' argument missing"))
        };
        match flag {
            "-p" | "--print" => print = true,
            "--verbose" => verbose = true,
            "--include-partial-messages" => args.partial = true,
            "--output-format" => format = Some(value()?),
            "--input-format" => {
                args.stream_input = match value()?.as_str() {
                    "text" => false,
                    "stream-json" => true,
                    other => {
                        return Err(format!(
                        "error: option '--input-format <format>' argument '{other}' is invalid. \
                             Allowed choices are text, stream-json."
                    ))
                    }
                }
            }
            "--permission-prompt-tool" => {
                let tool = value()?;
                if tool != "stdio" {
                    return Err(format!(
                        "error: vf-fake-claude only asks permissions over stdio, not through {tool:?}"
                    ));
                }
                args.permission_prompt = true;
            }
            "-r" | "--resume" => args.resume = Some(value()?),
            "--model" => args.model = Some(value()?),
            "--permission-mode" => {
                let mode = value()?;
                if !["acceptEdits", "bypassPermissions", "default", "plan"].contains(&mode.as_str())
                {
                    return Err(format!(
                        "error: option '--permission-mode <mode>' argument '{mode}' is invalid"
                    ));
                }
                args.permission_mode = Some(mode);
            }
            flag if flag.starts_with('-') => return Err(format!("error: unknown option '{flag}'")),
            _ => args.prompt = Some(arg.clone()),
        }
    }
    if !print {
        return Err("error: vf-fake-claude only replays print mode (-p)".into());
    }
    if format.as_deref() != Some("stream-json") {
        return Err("error: vf-fake-claude only prints --output-format stream-json".into());
    }
    if !verbose {
        return Err(
            "Error: When using --print, --output-format=stream-json requires --verbose".into(),
        );
    }
    Ok(args)
}

/// What the fake replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Fixture(&'static str),
    /// `count` text deltas of `size` bytes, with no delay: for tests and benchmarks.
    Burst {
        count: usize,
        size: usize,
    },
}

/// The value of a `[name:value]` tag in the prompt.
pub fn tag<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let start = prompt.find(&format!("[{name}:"))? + name.len() + 2;
    let len = prompt[start..].find(']')?;
    Some(&prompt[start..start + len])
}

/// A `[burst:N:SIZE]` tag, else `VF_FAKE_FIXTURE`, else a `[fixture:NAME]` tag, else `demo`.
pub fn choose(prompt: &str, env_fixture: Option<&str>) -> Result<Source, String> {
    if let Some(burst) = tag(prompt, "burst") {
        let parsed = burst
            .split_once(':')
            .and_then(|(n, size)| Some((n.parse().ok()?, size.parse().ok()?)));
        let (count, size) = parsed.ok_or(format!(
            "error: bad tag [burst:{burst}], want [burst:N:SIZE]"
        ))?;
        return Ok(Source::Burst { count, size });
    }
    let name = env_fixture
        .or_else(|| tag(prompt, "fixture"))
        .unwrap_or("demo");
    fixture(name)
        .map(Source::Fixture)
        .ok_or(format!("error: unknown fixture {name:?}"))
}

/// The pause between lines: a `[delay:MS]` tag, else `VF_FAKE_DELAY_MS`, else [`DEFAULT_DELAY`]. A burst writes
/// back to back unless its prompt has a `[delay:MS]` tag (a paced stream, as the browser benchmark sends).
pub fn delay(prompt: &str, env_delay: Option<&str>, source: Source) -> Duration {
    let (env_delay, default) = match source {
        Source::Burst { .. } => (None, Duration::ZERO),
        Source::Fixture(_) => (env_delay, DEFAULT_DELAY),
    };
    tag(prompt, "delay")
        .or(env_delay)
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(default, Duration::from_millis)
}

/// What goes into a fixture's placeholders.
#[derive(Debug, Clone)]
pub struct Vars {
    /// The `--resume` id, or a fresh one: the real CLI keeps the id of the session it resumes.
    pub session_id: String,
    /// Always fresh: a resumed run that reports a new id.
    pub new_session_id: String,
    pub cwd: String,
    pub model: String,
    pub permission_mode: String,
}

impl Vars {
    pub fn new(args: &Args, cwd: String) -> Self {
        let fresh = || uuid::Uuid::new_v4().to_string();
        Vars {
            session_id: args.resume.clone().unwrap_or_else(fresh),
            new_session_id: fresh(),
            cwd,
            model: args.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into()),
            permission_mode: args
                .permission_mode
                .clone()
                .unwrap_or_else(|| "default".into()),
        }
    }

    /// Fills the placeholders of one line; values are JSON-escaped, since placeholders sit inside JSON strings.
    fn fill(&self, line: &str) -> String {
        [
            ("{{session_id}}", &self.session_id),
            ("{{new_session_id}}", &self.new_session_id),
            ("{{cwd}}", &self.cwd),
            ("{{model}}", &self.model),
            ("{{permission_mode}}", &self.permission_mode),
        ]
        .iter()
        .fold(line.to_string(), |line, (placeholder, value)| {
            line.replace(placeholder, &escape(value))
        })
    }
}

/// `value` as it appears inside a JSON string.
fn escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("strings serialize");
    quoted[1..quoted.len() - 1].to_string()
}

/// The line of a `{"_if":…}` branch as printed after `answer`, or None when it is for the other outcome. A denial
/// fills in `{{message}}`; an allow fills in `{{answers}}` (`"question"="answer"`, as the CLI tells Claude) and
/// `{{mode}}` (the mode of a `setMode` permission update, else `unchanged`).
pub fn branch(line: &str, allowed: bool, answer: &Answer) -> Option<String> {
    match (answer, allowed) {
        (Answer::Denied(message), false) => Some(line.replace("{{message}}", &escape(message))),
        (Answer::Allowed(allow), true) => {
            let answers = match allow["updatedInput"]["answers"].as_object() {
                Some(answers) => answers
                    .iter()
                    .map(|(question, answer)| {
                        format!(
                            "{}={}",
                            json!(question),
                            json!(answer.as_str().unwrap_or(""))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "(none)".to_string(),
            };
            let mode = allow["updatedPermissions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|update| update["type"] == "setMode")
                .and_then(|update| update["mode"].as_str())
                .unwrap_or("unchanged");
            Some(
                line.replace("{{answers}}", &escape(&answers))
                    .replace("{{mode}}", &escape(mode)),
            )
        }
        _ => None,
    }
}

/// The caller's answer to a `can_use_tool` request: allowed with its `allow` body (`updatedInput`, maybe
/// `updatedPermissions`), or denied with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allowed(Value),
    Denied(String),
}

/// Reads a control response's `response` to a permission request as strictly as the SDKs write it: allow with an
/// object `updatedInput`, deny with a string `message`. An error response refuses the call.
pub fn answer(response: &Value) -> Result<Answer, String> {
    if response["subtype"] == "error" {
        return Ok(Answer::Denied(
            response["error"].as_str().unwrap_or("error").to_string(),
        ));
    }
    let body = &response["response"];
    match body["behavior"].as_str() {
        Some("allow") if body["updatedInput"].is_object() => Ok(Answer::Allowed(body.clone())),
        Some("deny") => body["message"]
            .as_str()
            .map(|message| Answer::Denied(message.to_string()))
            .ok_or(format!("a deny without a message: {response}")),
        _ => Err(format!("not a permission answer: {response}")),
    }
}

/// One thing the fake does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Print(String),
    Sleep(Duration),
    Exit(i32),
    Hang,
    /// Asks for a permission (the `can_use_tool` request's body): with `--permission-prompt-tool stdio` over the
    /// control protocol; without it (or in `bypassPermissions` mode) it is taken as given.
    Ask(Value),
    /// Printed only if the latest permission was given (`allowed`) or refused (not `allowed`).
    Branch {
        allowed: bool,
        line: String,
    },
}

/// The text of a source: a fixture's, or a generated burst.
pub fn text(source: Source) -> String {
    match source {
        Source::Fixture(text) => text.to_string(),
        Source::Burst { count, size } => burst(count, size),
    }
}

/// Turns a fixture's text into steps. With `partial` false, `stream_event` lines are left out, as the real CLI
/// does without `--include-partial-messages`.
pub fn steps(text: &str, vars: &Vars, partial: bool) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let line = vars.fill(line);
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("fixture line is not JSON ({e}): {line}"))?;
        let step = match value["_fake"].as_str() {
            None if !partial && value["type"] == "stream_event" => continue,
            None => match value["_if"].as_str() {
                None => Step::Print(line),
                Some(when @ ("allowed" | "denied")) => {
                    let mut value = value.clone();
                    value.as_object_mut().map(|line| line.remove("_if"));
                    Step::Branch {
                        allowed: when == "allowed",
                        line: value.to_string(),
                    }
                }
                Some(other) => return Err(format!("unknown fixture condition {other:?}")),
            },
            Some("ask") => Step::Ask(value["request"].clone()),
            Some("sleep") => Step::Sleep(Duration::from_millis(value["ms"].as_u64().unwrap_or(0))),
            Some("exit") => Step::Exit(value["code"].as_i64().unwrap_or(1) as i32),
            Some("hang") => Step::Hang,
            Some("raw") => Step::Print(value["text"].as_str().unwrap_or_default().to_string()),
            Some(other) => return Err(format!("unknown fixture directive {other:?}")),
        };
        steps.push(step);
    }
    Ok(steps)
}

/// A synthetic session: init, `count` text deltas of `size` bytes (each starting with its zero-padded index, so
/// the concatenation shows order and loss), the complete message, and a success result holding all the text.
fn burst(count: usize, size: usize) -> String {
    // The init line is the `text` fixture's, so that there is one source of truth for its shape.
    let init = fixture("text")
        .and_then(|t| t.lines().next())
        .expect("the text fixture starts with init");
    let piece = |i: usize| {
        let mut piece = format!("{i:07}:");
        piece.extend(std::iter::repeat_n('x', size.saturating_sub(piece.len())));
        piece.truncate(size);
        piece
    };
    let all: String = (0..count).map(piece).collect();
    let session = "{{session_id}}";
    let mut lines = vec![init.to_string()];
    let mut line = |value: Value| lines.push(value.to_string());
    line(
        json!({"type": "stream_event", "session_id": session, "parent_tool_use_id": null,
        "event": {"type": "message_start", "message": {"id": "msg_burst", "type": "message", "role": "assistant",
        "model": "{{model}}", "content": []}}}),
    );
    for i in 0..count {
        line(
            json!({"type": "stream_event", "session_id": session, "parent_tool_use_id": null,
            "event": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece(i)}}}),
        );
    }
    line(
        json!({"type": "assistant", "session_id": session, "parent_tool_use_id": null,
        "message": {"id": "msg_burst", "type": "message", "role": "assistant", "model": "{{model}}",
        "content": [{"type": "text", "text": all}]}}),
    );
    line(
        json!({"type": "stream_event", "session_id": session, "parent_tool_use_id": null,
        "event": {"type": "message_stop"}}),
    );
    line(
        json!({"type": "result", "subtype": "success", "is_error": false, "duration_ms": 1, "num_turns": 1,
        "result": all, "session_id": session, "total_cost_usd": 0.0,
        "usage": {"input_tokens": 1, "output_tokens": count}}),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &str) -> Vec<String> {
        args.split_whitespace().map(String::from).collect()
    }

    fn vars() -> Vars {
        Vars::new(&Args::default(), "/w".into())
    }

    #[test]
    fn arguments_are_parsed_like_the_real_cli() {
        let base = "-p --output-format stream-json --verbose";
        let args = parse_args(&argv(&format!(
            "{base} --include-partial-messages --resume s1 --model=opus --permission-mode plan"
        )))
        .unwrap();
        assert_eq!(
            args,
            Args {
                resume: Some("s1".into()),
                model: Some("opus".into()),
                permission_mode: Some("plan".into()),
                partial: true,
                prompt: None,
                ..Args::default()
            }
        );
        let sdk = parse_args(&argv(
            "-p --input-format stream-json --output-format stream-json --verbose --permission-prompt-tool stdio",
        ))
        .unwrap();
        assert!(sdk.stream_input && sdk.permission_prompt);
        assert!(
            !parse_args(&argv(&format!("{base} --input-format text")))
                .unwrap()
                .stream_input
        );
        assert_eq!(
            parse_args(&argv(&format!("{base} hello")))
                .unwrap()
                .prompt
                .as_deref(),
            Some("hello")
        );
        for bad in [
            format!("{base} --bogus"),
            format!("{base} --permission-mode yolo"),
            format!("{base} --resume"),
            format!("{base} --input-format yaml"),
            format!("{base} --permission-prompt-tool mcp__approve"),
            format!("{base} --permission-prompt-tool"),
            "-p --output-format stream-json".into(),
            "--output-format stream-json --verbose".into(),
            "-p --output-format text --verbose".into(),
        ] {
            assert!(parse_args(&argv(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_fixture_is_valid_and_ends_as_documented() {
        for (name, text) in FIXTURES {
            let steps = steps(text, &vars(), true).unwrap_or_else(|e| panic!("{name}: {e}"));
            let last = steps.last().unwrap();
            match name {
                "crash" | "resume-missing" => assert_eq!(last, &Step::Exit(1)),
                "hang" => assert_eq!(last, &Step::Hang),
                _ => assert!(
                    matches!(last, Step::Print(l) | Step::Branch { line: l, .. } if l.contains(r#""type":"result""#)),
                    "{name}"
                ),
            }
            // Every answer ends with a result, and only a refusal's lines may quote it.
            for allowed in [true, false] {
                let results = steps
                    .iter()
                    .filter(|s| match s {
                        Step::Print(l) => l.contains(r#""type":"result""#),
                        Step::Branch { allowed: a, line } => {
                            *a == allowed && line.contains(r#""type":"result""#)
                        }
                        _ => false,
                    })
                    .count();
                assert!(results <= 1, "{name}");
            }
            for step in &steps {
                let allowed = Answer::Allowed(json!({"updatedInput": {}}));
                let denied = Answer::Denied("m".into());
                match step {
                    Step::Print(l) => assert!(!l.contains("{{"), "{name}: {l}"),
                    Step::Branch { allowed: a, line } => {
                        let answer = if *a { &allowed } else { &denied };
                        let filled = branch(line, *a, answer).unwrap();
                        assert!(!filled.contains("{{"), "{name}: {line}");
                    }
                    Step::Ask(request) => {
                        assert_eq!(request["subtype"], "can_use_tool", "{name}");
                        assert!(request["tool_name"].is_string() && request["input"].is_object());
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_permission_fixtures_ask_as_documented() {
        let asks = |name| {
            steps(fixture(name).unwrap(), &vars(), false)
                .unwrap()
                .into_iter()
                .filter(|s| matches!(s, Step::Ask(_)))
                .count()
        };
        assert_eq!(
            [
                asks("permission"),
                asks("permission-twice"),
                asks("demo"),
                asks("question"),
                asks("plan")
            ],
            [1, 2, 1, 1, 1]
        );
        let line = steps(fixture("permission").unwrap(), &vars(), false)
            .unwrap()
            .into_iter()
            .find_map(|s| match s {
                Step::Branch {
                    allowed: false,
                    line,
                } => Some(line),
                _ => None,
            })
            .unwrap();
        assert!(!line.contains("_if"));
        let denied = Answer::Denied("a \"quoted\" no".into());
        assert_eq!(branch(&line, true, &denied), None, "not for a denial");
        let filled: Value = serde_json::from_str(&branch(&line, false, &denied).unwrap()).unwrap();
        assert_eq!(
            filled["message"]["content"][0]["content"],
            "a \"quoted\" no"
        );
        assert_eq!(filled["message"]["content"][0]["is_error"], true);
    }

    #[test]
    fn an_allow_fills_in_the_answers_and_the_mode() {
        let line = r#"{"text":"You answered: {{answers}} in {{mode}} mode"}"#;
        let allow = Answer::Allowed(json!({"behavior": "allow",
            "updatedInput": {"questions": [], "answers": {"Which \"one\"?": "A, B"}},
            "updatedPermissions": [{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]}));
        let filled: Value = serde_json::from_str(&branch(line, true, &allow).unwrap()).unwrap();
        assert_eq!(
            filled["text"],
            r#"You answered: "Which \"one\"?"="A, B" in acceptEdits mode"#
        );
        let bare = Answer::Allowed(json!({"behavior": "allow", "updatedInput": {}}));
        let filled: Value = serde_json::from_str(&branch(line, true, &bare).unwrap()).unwrap();
        assert_eq!(filled["text"], "You answered: (none) in unchanged mode");
        assert_eq!(branch(line, false, &bare), None);
    }

    #[test]
    fn permission_answers_are_read_strictly() {
        let success =
            |body: Value| json!({"subtype": "success", "request_id": "r", "response": body});
        assert_eq!(
            answer(&success(
                json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
            )),
            Ok(Answer::Allowed(
                json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
            ))
        );
        assert_eq!(
            answer(&success(json!({"behavior": "deny", "message": "no"}))),
            Ok(Answer::Denied("no".into()))
        );
        assert_eq!(
            answer(&json!({"subtype": "error", "request_id": "r", "error": "boom"})),
            Ok(Answer::Denied("boom".into()))
        );
        for bad in [
            json!({"behavior": "allow"}),
            json!({"behavior": "deny"}),
            json!({"behavior": "maybe"}),
        ] {
            assert!(answer(&success(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn selection_and_pace() {
        assert_eq!(
            choose("hi", None),
            Ok(Source::Fixture(fixture("demo").unwrap()))
        );
        assert_eq!(
            choose("[fixture:text] hi", None),
            Ok(Source::Fixture(fixture("text").unwrap()))
        );
        assert_eq!(
            choose("[fixture:text]", Some("crash")),
            Ok(Source::Fixture(fixture("crash").unwrap()))
        );
        assert_eq!(
            choose("[burst:3:10]", Some("crash")),
            Ok(Source::Burst { count: 3, size: 10 })
        );
        assert!(choose("[fixture:nope]", None).is_err());
        assert!(choose("[burst:3]", None).is_err());
        let demo = Source::Fixture(fixture("demo").unwrap());
        assert_eq!(delay("x", None, demo), DEFAULT_DELAY);
        assert_eq!(delay("x", Some("5"), demo), Duration::from_millis(5));
        assert_eq!(
            delay("[delay:7]", Some("5"), demo),
            Duration::from_millis(7)
        );
        let burst = Source::Burst { count: 1, size: 1 };
        assert_eq!(delay("x", Some("5"), burst), Duration::ZERO);
        assert_eq!(delay("[delay:7]", None, burst), Duration::from_millis(7));
    }

    #[test]
    fn without_partial_messages_stream_events_are_left_out() {
        let text = fixture("text").unwrap();
        let partial = steps(text, &vars(), true).unwrap();
        let complete = steps(text, &vars(), false).unwrap();
        assert_eq!(complete.len(), 3, "init, assistant, result");
        assert!(partial.len() > complete.len());
    }

    #[test]
    fn placeholders_are_filled_as_json() {
        let vars = Vars {
            cwd: "/a \"quoted\" dir".into(),
            ..vars()
        };
        let steps = steps(fixture("text").unwrap(), &vars, false).unwrap();
        let Step::Print(init) = &steps[0] else {
            panic!()
        };
        let init: Value = serde_json::from_str(init).unwrap();
        assert_eq!(init["cwd"], "/a \"quoted\" dir");
        assert_eq!(init["model"], DEFAULT_MODEL);
        assert_eq!(init["session_id"], vars.session_id.as_str());
    }

    #[test]
    fn bursts_are_deterministic() {
        let steps = steps(
            &text(Source::Burst {
                count: 12,
                size: 10,
            }),
            &vars(),
            true,
        )
        .unwrap();
        let lines: Vec<Value> = steps
            .iter()
            .map(|s| match s {
                Step::Print(l) => serde_json::from_str(l).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        let deltas: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["event"]["delta"]["text"].as_str())
            .collect();
        assert_eq!(deltas.len(), 12);
        assert_eq!(deltas[0], "0000000:xx");
        assert_eq!(deltas[11], "0000011:xx");
        assert_eq!(lines.last().unwrap()["result"], deltas.concat());
    }
}
