//! `vf-sandbox`: the sandbox control server (flags and environment → `vf_sandbox::run`).

use std::path::PathBuf;
use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use vf_sandbox::{config, Config};

const USAGE: &str = "\
Usage: vf-sandbox [--listen ADDR] [--workspace DIR] [--log-dir DIR] [--agent-command CMD]

  --listen ADDR         address to serve on (env SANDBOX_LISTEN, default 127.0.0.1:3000)
  --workspace DIR       root of files and processes, created if missing (env SANDBOX_WORKSPACE, default /workspace)
  --log-dir DIR         process logs (env SANDBOX_LOG_DIR, default $TMPDIR/vf-sandbox-logs)
  --agent-command CMD   runs vf-agent for the legacy WebSocket (env SANDBOX_AGENT_COMMAND, default vf-agent)

The shared token comes from the environment only (SANDBOX_TOKEN, required), so that it never shows in `ps`.";

struct Flags {
    listen: String,
    config: Config,
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Flags, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (mut listen, mut workspace, mut log_dir, mut agent_command) = (
        env("SANDBOX_LISTEN"),
        env("SANDBOX_WORKSPACE"),
        env("SANDBOX_LOG_DIR"),
        env("SANDBOX_AGENT_COMMAND"),
    );
    let mut argv = argv.into_iter();
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--workspace" => &mut workspace,
            "--log-dir" => &mut log_dir,
            "--agent-command" => &mut agent_command,
            _ => return Err(format!("unknown argument {flag:?}\n\n{USAGE}")),
        };
        *slot = Some(
            inline
                .or_else(|| argv.next())
                .ok_or(format!("{flag} needs a value"))?,
        );
    }
    let token = env("SANDBOX_TOKEN").ok_or(
        "SANDBOX_TOKEN is not set: refusing to start without the shared token that every request must carry",
    )?;
    Ok(Flags {
        listen: listen.unwrap_or_else(|| "127.0.0.1:3000".into()),
        config: Config {
            token,
            workspace: PathBuf::from(workspace.unwrap_or_else(|| "/workspace".into())),
            // Outside the workspace, so that Claude does not read (or tidy away) the logs of its own processes.
            log_dir: log_dir.map_or_else(
                || std::env::temp_dir().join("vf-sandbox-logs"),
                PathBuf::from,
            ),
            agent_command: agent_command.unwrap_or_else(|| "vf-agent".into()),
            base_env: config::base_env(std::env::vars()),
        },
    })
}

async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("vf-sandbox: shutting down, stopping every process group");
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let flags = match parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&flags.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("vf-sandbox: cannot listen on {}: {e}", flags.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "vf-sandbox: listening on {}, workspace {}, logs in {}",
        flags.listen,
        flags.config.workspace.display(),
        flags.config.log_dir.display()
    );
    match vf_sandbox::run(listener, flags.config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vf-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
