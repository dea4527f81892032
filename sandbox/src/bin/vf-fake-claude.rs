//! `vf-fake-claude`: a stand-in for the `claude` CLI that replays recorded stream-json sessions.
//!
//! It takes the CLI's arguments (`-p`, `--input-format text|stream-json`, `--output-format stream-json`,
//! `--verbose`, `--include-partial-messages`, `--permission-prompt-tool stdio`, `--resume ID`, `--model M`,
//! `--permission-mode P`; anything else is a usage error, exit 2), reads the prompt from stdin (or a positional
//! argument), and prints a session in the CLI's own format, one line at a time.
//!
//! - What it replays: a `[burst:N:SIZE]` tag in the prompt (N text deltas of SIZE bytes, no delay unless a `[delay:MS]` tag asks), else the
//!   fixture named by `VF_FAKE_FIXTURE`, else by a `[fixture:NAME]` tag, else `demo`. Fixtures (`sandbox/fixtures`):
//!   `demo`, `text`, `tool`, `error-result`, `crash`, `resume`, `garbage`, `hang`, `permission`, `permission-twice`,
//!   `question`, `plan`, `cards`, `status`.
//! - Pace: `VF_FAKE_DELAY_MS` between lines (default 40), overridden by a `[delay:MS]` tag.
//! - With `--input-format stream-json` it speaks the Agent SDKs' control protocol: the prompt is the first user
//!   message on stdin; `initialize` and `interrupt` requests are answered (an interrupt ends the turn); with
//!   `--permission-prompt-tool stdio` a fixture's permission is asked with a `can_use_tool` request and the replay
//!   waits for its answer; once the session is printed it waits for stdin to close, like the CLI.
//! - `VF_FAKE_ARGS_LOG=FILE`: appends its arguments to FILE as one JSON array per run, and every control message
//!   it receives as `{"controlRequest": …}` or `{"controlResponse": …}`, so tests can check them.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vf_sandbox::fake_claude::{self, Answer, Step, Vars};

const USAGE: &str =
    "Usage: vf-fake-claude -p [--input-format text|stream-json] --output-format stream-json --verbose \
     [--include-partial-messages] [--permission-prompt-tool stdio] [--resume ID] [--model MODEL] \
     [--permission-mode MODE] [PROMPT]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    log(&json!(argv));
    let args = match fake_claude::parse_args(&argv) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let input = args.stream_input.then(|| {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || read_stdin(sender));
        receiver
    });
    let prompt = match (&args.prompt, &input) {
        (Some(prompt), _) => Some(prompt.clone()),
        (None, Some(input)) => input.iter().find_map(|message| match message {
            Input::Prompt(prompt) => Some(prompt),
            _ => None,
        }),
        (None, None) => {
            let mut prompt = String::new();
            std::io::stdin()
                .read_to_string(&mut prompt)
                .map_err(|e| eprintln!("Error: could not read the prompt from stdin: {e}"))
                .ok()
                .map(|_| prompt)
        }
    };
    let Some(prompt) = prompt.filter(|p| !p.trim().is_empty()) else {
        eprintln!("Error: Input must be provided either through stdin or as a prompt argument when using --print");
        return ExitCode::FAILURE;
    };
    let env_fixture = std::env::var("VF_FAKE_FIXTURE")
        .ok()
        .filter(|f| !f.is_empty());
    let source = match fake_claude::choose(&prompt, env_fixture.as_deref()) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let delay = fake_claude::delay(
        &prompt,
        std::env::var("VF_FAKE_DELAY_MS").ok().as_deref(),
        source,
    );
    let cwd =
        std::env::current_dir().map_or_else(|_| "/".into(), |d| d.to_string_lossy().into_owned());
    let vars = Vars::new(&args, cwd);
    let steps = fake_claude::steps(&fake_claude::text(source), &vars, args.partial)
        .expect("the built-in fixtures are valid");
    let asks = args.permission_prompt
        && input.is_some()
        && args.permission_mode.as_deref() != Some("bypassPermissions");
    let mut player = Player {
        input,
        asks,
        answer: Answer::Allowed(json!({})),
    };
    match player.play(&steps, delay) {
        Ok(code) => code,
        Err(Stop::Interrupted) => {
            print(&json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
                "duration_ms": 0, "num_turns": 1, "session_id": vars.session_id, "total_cost_usd": 0.0,
                "errors": ["Request was aborted."]}).to_string());
            player.wait_for_end();
            ExitCode::SUCCESS
        }
        Err(Stop::Failed(message)) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Appends one JSON line to `VF_FAKE_ARGS_LOG`, if set.
fn log(value: &Value) {
    let Some(path) = std::env::var_os("VF_FAKE_ARGS_LOG") else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{value}\n").as_bytes()));
    if let Err(e) = appended {
        eprintln!("vf-fake-claude: could not log: {e}");
    }
}

/// Prints one line; false when the reader went away (the agent stopped).
fn print(line: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// What stdin brought, in stream-json mode.
enum Input {
    Prompt(String),
    /// A control response's `response` object.
    Response(Value),
    Interrupt,
}

/// Reads stdin in stream-json mode: answers `initialize` and `interrupt` (and refuses other requests) at once, as
/// the CLI does whatever it is doing, and hands the prompt, the control responses and interrupts to the replay.
/// The channel closes with stdin.
fn read_stdin(input: mpsc::Sender<Input>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("Error: stdin line is not JSON: {line}");
            continue;
        };
        let forward = match message["type"].as_str() {
            Some("user") => Input::Prompt(prompt_text(&message["message"]["content"])),
            Some("control_response") => {
                log(&json!({"controlResponse": message}));
                Input::Response(message["response"].clone())
            }
            Some("control_request") => {
                log(&json!({"controlRequest": message}));
                let request_id = &message["request_id"];
                let response = match message["request"]["subtype"].as_str() {
                    Some("initialize") => json!({"subtype": "success", "request_id": request_id,
                        "response": {"commands": [], "output_style": "default", "models": []}}),
                    Some("interrupt") => {
                        json!({"subtype": "success", "request_id": request_id, "response": {}})
                    }
                    other => json!({"subtype": "error", "request_id": request_id,
                        "error": format!("Unsupported control request subtype: {other:?}")}),
                };
                print(&json!({"type": "control_response", "response": response}).to_string());
                if message["request"]["subtype"] != "interrupt" {
                    continue;
                }
                Input::Interrupt
            }
            _ => continue,
        };
        if input.send(forward).is_err() {
            break;
        }
    }
}

/// A user message's text: a string, or its text blocks.
fn prompt_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        blocks => blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Why a replay ended early.
enum Stop {
    Interrupted,
    Failed(String),
}

struct Player {
    /// Stdin's messages in stream-json mode.
    input: Option<mpsc::Receiver<Input>>,
    /// Whether permissions are asked (else they are taken as given).
    asks: bool,
    /// The latest permission's answer.
    answer: Answer,
}

impl Player {
    fn play(&mut self, steps: &[Step], delay: Duration) -> Result<ExitCode, Stop> {
        let mut first = true;
        for step in steps {
            let line = match step {
                Step::Print(line) => line.clone(),
                Step::Branch { allowed, line } => {
                    match fake_claude::branch(line, *allowed, &self.answer) {
                        Some(line) => line,
                        None => continue,
                    }
                }
                Step::Ask(request) if self.asks => {
                    self.answer = self.ask(request)?;
                    continue;
                }
                Step::Ask(_) => {
                    self.answer = Answer::Allowed(json!({}));
                    continue;
                }
                Step::Sleep(pause) => {
                    self.pause(*pause)?;
                    continue;
                }
                Step::Exit(code) => return Ok(ExitCode::from(*code as u8)),
                Step::Hang => loop {
                    self.pause(Duration::from_secs(3600))?;
                },
            };
            if !std::mem::take(&mut first) {
                self.pause(delay)?;
            }
            // A reader that went away (the agent stopped) ends the replay quietly.
            if !print(&line) {
                return Ok(ExitCode::FAILURE);
            }
        }
        self.wait_for_end();
        Ok(ExitCode::SUCCESS)
    }

    /// Sleeps; in stream-json mode an interrupt cuts the sleep short.
    fn pause(&mut self, pause: Duration) -> Result<(), Stop> {
        let until = Instant::now() + pause;
        let Some(input) = &self.input else {
            std::thread::sleep(pause);
            return Ok(());
        };
        loop {
            match input.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Input::Interrupt) => return Err(Stop::Interrupted),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    return Ok(());
                }
            }
        }
    }

    /// Asks for a permission with a `can_use_tool` request and waits for its answer.
    fn ask(&mut self, request: &Value) -> Result<Answer, Stop> {
        let request_id = uuid::Uuid::new_v4().to_string();
        print(
            &json!({"type": "control_request", "request_id": request_id, "request": request})
                .to_string(),
        );
        let input = self.input.as_ref().expect("asks only in stream-json mode");
        loop {
            match input.recv() {
                Ok(Input::Response(response)) if response["request_id"] == request_id.as_str() => {
                    return fake_claude::answer(&response).map_err(Stop::Failed)
                }
                Ok(Input::Interrupt) => return Err(Stop::Interrupted),
                Ok(_) => {}
                Err(mpsc::RecvError) => {
                    return Err(Stop::Failed(
                        "Stream closed before the permission was answered".into(),
                    ))
                }
            }
        }
    }

    /// In stream-json mode the CLI waits for more input until stdin closes.
    fn wait_for_end(&mut self) {
        if let Some(input) = &self.input {
            while input.recv().is_ok() {}
        }
    }
}
