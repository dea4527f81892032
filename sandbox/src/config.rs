//! What the control server is started with, and the base environment every child process inherits.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The variables of the server's own environment that children inherit, besides every `VF_*` one.
const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "TERM", "TMPDIR"];

/// How a `vf-sandbox` runs; the binary fills it from flags and the environment, tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shared secret every request must carry in `X-Sandbox-Token`.
    pub token: String,
    /// Root of the files and processes the API may touch; created if missing.
    pub workspace: PathBuf,
    /// Where each process's output (`<id>.log`) and the legacy path's pending-query files go.
    pub log_dir: PathBuf,
    /// The shell command that runs `vf-agent` for the legacy WebSocket.
    pub agent_command: String,
    /// The environment every child starts from; see [`base_env`].
    pub base_env: BTreeMap<String, String>,
}

/// The base environment of children: a few essentials and every `VF_*` variable (how the image or `make dev` sets
/// e.g. `VF_CLAUDE_BIN`). Anything else, the server's `SANDBOX_TOKEN` above all, stays with the server.
pub fn base_env(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(key, _)| INHERITED.contains(&key.as_str()) || key.starts_with("VF_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_essentials_and_vf_variables_are_inherited() {
        let vars = [
            ("PATH", "/bin"),
            ("SANDBOX_TOKEN", "secret"),
            ("VF_CLAUDE_BIN", "/x/claude"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("HOME", "/root"),
            ("XVF_NOPE", "n"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = base_env(vars);
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["HOME", "PATH", "VF_CLAUDE_BIN"]
        );
    }
}
