//! The `vf-agent` runner: one Claude Code turn, from the pending query to exactly one terminal event.
//!
//! It reads the pending query, runs the CLI, translates its output and enforces the timeouts.

pub mod approvals;
pub mod claude;
pub mod control;
pub mod controller;
pub mod sink;
pub mod synthetic;
pub mod translate;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{sleep_until, timeout, Instant};
use vf_protocol::agent_env::{AgentEnv, Ignored};
use vf_protocol::api::{Autonomy, PendingQuery, SessionMode};
use vf_protocol::{ErrorCode, Event};

use crate::lines::Lines;
use crate::Error;
use approvals::Approvals;
use claude::Turn;
use controller::Controller;
use sink::{Output, Sink};
use synthetic::Synthetic;
use translate::{Translation, Translator};

/// A single CLI line may be far larger than an agent line (a tool result carrying a whole file): it is read whole
/// and truncated by the translator, up to this bound.
const MAX_CLI_LINE_BYTES: usize = 64 * 1024 * 1024;
/// How long the CLI may take to exit after its result (it is still saving the transcript `--resume` needs), or to
/// report its exit status after closing its output.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long a CLI that was stopped by a signal waits for the same stop to reach us.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// How long a CLI asked to interrupt its turn may take to exit (it saves the transcript `--resume` needs) before
/// it is killed. Below the sandbox's SIGKILL grace (`processes::KILL_GRACE`, 2 s), which leaves time for our
/// `cancelled` line: when the sandbox stops the whole group, the CLI gets the SIGTERM too and exits at once.
const INTERRUPT_GRACE: Duration = Duration::from_millis(1_500);

/// The runner's configuration: what the DO tells it ([`AgentEnv`]) and the sandbox's own `VF_*` knobs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `VF_QUERY_FILE`: the pending-query JSON, deleted once read.
    pub query_file: Option<PathBuf>,
    /// `VF_CALLBACK_URL` and `VF_STREAM_JWT`; without a URL, lines go to stdout.
    pub callback: Option<(String, String)>,
    /// `VF_APPROVALS_URL` and `VF_STREAM_JWT`: where the user's decisions on tool calls are asked for. Without
    /// it (the legacy path) the CLI runs as plain `-p`, with no permission prompts.
    pub approvals: Option<(String, String)>,
    /// `VF_SDK_SESSION_ID`, else the query's `sdkSessionId`: Claude's session to resume.
    pub sdk_session_id: Option<String>,
    /// `VF_SESSION_MODE`, `VF_AUTONOMY_MODE`, `VF_MODEL`.
    pub mode: SessionMode,
    pub autonomy: Option<Autonomy>,
    pub model: Option<String>,
    /// `VF_CLAUDE_BIN`, default `claude`.
    pub claude_bin: String,
    /// `VF_MAX_RUNTIME_SECS` (3600), `VF_IDLE_TIMEOUT_SECS` (600), `VF_HEARTBEAT_SECS` (10); fractions allowed.
    pub max_runtime: Duration,
    pub idle_timeout: Duration,
    pub heartbeat: Duration,
    /// How long a broken callback is retried (`VF_CALLBACK_RETRY_SECS`): long enough for a Worker restart.
    pub reconnect_window: Duration,
    /// How long the DO may hear nothing from a callback connection before the agent abandons it for a new one
    /// (`VF_CALLBACK_STALL_SECS`, 30): above the heartbeat interval, below the DO's watchdog window (60 s).
    pub stall_after: Duration,
    /// `VF_SYNTHETIC=N:SIZE:INTERVAL_US`: no CLI; N stamped text deltas for the benchmark (see [`synthetic`]).
    pub synthetic: Option<Synthetic>,
}

impl AgentConfig {
    /// The DO's part ([`AgentEnv`], the contract) plus the sandbox's own knobs.
    pub fn from_env() -> Self {
        let (contract, ignored) = AgentEnv::from_env(|name| std::env::var(name).ok());
        for Ignored { name, value } in ignored {
            eprintln!("vf-agent: ignoring {name}={value:?}: not a known value");
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secs = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0))
                .map_or(Duration::from_secs(default), Duration::from_secs_f64)
        };
        AgentConfig {
            query_file: contract.query_file.map(PathBuf::from),
            callback: contract
                .callback_url
                .map(|url| (url, contract.stream_jwt.clone().unwrap_or_default())),
            approvals: contract
                .approvals_url
                .map(|url| (url, contract.stream_jwt.unwrap_or_default())),
            sdk_session_id: contract.sdk_session_id,
            mode: contract.mode,
            autonomy: contract.autonomy,
            model: contract.model,
            claude_bin: var("VF_CLAUDE_BIN").unwrap_or_else(|| "claude".into()),
            max_runtime: secs("VF_MAX_RUNTIME_SECS", 3600),
            idle_timeout: secs("VF_IDLE_TIMEOUT_SECS", 600),
            heartbeat: secs("VF_HEARTBEAT_SECS", 10),
            reconnect_window: secs("VF_CALLBACK_RETRY_SECS", 120),
            stall_after: secs("VF_CALLBACK_STALL_SECS", 30),
            synthetic: var("VF_SYNTHETIC").and_then(|v| {
                v.parse()
                    .map_err(|e| eprintln!("vf-agent: ignoring VF_SYNTHETIC: {e}"))
                    .ok()
            }),
        }
    }
}

/// Runs one turn; the process's exit status is whether every line reached its destination.
pub async fn run(config: AgentConfig) -> Result<(), Error> {
    let sink = match &config.callback {
        Some((url, jwt)) => Sink::callback(url, jwt, config.reconnect_window, config.stall_after)?,
        None => Sink::stdout(),
    };
    let mut output = Output::new(sink);
    let driven = match config.synthetic {
        Some(spec) => drive_synthetic(&config, spec, &mut output).await,
        None => drive(&config, &mut output).await,
    };
    // The answer is complete: close the stream first, so the user is not kept waiting on the CLI's exit.
    let closed = output.close().await;
    // A broken callback surfaces in both; the close error says why (the HTTP status), so it wins.
    let cli = match driven {
        Ok(cli) => cli,
        Err(e) => return closed.and(Err(e)),
    };
    if let Some(cli) = cli {
        reap(cli).await;
    }
    closed
}

/// Produces the run's events, ending with exactly one terminal event unless the output itself broke. Returns the
/// CLI if it answered and may still be exiting.
async fn drive(config: &AgentConfig, output: &mut Output) -> Result<Option<Child>, Error> {
    let mut stop = StopSignals::new()?;
    let query = match read_query(config.query_file.as_deref()) {
        Ok(query) => query,
        Err(message) => {
            output
                .emit(Event::error(ErrorCode::DispatchFailed, message))
                .await?;
            return Ok(None);
        }
    };
    let turn = Turn {
        resume: config.sdk_session_id.clone().or(query.sdk_session_id),
        model: config.model.clone(),
        mode: config.mode,
        autonomy: config.autonomy,
        approvals: config.approvals.is_some(),
    };
    let approvals = match &config.approvals {
        Some((url, jwt)) => Some(Approvals::new(url, jwt)?),
        None => None,
    };
    let mut cli = match claude::command(&config.claude_bin, &turn).spawn() {
        Ok(cli) => cli,
        Err(e) => {
            let message = format!("could not start Claude Code ({}): {e}", config.claude_bin);
            output
                .emit(Event::error(ErrorCode::AgentCrashed, message))
                .await?;
            return Ok(None);
        }
    };
    let stdin = cli.stdin.take().expect("stdin is piped");
    let mut controller = Controller::start(
        stdin,
        &query.prompt,
        approvals,
        claude::mode_after_plan(turn.autonomy),
    );
    let mut lines = Lines::new(
        cli.stdout.take().expect("stdout is piped"),
        MAX_CLI_LINE_BYTES,
    );
    let mut translator = Translator::default();
    let deadline = Instant::now() + config.max_runtime;
    let mut idle_until = Instant::now() + config.idle_timeout;

    let failure = loop {
        tokio::select! {
            biased;
            _ = stop.recv() => break Event::error(ErrorCode::Cancelled, "stopped"),
            _ = sleep_until(deadline) => break Event::error(
                ErrorCode::Timeout,
                format!("Claude Code ran past the {} s limit and was stopped", config.max_runtime.as_secs_f64()),
            ),
            // Waiting for a person is not a hang.
            _ = sleep_until(idle_until), if !controller.waiting() => break Event::error(
                ErrorCode::Timeout,
                format!("Claude Code was silent for {} s and was stopped", config.idle_timeout.as_secs_f64()),
            ),
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    idle_until = Instant::now() + config.idle_timeout;
                    match translator.translate(&line) {
                        Translation::Events(events) => {
                            for event in events {
                                output.emit(event).await?;
                            }
                        }
                        Translation::Control(message) => {
                            if let Some(confirmation) = controller.incoming(message) {
                                output.emit(confirmation).await?;
                            }
                        }
                    }
                    if output.finished() {
                        log_skipped(&translator);
                        // Dropping the controller ends the CLI's input, which it waits for before exiting.
                        return Ok(Some(cli));
                    }
                }
                Some(Err(e)) => {
                    translator.skip();
                    eprintln!("vf-agent: skipped a CLI line: {e}");
                }
                None => {
                    let status = timeout(EXIT_GRACE, cli.wait()).await.ok().and_then(Result::ok);
                    // Stopping our group signals the CLI and us at once, and its EOF can overtake our own
                    // signal: a CLI ended by SIGTERM/SIGINT gets a moment for ours to arrive.
                    let asked_to_stop = status
                        .and_then(|s| s.signal())
                        .is_some_and(|s| s == libc::SIGTERM || s == libc::SIGINT);
                    let wait = if asked_to_stop { STOP_GRACE } else { Duration::ZERO };
                    break match timeout(wait, stop.recv()).await {
                        Ok(()) => Event::error(ErrorCode::Cancelled, "stopped"),
                        Err(_) => Event::error(ErrorCode::AgentCrashed, crash_message(status)),
                    };
                }
            },
            Some(decided) = controller.next_decision(), if controller.waiting() => {
                idle_until = Instant::now() + config.idle_timeout;
                controller.answer(decided);
            }
            _ = sleep_until(output.last_write() + config.heartbeat) => output.emit(Event::Heartbeat).await?,
        }
    };
    log_skipped(&translator);
    if controller.stop() {
        // Read on meanwhile (its output is no longer the answer's): a CLI blocked on a full pipe cannot exit.
        let exited = timeout(INTERRUPT_GRACE, async {
            while lines.next().await.is_some() {}
            cli.wait().await
        })
        .await;
        if exited.is_err() {
            eprintln!("vf-agent: Claude Code did not stop when interrupted; killing it");
        }
    }
    let _ = cli.kill().await;
    output.emit(failure).await?;
    Ok(None)
}

/// The benchmark's run: the query is not needed (it is only deleted, like a real run's), the CLI not started.
async fn drive_synthetic(
    config: &AgentConfig,
    spec: Synthetic,
    output: &mut Output,
) -> Result<Option<Child>, Error> {
    let mut stop = StopSignals::new()?;
    if let Some(path) = &config.query_file {
        let _ = std::fs::remove_file(path);
    }
    synthetic::drive(spec, output, &mut stop).await?;
    Ok(None)
}

/// Reads and deletes the pending-query file (the prompt must not linger on disk). The error is shown to the user.
fn read_query(path: Option<&std::path::Path>) -> Result<PendingQuery, String> {
    let path = path.ok_or("VF_QUERY_FILE is not set")?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("could not read the query file: {e}"))?;
    if let Err(e) = std::fs::remove_file(path) {
        eprintln!("vf-agent: could not delete the query file: {e}");
    }
    serde_json::from_str(&text).map_err(|e| format!("the query file is not a pending query: {e}"))
}

fn crash_message(status: Option<ExitStatus>) -> String {
    let how = match status.map(|s| (s.code(), s.signal())) {
        Some((Some(code), _)) => format!("exited with code {code}"),
        Some((None, Some(signal))) => format!("was killed by signal {signal}"),
        _ => "closed its output".into(),
    };
    format!("Claude Code {how} before finishing its answer")
}

/// Waits for the CLI to exit on its own after its result, then kills it.
async fn reap(mut cli: Child) {
    if timeout(EXIT_GRACE, cli.wait()).await.is_err() {
        eprintln!("vf-agent: Claude Code did not exit after its result; killing it");
        let _ = cli.kill().await;
    }
}

fn log_skipped(translator: &Translator) {
    if translator.skipped() > 0 {
        eprintln!(
            "vf-agent: skipped {} stream-json lines it did not understand",
            translator.skipped()
        );
    }
}

/// SIGTERM (the sandbox stopping the process group) or SIGINT: the run ends as `cancelled`.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<Self> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
