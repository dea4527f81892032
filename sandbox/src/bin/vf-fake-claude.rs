//! `vf-fake-claude`: a stand-in for the `claude` CLI that replays recorded stream-json sessions.
//!
//! It takes the CLI's arguments (`-p`, `--output-format stream-json`, `--verbose`, `--include-partial-messages`,
//! `--resume ID`, `--model M`, `--permission-mode P`; anything else is a usage error, exit 2), reads the prompt
//! from stdin (or a positional argument), and prints a session in the CLI's own format, one line at a time.
//!
//! - What it replays: a `[burst:N:SIZE]` tag in the prompt (N text deltas of SIZE bytes, no delay), else the
//!   fixture named by `VF_FAKE_FIXTURE`, else by a `[fixture:NAME]` tag, else `demo`. Fixtures (`sandbox/fixtures`):
//!   `demo`, `text`, `tool`, `error-result`, `crash`, `resume`, `garbage`, `hang`.
//! - Pace: `VF_FAKE_DELAY_MS` between lines (default 40), overridden by a `[delay:MS]` tag.
//! - `VF_FAKE_ARGS_LOG=FILE`: appends its arguments to FILE as one JSON array per run, so tests can check them.

use std::io::{Read, Write};
use std::process::ExitCode;

use vf_sandbox::fake_claude::{self, Step, Vars};

const USAGE: &str =
    "Usage: vf-fake-claude -p --output-format stream-json --verbose [--include-partial-messages] \
                     [--resume ID] [--model MODEL] [--permission-mode MODE] [PROMPT]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(log) = std::env::var_os("VF_FAKE_ARGS_LOG") {
        let line = serde_json::to_string(&argv).expect("strings serialize") + "\n";
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = appended {
            eprintln!("vf-fake-claude: could not log the arguments: {e}");
        }
    }
    let args = match fake_claude::parse_args(&argv) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let prompt = match &args.prompt {
        Some(prompt) => prompt.clone(),
        None => {
            let mut prompt = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut prompt) {
                eprintln!("Error: could not read the prompt from stdin: {e}");
                return ExitCode::FAILURE;
            }
            prompt
        }
    };
    if prompt.trim().is_empty() {
        eprintln!("Error: Input must be provided either through stdin or as a prompt argument when using --print");
        return ExitCode::FAILURE;
    }
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
    let steps = fake_claude::steps(
        &fake_claude::text(source),
        &Vars::new(&args, cwd),
        args.partial,
    )
    .expect("the built-in fixtures are valid");
    play(&steps, delay)
}

fn play(steps: &[Step], delay: std::time::Duration) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    for step in steps {
        match step {
            Step::Print(line) => {
                if !std::mem::take(&mut first) {
                    std::thread::sleep(delay);
                }
                // A reader that went away (the agent stopped) ends the replay quietly.
                if writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
            }
            Step::Sleep(pause) => std::thread::sleep(*pause),
            Step::Exit(code) => return ExitCode::from(*code as u8),
            Step::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
        }
    }
    ExitCode::SUCCESS
}
