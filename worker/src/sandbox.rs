//! The Worker's client of the sandbox control API (`vf-sandbox`): write a file, start, inspect and kill a process.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Fetcher, Headers, Method, Request, RequestInit, Response, Stub};

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

/// Who carries a request to `vf-sandbox`: the one thing that differs between local and production. Every call,
/// the agent WebSocket included, is built once, in [`SandboxClient::send`].
enum Transport {
    /// `SANDBOX_URL`: a `vf-sandbox` process reached over plain HTTP (`make dev`, the end-to-end tests).
    Url(String),
    /// The session's `SandboxContainer` Durable Object, which starts its Container and forwards (production).
    Container(Stub),
    /// Port 3000 of a running Container, used by `SandboxContainer` itself.
    Port(Fetcher),
}

impl Transport {
    fn url(&self, path: &str) -> String {
        match self {
            Transport::Url(base) => format!("{base}{path}"),
            // A DO stub and a container port need an absolute http:// URL; the host is not used for routing.
            Transport::Container(_) | Transport::Port(_) => format!("http://sandbox{path}"),
        }
    }

    async fn fetch(&self, request: Request) -> worker::Result<Response> {
        match self {
            Transport::Url(_) => Fetch::Request(request).send().await,
            Transport::Container(stub) => stub.fetch_with_request(request).await,
            Transport::Port(port) => port.fetch_request(request).await,
        }
    }
}

pub struct SandboxClient {
    transport: Transport,
    token: String,
}

impl SandboxClient {
    /// The sandbox `sandbox_id`: `SANDBOX_URL` if it is set, else that sandbox's `SandboxContainer`.
    pub fn for_sandbox(env: &Env, sandbox_id: &str) -> SandboxResult<Self> {
        let transport = match config::var(env, "SANDBOX_URL") {
            Some(base) => Transport::Url(base.trim_end_matches('/').to_string()),
            None => {
                let stub =
                    config::sandbox_container(env, sandbox_id).map_err(|e| SandboxError {
                        what: "config",
                        detail: format!("no SANDBOX_URL, and the {} binding: {e}", config::SANDBOX),
                    })?;
                Transport::Container(stub)
            }
        };
        Self::new(env, transport)
    }

    /// The `vf-sandbox` listening on `port` inside a Container (for `SandboxContainer`).
    pub fn for_port(env: &Env, port: Fetcher) -> SandboxResult<Self> {
        Self::new(env, Transport::Port(port))
    }

    fn new(env: &Env, transport: Transport) -> SandboxResult<Self> {
        let token = config::secret(env, "SANDBOX_TOKEN").map_err(|e| SandboxError {
            what: "config",
            detail: e.to_string(),
        })?;
        Ok(SandboxClient { transport, token })
    }

    /// Whether `vf-sandbox` answers (and accepts our token).
    pub async fn ping(&self) -> SandboxResult<()> {
        self.call::<serde_json::Value>(Method::Get, "/api/ping", None::<&()>, "ping")
            .await
            .map(drop)
    }

    pub async fn write_file(&self, path: &str, content: &str) -> SandboxResult<()> {
        self.call::<serde_json::Value>(
            Method::Post,
            "/api/write",
            Some(&WriteFile { path, content }),
            "write",
        )
        .await
        .map(drop)
    }

    /// Starts `command` in the sandbox with `env`; returns the process id.
    pub async fn start_process(
        &self,
        command: &str,
        env: &BTreeMap<String, String>,
    ) -> SandboxResult<String> {
        let started: Started = self
            .call(
                Method::Post,
                "/api/process/start",
                Some(&StartProcess { command, env }),
                "start",
            )
            .await?;
        Ok(started.id)
    }

    /// Every process the sandbox started, running or not.
    pub async fn processes(&self) -> SandboxResult<Vec<ProcessStatus>> {
        self.call(Method::Get, "/api/process", None::<&()>, "list")
            .await
    }

    pub async fn process_status(&self, id: &str) -> SandboxResult<ProcessStatus> {
        self.call(
            Method::Get,
            &format!("/api/process/{id}"),
            None::<&()>,
            "status",
        )
        .await
    }

    /// Kills the process and its whole group.
    pub async fn kill_process(&self, id: &str) -> SandboxResult<ProcessStatus> {
        self.call(
            Method::Delete,
            &format!("/api/process/{id}"),
            None::<&()>,
            "kill",
        )
        .await
    }

    /// Opens the sandbox's legacy agent WebSocket.
    pub async fn agent_socket(&self) -> SandboxResult<worker::WebSocket> {
        let fail = |detail: String| SandboxError {
            what: "agent socket",
            detail,
        };
        let headers = Headers::new();
        headers
            .set("Upgrade", "websocket")
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .send(Method::Get, "/api/agent/ws", headers, None)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status_code();
        response
            .websocket()
            .ok_or_else(|| fail(format!("no WebSocket in the answer (HTTP {status})")))
    }

    /// A JSON call: the body as JSON, a 2xx answer parsed as `T`, anything else an error naming `what`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        what: &'static str,
    ) -> SandboxResult<T> {
        let fail = |detail: String| SandboxError { what, detail };
        let headers = Headers::new();
        let body = match body {
            Some(body) => {
                headers
                    .set("Content-Type", "application/json")
                    .map_err(|e| fail(e.to_string()))?;
                Some(serde_json::to_string(body).expect("bodies serialize"))
            }
            None => None,
        };
        let mut response = self
            .send(method, path, headers, body)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("bad response: {e}")))
    }

    /// The one path every request takes: the token header, the URL, and the transport's fetch.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: Headers,
        body: Option<String>,
    ) -> worker::Result<Response> {
        headers.set("X-Sandbox-Token", &self.token)?;
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(body) = body {
            init.with_body(Some(body.into()));
        }
        let request = Request::new_with_init(&self.transport.url(path), &init)?;
        self.transport.fetch(request).await
    }
}
