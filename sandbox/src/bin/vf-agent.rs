//! `vf-agent`: runs one Claude Code turn in the sandbox and streams its events (see `vf_sandbox::agent`).

use std::process::ExitCode;

use vf_sandbox::agent::{self, AgentConfig};

#[tokio::main]
async fn main() -> ExitCode {
    match agent::run(AgentConfig::from_env()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vf-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
