//! Dispatch: starting one execution's agent in the session's sandbox (the pending query, the execution token and
//! the agent's environment).

use serde::{Deserialize, Serialize};
use vf_protocol::agent_env::AgentEnv;
use vf_protocol::api::{ChatRequest, PendingQuery};
use vf_protocol::token::{self, ExecutionClaims, TokenError, EXECUTION_TOKEN_TTL_SECS};
use worker::Env;

use crate::auth;
use crate::config;
use crate::error::ApiError;
use crate::sandbox::{SandboxClient, SandboxError};
use crate::sessions;

/// What the Worker forwards to the DO's `/chat`: the user's request plus what only the Worker knows.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatForward {
    #[serde(flatten)]
    pub request: ChatRequest,
    pub user_id: String,
    /// The public origin of the Worker, for the agent's callback URL.
    pub origin: String,
    /// The session's sandbox, from its record (the DO keeps it for cancel and the watchdog).
    pub sandbox_id: String,
}

/// Why an agent could not be started.
#[derive(Debug)]
pub enum DispatchError {
    /// A reason the user can act on.
    Refused(String),
    /// An internal failure (logged, shown generically).
    Failed(String),
}

impl DispatchError {
    /// The message for the user's `dispatch-failed` event; an internal failure is logged here.
    pub fn user_message(self) -> String {
        match self {
            DispatchError::Refused(message) => message,
            DispatchError::Failed(detail) => {
                worker::console_error!("dispatch failed: {detail}");
                "The sandbox could not start the agent. Try again in a moment.".into()
            }
        }
    }
}

impl From<ApiError> for DispatchError {
    fn from(e: ApiError) -> Self {
        DispatchError::Failed(e.to_string())
    }
}

impl From<SandboxError> for DispatchError {
    fn from(e: SandboxError) -> Self {
        DispatchError::Failed(e.to_string())
    }
}

impl From<TokenError> for DispatchError {
    fn from(e: TokenError) -> Self {
        DispatchError::Failed(format!("execution token: {e}"))
    }
}

/// Writes the pending query into the sandbox and starts the agent; returns its process id.
pub async fn start_agent(
    env: &Env,
    execution_id: &str,
    forward: &ChatForward,
    sdk_session_id: Option<String>,
) -> Result<String, DispatchError> {
    let session_id = &forward.request.session_id;
    if sessions::load(env, session_id).await?.is_none() {
        return Err(DispatchError::Refused(
            "This session no longer exists.".into(),
        ));
    }
    let user = auth::load_user(env, &forward.user_id)
        .await?
        .ok_or_else(|| {
            DispatchError::Refused("No Claude token is on file. Sign in again.".into())
        })?;
    let secret = config::secret(env, "JWT_SECRET")?;
    let claims = ExecutionClaims::new(
        execution_id,
        session_id,
        config::now_secs(),
        EXECUTION_TOKEN_TTL_SECS,
    );
    let stream_token = token::sign(&claims, secret.as_bytes())?;

    let sandbox = SandboxClient::for_sandbox(env, &forward.sandbox_id)?;
    let query_file = format!(".vf/queries/{execution_id}.json");
    let query = PendingQuery {
        prompt: forward.request.prompt.clone(),
        session_id: session_id.clone(),
        execution_id: execution_id.to_string(),
        sdk_session_id: sdk_session_id.clone(),
        timestamp: config::now_ms(),
    };
    sandbox
        .write_file(
            &query_file,
            &serde_json::to_string(&query).expect("queries serialize"),
        )
        .await?;
    let agent_env = AgentEnv {
        claude_token: Some(user.claude_token),
        callback_url: Some(format!("{}/internal/stream", forward.origin)),
        approvals_url: Some(format!("{}/internal/approvals", forward.origin)),
        stream_jwt: Some(stream_token),
        query_file: Some(query_file),
        session_id: Some(session_id.clone()),
        execution_id: Some(execution_id.to_string()),
        sdk_session_id,
        mode: forward.request.turn.mode.unwrap_or_default(),
        autonomy: forward.request.turn.autonomy,
        model: forward.request.turn.model.clone(),
        claude_config_dir: config::var(env, "CLAUDE_CONFIG_DIR"),
    };
    let command = config::var(env, "AGENT_COMMAND").unwrap_or_else(|| "vf-agent".into());
    Ok(sandbox.start_process(&command, &agent_env.to_env()).await?)
}
