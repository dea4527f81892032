//! The `vf-sandbox` control server: token check, routes, and the graceful shutdown that stops every child.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State, WebSocketUpgrade};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::processes::{ProcessInfo, Processes, Spec};
use crate::workspace::Workspace;
use crate::{legacy_ws, Config, Error};

/// The header that carries the shared control-API token.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-sandbox-token");

/// Request bodies up to this size are accepted: room for files written through `/api/write`.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Everything the handlers share.
pub(crate) struct App {
    token: String,
    pub(crate) workspace: Workspace,
    pub(crate) processes: Processes,
    pub(crate) log_dir: std::path::PathBuf,
    pub(crate) agent_command: String,
    base_env: BTreeMap<String, String>,
}

impl App {
    /// The base environment with a request's variables on top.
    pub(crate) fn child_env(
        &self,
        extra: Option<BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut env = self.base_env.clone();
        for (key, value) in extra.unwrap_or_default() {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(Error::BadRequest(format!(
                    "env variable {key:?} is not a valid name/value pair"
                )));
            }
            env.insert(key, value);
        }
        Ok(env)
    }
}

/// Serves the control API on `listener` until `shutdown` resolves, then stops every process group still running.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if config.token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the sandbox token must not be empty",
        ));
    }
    std::fs::create_dir_all(&config.log_dir)?;
    // Absolute, because children (the agent reading its query file) run in the workspace, not in our directory.
    let log_dir = config.log_dir.canonicalize()?;
    let app = Arc::new(App {
        token: config.token,
        workspace: Workspace::open(&config.workspace)?,
        processes: Processes::new(log_dir.clone()),
        log_dir,
        agent_command: config.agent_command,
        base_env: config.base_env,
    });
    let router = Router::new()
        .route("/api/ping", get(ping))
        .route("/api/write", post(write_file))
        .route("/api/process", get(list_processes))
        .route("/api/process/start", post(start_process))
        .route(
            "/api/process/{id}",
            get(process_status).delete(kill_process),
        )
        .route("/api/agent/ws", get(agent_ws))
        .fallback(|| async { Error::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A layer, not a route_layer: unknown paths answer 401 too, so they reveal nothing without the token.
        .layer(middleware::from_fn_with_state(app.clone(), require_token))
        .with_state(app.clone());
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    app.processes.shutdown().await;
    served
}

async fn require_token(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Result<Response, Error> {
    let given = req
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(app.token.as_bytes())) {
        Ok(next.run(req).await)
    } else {
        Err(Error::Unauthorized)
    }
}

/// A JSON body whose rejection is our 400 `{"error"}`, not axum's plain-text 415/422.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

async fn ping() -> Json<Value> {
    Json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct WriteRequest {
    path: String,
    content: String,
}

async fn write_file(
    State(app): State<Arc<App>>,
    JsonBody(req): JsonBody<WriteRequest>,
) -> Result<Json<Value>, Error> {
    let path = app.workspace.resolve(&req.path)?;
    if path.is_dir() {
        return Err(Error::BadRequest(format!(
            "path {:?} is a directory",
            req.path
        )));
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::write(&path, req.content).await?;
    Ok(Json(json!({"path": path.to_string_lossy()})))
}

#[derive(Deserialize)]
struct StartRequest {
    command: String,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    cwd: Option<String>,
}

async fn start_process(
    State(app): State<Arc<App>>,
    JsonBody(req): JsonBody<StartRequest>,
) -> Result<Json<Value>, Error> {
    if req.command.trim().is_empty() {
        return Err(Error::BadRequest("command is empty".into()));
    }
    let cwd = match &req.cwd {
        Some(cwd) => app.workspace.resolve_dir(cwd)?,
        None => app.workspace.root().to_path_buf(),
    };
    let env = app.child_env(req.env)?;
    let (info, _) = app.processes.start(Spec {
        command: &req.command,
        cwd: &cwd,
        env: &env,
        capture_stdout: false,
    })?;
    Ok(Json(json!({"id": info.id, "pid": info.pid})))
}

async fn list_processes(State(app): State<Arc<App>>) -> Json<Vec<ProcessInfo>> {
    Json(app.processes.list())
}

async fn process_status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<ProcessInfo>, Error> {
    app.processes.get(&id).map(Json).ok_or(Error::NotFound)
}

async fn kill_process(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<ProcessInfo>, Error> {
    app.processes
        .kill(&id)
        .await
        .map(Json)
        .ok_or(Error::NotFound)
}

async fn agent_ws(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| legacy_ws::serve(socket, app))
}
