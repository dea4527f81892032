//! The Worker's client of the sandbox control API (`vf-sandbox`): write a file, start, inspect and kill a process.
//!
//! One seam, `send`, carries every call. Locally it goes to `SANDBOX_URL` (a plain `vf-sandbox` process);
//! in production the same requests go to the Container attached to the session's sandbox.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::config;

/// A failed sandbox call; the detail is for the log, never for the user.
#[derive(Debug, thiserror::Error)]
#[error("sandbox {what}: {detail}")]
pub struct SandboxError {
    what: &'static str,
    detail: String,
}

type SandboxResult<T> = Result<T, SandboxError>;

/// The status of a sandbox process.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    pub status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl ProcessStatus {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// How the process ended, for the log.
    pub fn describe(&self) -> String {
        match self.exit_code {
            Some(code) => format!("{} with code {code}", self.status),
            None => self.status.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Started {
    id: String,
}

#[derive(Serialize)]
struct StartProcess<'a> {
    command: &'a str,
    env: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct WriteFile<'a> {
    path: &'a str,
    content: &'a str,
}

pub struct SandboxClient {
    base: String,
    token: String,
}

impl SandboxClient {
    /// The sandbox of one session. `_sandbox_id` selects the container in production.
    pub fn for_sandbox(env: &Env, _sandbox_id: &str) -> SandboxResult<Self> {
        let base = config::var(env, "SANDBOX_URL").ok_or_else(|| SandboxError {
            what: "config",
            detail: "SANDBOX_URL is not set".into(),
        })?;
        let token = config::secret(env, "SANDBOX_TOKEN").map_err(|e| SandboxError {
            what: "config",
            detail: e.to_string(),
        })?;
        Ok(SandboxClient {
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn write_file(&self, path: &str, content: &str) -> SandboxResult<()> {
        self.send::<serde_json::Value>(Method::Post, "/api/write", Some(&WriteFile { path, content }), "write")
            .await
            .map(drop)
    }

    /// Starts `command` in the sandbox with `env`; returns the process id.
    pub async fn start_process(&self, command: &str, env: &BTreeMap<String, String>) -> SandboxResult<String> {
        let started: Started = self
            .send(Method::Post, "/api/process/start", Some(&StartProcess { command, env }), "start")
            .await?;
        Ok(started.id)
    }

    pub async fn process_status(&self, id: &str) -> SandboxResult<ProcessStatus> {
        self.send::<ProcessStatus>(Method::Get, &format!("/api/process/{id}"), None::<&()>, "status")
            .await
    }

    /// Kills the process and its whole group.
    pub async fn kill_process(&self, id: &str) -> SandboxResult<ProcessStatus> {
        self.send::<ProcessStatus>(Method::Delete, &format!("/api/process/{id}"), None::<&()>, "kill")
            .await
    }

    /// Opens the sandbox's legacy agent WebSocket.
    pub async fn agent_socket(&self) -> SandboxResult<worker::WebSocket> {
        let fail = |detail: String| SandboxError {
            what: "agent socket",
            detail,
        };
        let headers = Headers::new();
        for (k, v) in [("X-Sandbox-Token", self.token.as_str()), ("Upgrade", "websocket")] {
            headers.set(k, v).map_err(|e| fail(e.to_string()))?;
        }
        let mut init = RequestInit::new();
        init.with_headers(headers);
        let request = Request::new_with_init(&format!("{}/api/agent/ws", self.base), &init)
            .map_err(|e| fail(e.to_string()))?;
        let response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status_code();
        response
            .websocket()
            .ok_or_else(|| fail(format!("no WebSocket in the answer (HTTP {status})")))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        what: &'static str,
    ) -> SandboxResult<T> {
        let fail = |detail: String| SandboxError { what, detail };
        let headers = Headers::new();
        headers
            .set("X-Sandbox-Token", &self.token)
            .map_err(|e| fail(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(body) = body {
            init.headers
                .set("Content-Type", "application/json")
                .map_err(|e| fail(e.to_string()))?;
            init.with_body(Some(serde_json::to_string(body).expect("bodies serialize").into()));
        }
        let request = Request::new_with_init(&format!("{}{path}", self.base), &init)
            .map_err(|e| fail(e.to_string()))?;
        let mut response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("bad response: {e}")))
    }
}
