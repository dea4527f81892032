//! The agent's environment: the `VF_*` variables (and the Claude token) the DO gives `vf-agent`, typed once for
//! both sides (the DO writes them with [`AgentEnv::to_env`], the agent reads them with [`AgentEnv::from_env`]).

use std::collections::BTreeMap;

use crate::api::{Autonomy, SessionMode};

/// What one execution's agent is told by the DO. The agent's own knobs (timeouts, the CLI's path) are the
/// sandbox's business and not part of this contract.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgentEnv {
    /// `CLAUDE_CODE_OAUTH_TOKEN`: the user's Claude token, for the CLI (never logged: `Debug` masks it).
    pub claude_token: Option<String>,
    /// `VF_CALLBACK_URL` and `VF_STREAM_JWT`: where the agent streams and with which execution token.
    pub callback_url: Option<String>,
    pub stream_jwt: Option<String>,
    /// `VF_APPROVALS_URL`: where the agent asks for the user's decisions (`{url}/{approvalId}`, same token).
    /// Without it the agent runs without approvals (the legacy path).
    pub approvals_url: Option<String>,
    /// `VF_QUERY_FILE`: the pending-query JSON, deleted once read.
    pub query_file: Option<String>,
    /// `VF_SESSION_ID`, `VF_EXECUTION_ID`: ours, for the agent's logs and process listings.
    pub session_id: Option<String>,
    pub execution_id: Option<String>,
    /// `VF_SDK_SESSION_ID`: Claude's session to resume.
    pub sdk_session_id: Option<String>,
    /// `VF_SESSION_MODE`, `VF_AUTONOMY_MODE`, `VF_MODEL`.
    pub mode: SessionMode,
    pub autonomy: Option<Autonomy>,
    pub model: Option<String>,
    /// `CLAUDE_CONFIG_DIR`: where the CLI keeps its sessions.
    pub claude_config_dir: Option<String>,
}

impl std::fmt::Debug for AgentEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut env = self.to_env();
        for secret in ["CLAUDE_CODE_OAUTH_TOKEN", "VF_STREAM_JWT"] {
            if let Some(value) = env.get_mut(secret) {
                *value = "…".into();
            }
        }
        f.debug_map().entries(env).finish()
    }
}

/// A variable whose value the agent did not understand; it is ignored (and logged by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub name: &'static str,
    pub value: String,
}

impl AgentEnv {
    /// The variables, by name. Unset fields are left out; `IS_SANDBOX=1` tells the CLI it runs in a sandbox.
    pub fn to_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("IS_SANDBOX".to_string(), "1".to_string());
        let mut set = |name: &str, value: Option<&str>| {
            if let Some(value) = value {
                env.insert(name.to_string(), value.to_string());
            }
        };
        set("CLAUDE_CODE_OAUTH_TOKEN", self.claude_token.as_deref());
        set("VF_CALLBACK_URL", self.callback_url.as_deref());
        set("VF_STREAM_JWT", self.stream_jwt.as_deref());
        set("VF_APPROVALS_URL", self.approvals_url.as_deref());
        set("VF_QUERY_FILE", self.query_file.as_deref());
        set("VF_SESSION_ID", self.session_id.as_deref());
        set("VF_EXECUTION_ID", self.execution_id.as_deref());
        set("VF_SDK_SESSION_ID", self.sdk_session_id.as_deref());
        set("VF_SESSION_MODE", Some(wire_name(&self.mode).as_str()));
        set(
            "VF_AUTONOMY_MODE",
            self.autonomy.as_ref().map(wire_name).as_deref(),
        );
        set("VF_MODEL", self.model.as_deref());
        set("CLAUDE_CONFIG_DIR", self.claude_config_dir.as_deref());
        env
    }

    /// Reads the variables through `var` (an empty value counts as unset: the Worker may pass `""` for "no
    /// previous session"). A mode or autonomy the agent does not know is ignored and reported.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> (Self, Vec<Ignored>) {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut ignored = Vec::new();
        let mode = choice(var, "VF_SESSION_MODE", &mut ignored).unwrap_or_default();
        let autonomy = choice(var, "VF_AUTONOMY_MODE", &mut ignored);
        let env = AgentEnv {
            claude_token: var("CLAUDE_CODE_OAUTH_TOKEN"),
            callback_url: var("VF_CALLBACK_URL"),
            stream_jwt: var("VF_STREAM_JWT"),
            approvals_url: var("VF_APPROVALS_URL"),
            query_file: var("VF_QUERY_FILE"),
            session_id: var("VF_SESSION_ID"),
            execution_id: var("VF_EXECUTION_ID"),
            sdk_session_id: var("VF_SDK_SESSION_ID"),
            mode,
            autonomy,
            model: var("VF_MODEL"),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
        };
        (env, ignored)
    }
}

/// A protocol enum from the variable `name` by its wire name; an unknown name is recorded in `ignored`.
fn choice<T: serde::de::DeserializeOwned>(
    var: impl Fn(&str) -> Option<String>,
    name: &'static str,
    ignored: &mut Vec<Ignored>,
) -> Option<T> {
    let value = var(name)?;
    let parsed = serde_json::from_value(serde_json::Value::String(value.clone())).ok();
    if parsed.is_none() {
        ignored.push(Ignored { name, value });
    }
    parsed
}

/// A protocol enum's name on the wire (`"plan"`, `"autonomous"`).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("protocol enums serialize as strings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AgentEnv {
        AgentEnv {
            claude_token: Some("sk-ant-oat01-secret".into()),
            callback_url: Some("https://vf.example/internal/stream".into()),
            stream_jwt: Some("a.b.c".into()),
            approvals_url: Some("https://vf.example/internal/approvals".into()),
            query_file: Some(".vf/queries/e1.json".into()),
            session_id: Some("s1".into()),
            execution_id: Some("e1".into()),
            sdk_session_id: Some("6f1".into()),
            mode: SessionMode::Plan,
            autonomy: Some(Autonomy::Autonomous),
            model: Some("claude-sonnet-4-5".into()),
            claude_config_dir: Some("/w/.claude".into()),
        }
    }

    #[test]
    fn what_the_do_writes_the_agent_reads() {
        for env in [full(), AgentEnv::default()] {
            let vars = env.to_env();
            let (read, ignored) = AgentEnv::from_env(|name| vars.get(name).cloned());
            assert_eq!(read, env);
            assert!(ignored.is_empty());
        }
    }

    #[test]
    fn the_names_are_the_contract() {
        let vars = full().to_env();
        assert_eq!(vars["IS_SANDBOX"], "1");
        assert_eq!(vars["VF_SESSION_MODE"], "plan");
        assert_eq!(vars["VF_AUTONOMY_MODE"], "autonomous");
        assert_eq!(
            vars["VF_CALLBACK_URL"],
            "https://vf.example/internal/stream"
        );
        assert_eq!(
            AgentEnv::default().to_env().len(),
            2,
            "IS_SANDBOX and the mode"
        );
    }

    #[test]
    fn empty_and_unknown_values_count_as_unset() {
        let (env, ignored) = AgentEnv::from_env(|name| match name {
            "VF_SDK_SESSION_ID" => Some(" ".into()),
            "VF_AUTONOMY_MODE" => Some("reckless".into()),
            _ => None,
        });
        assert_eq!(env.sdk_session_id, None);
        assert_eq!(env.autonomy, None);
        assert_eq!(
            ignored,
            [Ignored {
                name: "VF_AUTONOMY_MODE",
                value: "reckless".into()
            }]
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!("{:?}", full());
        assert!(
            !shown.contains("secret") && !shown.contains("a.b.c"),
            "{shown}"
        );
        assert!(shown.contains("VF_MODEL"));
    }
}
