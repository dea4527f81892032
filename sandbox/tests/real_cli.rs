//! The real Claude Code CLI (`node_modules/.bin/claude`, pinned in package.json) accepts what vf-agent passes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;
use vf_protocol::api::{Autonomy, SessionMode};
use vf_sandbox::agent::claude::{self, Turn};
use vf_sandbox::agent::control;

/// A run's limit. The CLI rejects a bad command line at once, but some checks (a `--resume` id) come after its
/// start-up, which without internet spends about 20 s retrying its network calls; then it is killed.
const DEADLINE: Duration = Duration::from_secs(60);

/// Set by `make test`, which installs the CLI: there a missing CLI is a failure, not a skip.
const REQUIRE: &str = "VF_REQUIRE_REAL_CLI";

/// The installed CLI, or `None` after saying (past the test harness's capture) why the test does not run. Panics
/// instead when `VF_REQUIRE_REAL_CLI=1`, so that a run meant to check the real parser cannot pass without it.
fn installed_cli() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/claude");
    if bin.exists() {
        return Some(bin);
    }
    let why = format!(
        "{} is not installed (`npm ci` installs the pinned @anthropic-ai/claude-code)",
        bin.display()
    );
    assert!(
        std::env::var_os(REQUIRE).is_none_or(|v| v != "1"),
        "{REQUIRE}=1 and {why}"
    );
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    None
}

/// The id of our `initialize` request.
const INITIALIZE_ID: &str = "vf-1";

/// What one run of the CLI showed.
#[derive(Debug)]
enum Verdict {
    /// It rejected its command line; the message.
    Refused(String),
    /// It started a session with these arguments (its stream-json `init` line), in this permission mode, having
    /// answered our `initialize` control request (with approvals) or not.
    Started {
        permission_mode: String,
        initialized: bool,
    },
    /// It ended without starting, not over its arguments (authentication, network, an unknown `--resume` id).
    Failed(String),
    /// Still starting at the deadline, long past the parser.
    Undecided,
}

/// How the CLI reports a bad command line: its parser's `error: unknown option '--x'` or `error: option
/// '--permission-mode <mode>' argument 'x' is invalid…`, and its own checks (`Error: When using --print,
/// --output-format=stream-json requires --verbose`). Authentication and network failures read otherwise
/// (`API Error: …`, `Invalid API key…`).
fn is_argument_error(message: &str) -> bool {
    let message = message.trim().to_ascii_lowercase();
    message.starts_with("error:")
        && ["option", "argument", "--"]
            .iter()
            .any(|word| message.contains(word))
}

/// Runs the CLI exactly as vf-agent does (`claude::command`: its arguments, the prompt on stdin, with approvals
/// as the control protocol's `initialize` request and a stream-json user message), plus `extra` arguments, with a
/// dummy token and throwaway home, config and temp directories; kills it once it has shown a verdict.
async fn run(bin: &Path, turn: &Turn, extra: &[&str]) -> Verdict {
    let dir = std::env::temp_dir().join(format!("vf-real-cli-{}", uuid::Uuid::new_v4()));
    for sub in ["workspace", "home", "config", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut command = claude::command(bin.to_str().unwrap(), turn);
    command
        .args(extra)
        .current_dir(dir.join("workspace"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("CLAUDE_CONFIG_DIR", dir.join("config"))
        .env("TMPDIR", dir.join("tmp"))
        .env("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-not-a-real-token")
        // As the Worker sets it for every agent; it also lets `bypassPermissions` run as root.
        .env("IS_SANDBOX", "1")
        .stderr(Stdio::piped());
    let mut cli = command.spawn().expect("the CLI starts");
    let mut stdin = cli.stdin.take().unwrap();
    let input = if turn.approvals {
        control::request(INITIALIZE_ID, control::initialize())
            + &control::user_message("Say hello.")
    } else {
        "Say hello.".to_string()
    };
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let mut stderr = cli.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(cli.stdout.take().unwrap()).lines();
    let mut messages = Vec::new();
    let mut initialized = false;
    let started = timeout(DEADLINE, async {
        while let Ok(Some(line)) = stdout.next_line().await {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                messages.push(line);
                continue;
            };
            match (value["type"].as_str(), value["subtype"].as_str()) {
                (Some("control_response"), _) => {
                    let response = &value["response"];
                    initialized |=
                        response["request_id"] == INITIALIZE_ID && response["subtype"] == "success";
                }
                (Some("system"), Some("init")) => {
                    return Some(value["permissionMode"].as_str().unwrap_or("").to_string())
                }
                (Some("result"), _) => messages.extend(
                    value["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain([&value["result"]])
                        .filter_map(|m| m.as_str().map(String::from)),
                ),
                _ => {}
            }
        }
        None
    })
    .await;
    let _ = cli.kill().await;
    let stderr = timeout(Duration::from_secs(5), stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    for line in stderr.lines() {
        if !messages.iter().any(|m| m == line) {
            messages.push(line.to_string());
        }
    }
    if let Some(refusal) = messages.iter().find(|m| is_argument_error(m)) {
        return Verdict::Refused(refusal.trim().to_string());
    }
    match started {
        Ok(Some(permission_mode)) => Verdict::Started {
            permission_mode,
            initialized,
        },
        Ok(None) => Verdict::Failed(messages.join(" | ")),
        Err(_) => Verdict::Undecided,
    }
}

#[tokio::test]
async fn every_command_line_vf_agent_builds_passes_the_real_parser() {
    let Some(bin) = installed_cli() else { return };
    let agent = |autonomy| Turn {
        autonomy: Some(autonomy),
        ..Turn::default()
    };
    let approvals = |turn: Turn| Turn {
        approvals: true,
        ..turn
    };
    let resume = Turn {
        resume: Some("6f1d6a2e-4b1c-4d2e-8f3a-9b8c7d6e5f40".into()),
        ..Turn::default()
    };
    let turns = [
        Turn::default(),
        Turn {
            mode: SessionMode::Plan,
            ..Turn::default()
        },
        agent(Autonomy::Conservative),
        agent(Autonomy::Standard),
        agent(Autonomy::Autonomous),
        Turn {
            model: Some("sonnet".into()),
            ..agent(Autonomy::Standard)
        },
        // A session id in the CLI's own format; no such session exists here, so the CLI ends after taking it.
        resume.clone(),
        // The DO path: the SDK's control protocol, for tool approvals.
        approvals(Turn::default()),
        approvals(Turn {
            mode: SessionMode::Plan,
            ..Turn::default()
        }),
        approvals(agent(Autonomy::Conservative)),
        approvals(Turn {
            model: Some("sonnet".into()),
            ..agent(Autonomy::Standard)
        }),
        approvals(resume),
    ];
    let verdicts = join_all(turns.iter().map(|turn| run(&bin, turn, &[]))).await;
    for (turn, verdict) in turns.iter().zip(&verdicts) {
        let args = claude::args(turn).join(" ");
        match verdict {
            Verdict::Refused(message) => panic!("the CLI refused `{args}`: {message}"),
            Verdict::Started {
                permission_mode,
                initialized,
            } => {
                eprintln!("claude {args}\n  started a session in mode {permission_mode}");
                assert_eq!(
                    *initialized, turn.approvals,
                    "`{args}` answered our initialize request: {initialized}"
                );
                if let Some(asked) = claude::permission_mode(turn.mode, turn.autonomy) {
                    assert_eq!(permission_mode, asked, "`{args}` started in another mode");
                }
            }
            Verdict::Failed(reason) => {
                eprintln!("claude {args}\n  ended, not over its arguments: {reason}")
            }
            Verdict::Undecided => {
                eprintln!("claude {args}\n  was still starting after {DEADLINE:?}")
            }
        }
    }
}

#[tokio::test]
async fn the_real_parser_refuses_an_unknown_option() {
    let Some(bin) = installed_cli() else { return };
    let verdict = run(&bin, &Turn::default(), &["--vf-no-such-option"]).await;
    assert!(
        matches!(&verdict, Verdict::Refused(m) if m.contains("--vf-no-such-option")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn the_real_parser_refuses_an_unknown_permission_mode() {
    let Some(bin) = installed_cli() else { return };
    let verdict = run(&bin, &Turn::default(), &["--permission-mode", "careful"]).await;
    assert!(
        matches!(&verdict, Verdict::Refused(m) if m.contains("careful")),
        "{verdict:?}"
    );
}

/// The checks above are only about production if the image runs the version they ran.
#[test]
fn the_image_installs_the_version_under_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("package.json")).unwrap()).unwrap();
    let pinned = package["devDependencies"]["@anthropic-ai/claude-code"]
        .as_str()
        .expect("package.json pins @anthropic-ai/claude-code");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG CLAUDE_CODE_VERSION="))
        .expect("the Dockerfile pins CLAUDE_CODE_VERSION");
    assert_eq!(image, pinned);
}
