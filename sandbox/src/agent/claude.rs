//! How `vf-agent` starts the Claude Code CLI: its arguments, its permission mode and its environment.

use std::process::Stdio;

use tokio::process::Command;
use vf_protocol::api::{Autonomy, SessionMode};

/// Variables of ours that the CLI, and every command it runs for Claude, must not see: with them a tool call could
/// post forged events to the callback.
const WITHHELD: [&str; 4] = [
    "VF_STREAM_JWT",
    "VF_CALLBACK_URL",
    "VF_APPROVALS_URL",
    "VF_QUERY_FILE",
];

/// What the user chose for this turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    /// Claude's session to continue (`--resume`).
    pub resume: Option<String>,
    pub model: Option<String>,
    pub mode: SessionMode,
    pub autonomy: Option<Autonomy>,
    /// The CLI asks before tool calls its permission mode does not allow (the DO path): it speaks the Agent SDKs'
    /// control protocol on stdin/stdout (`--input-format stream-json`, `--permission-prompt-tool stdio`).
    pub approvals: bool,
}

/// The CLI's `--permission-mode` for a turn:
///
/// | VaporForge | `--permission-mode` |
/// |---|---|
/// | mode `plan` (whatever the autonomy) | `plan`: Claude only reads and proposes |
/// | autonomy `conservative` | `default`: every edit and command needs approval (without approvals, on the legacy path, nobody can give it, so Claude works read-only) |
/// | autonomy `standard` | `acceptEdits`: file edits are allowed, other commands are not |
/// | autonomy `autonomous` | `bypassPermissions`: anything goes (the sandbox is the boundary) |
/// | no autonomy given | no flag: the CLI's own default, or the user's settings file |
pub fn permission_mode(mode: SessionMode, autonomy: Option<Autonomy>) -> Option<&'static str> {
    match (mode, autonomy) {
        (SessionMode::Plan, _) => Some("plan"),
        (SessionMode::Agent, Some(Autonomy::Conservative)) => Some("default"),
        (SessionMode::Agent, Some(Autonomy::Standard)) => Some("acceptEdits"),
        (SessionMode::Agent, Some(Autonomy::Autonomous)) => Some("bypassPermissions"),
        (SessionMode::Agent, None) => None,
    }
}

/// The permission mode the CLI switches to when the user approves Claude's plan: the one the turn's autonomy has in
/// agent mode, or `default` (Claude asks before edits and commands) when no autonomy was given.
pub fn mode_after_plan(autonomy: Option<Autonomy>) -> &'static str {
    permission_mode(SessionMode::Agent, autonomy).unwrap_or("default")
}

/// The CLI's arguments. The prompt is not among them: it goes to stdin, which has no size limit and which `ps`
/// does not show (with approvals, as a stream-json user message).
pub fn args(turn: &Turn) -> Vec<String> {
    let mut args = vec!["-p".to_string()];
    if turn.approvals {
        args.extend(["--input-format", "stream-json"].map(String::from));
    }
    args.extend(
        [
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
        ]
        .map(String::from),
    );
    if turn.approvals {
        args.extend(["--permission-prompt-tool", "stdio"].map(String::from));
    }
    let flags = [
        ("--resume", turn.resume.as_deref()),
        ("--model", turn.model.as_deref()),
        (
            "--permission-mode",
            permission_mode(turn.mode, turn.autonomy),
        ),
    ];
    for (flag, value) in flags {
        if let Some(value) = value {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args
}

/// The CLI command, run in the current directory (the workspace, where `--resume` finds its transcript) and in
/// our process group, so that stopping the agent's group stops the CLI and its tools too.
pub fn command(program: &str, turn: &Turn) -> Command {
    let mut command = Command::new(program);
    command
        .args(args(turn))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for name in WITHHELD {
        command.env_remove(name);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_modes() {
        use Autonomy::*;
        assert_eq!(
            permission_mode(SessionMode::Plan, Some(Autonomous)),
            Some("plan")
        );
        assert_eq!(
            permission_mode(SessionMode::Agent, Some(Conservative)),
            Some("default")
        );
        assert_eq!(
            permission_mode(SessionMode::Agent, Some(Standard)),
            Some("acceptEdits")
        );
        assert_eq!(
            permission_mode(SessionMode::Agent, Some(Autonomous)),
            Some("bypassPermissions")
        );
        assert_eq!(permission_mode(SessionMode::Agent, None), None);
        assert_eq!(mode_after_plan(Some(Standard)), "acceptEdits");
        assert_eq!(mode_after_plan(Some(Autonomous)), "bypassPermissions");
        assert_eq!(mode_after_plan(None), "default");
    }

    #[test]
    fn arguments() {
        assert_eq!(
            args(&Turn::default()),
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages"
            ]
        );
        let turn = Turn {
            resume: Some("s1".into()),
            model: Some("opus".into()),
            mode: SessionMode::Plan,
            autonomy: None,
            approvals: false,
        };
        assert_eq!(
            args(&turn)[5..],
            [
                "--resume",
                "s1",
                "--model",
                "opus",
                "--permission-mode",
                "plan"
            ]
        );
        let approvals = Turn {
            approvals: true,
            ..turn
        };
        assert_eq!(
            args(&approvals).join(" "),
            "-p --input-format stream-json --output-format stream-json --verbose --include-partial-messages \
             --permission-prompt-tool stdio --resume s1 --model opus --permission-mode plan"
        );
    }

    #[test]
    fn the_callback_secrets_are_withheld_from_the_cli() {
        let command = command("claude", &Turn::default());
        let removed: Vec<_> = command
            .as_std()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            removed,
            [
                "VF_APPROVALS_URL",
                "VF_CALLBACK_URL",
                "VF_QUERY_FILE",
                "VF_STREAM_JWT"
            ]
        );
    }
}
