//! `SandboxContainer`: the Durable Object that owns one sandbox's Cloudflare Container and forwards to it.

use std::cell::Cell;
use std::time::Duration;

use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{
    durable_object, worker_sys, Container, Delay, DurableObject, Env, Fetcher, Request, Response,
    State,
};

use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::sandbox::SandboxClient;

/// The port `vf-sandbox` listens on in the image (its `ENTRYPOINT`).
const PORT: u16 = 3000;
/// How long a starting Container may take until `vf-sandbox` answers, and how often we ask.
const STARTUP_TIMEOUT_MS: u64 = 60_000;
const STARTUP_POLL_MS: u64 = 300;
/// The keep-alive alarm's period: well under the minute or so after which an idle DO leaves memory.
const KEEPALIVE_MS: i64 = 30_000;
/// A Container with no running process and no request for this long is stopped (variable `SANDBOX_IDLE_MS`).
const IDLE_MS: u64 = 15 * 60 * 1000;

/// Production's way to `vf-sandbox`: one per sandbox, attached to a Container of the image built from
/// `Dockerfile`. A request starts the Container if it is not running, waits until `vf-sandbox` answers on port
/// 3000, then passes through unchanged (the agent WebSocket too).
///
/// The platform stops a Container once its DO leaves memory, and while the agent streams its answer to the
/// Worker nothing passes through this DO; so an alarm keeps the DO awake while a sandbox process runs or a
/// request came recently, and stops the Container after `SANDBOX_IDLE_MS` of neither.
#[durable_object]
pub struct SandboxContainer {
    state: State,
    env: Env,
    /// `vf-sandbox` has answered since this instance started the Container or first reached it.
    listening: Cell<bool>,
    /// When the last request came in; a fresh instance counts as one.
    last_request_ms: Cell<u64>,
}

impl DurableObject for SandboxContainer {
    fn new(state: State, env: Env) -> Self {
        SandboxContainer {
            state,
            env,
            listening: Cell::new(false),
            last_request_ms: Cell::new(config::now_ms()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        Ok(self
            .forward(req)
            .await
            .unwrap_or_else(ApiError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.keep_alive().await {
            worker::console_error!("sandbox keep-alive: {e}");
        }
        Response::ok("ok")
    }
}

impl SandboxContainer {
    async fn forward(&self, req: Request) -> ApiResult<Response> {
        self.last_request_ms.set(config::now_ms());
        let container = self.container()?;
        let port = self.ready(&container).await?;
        Ok(port.fetch_request(req).await?)
    }

    fn container(&self) -> ApiResult<Container> {
        self.state.container().ok_or_else(|| {
            ApiError::Internal(
                "SandboxContainer has no Container: is [[containers]] configured for it, and are containers \
                 enabled here?"
                    .into(),
            )
        })
    }

    /// Port 3000 of the running Container, once `vf-sandbox` answers there. Starts the Container if needed.
    async fn ready(&self, container: &Container) -> ApiResult<Fetcher> {
        if !container.running() {
            start(container, &self.env)?;
            self.listening.set(false);
            self.state.storage().set_alarm(KEEPALIVE_MS).await?;
        }
        let port = container.get_tcp_port(PORT)?;
        if !self.listening.get() {
            self.wait_until_listening(container, &port).await?;
            self.listening.set(true);
        }
        Ok(port)
    }

    /// Pings `vf-sandbox` until it answers: right after `start()` its server is not listening yet.
    async fn wait_until_listening(&self, container: &Container, port: &Fetcher) -> ApiResult<()> {
        let client = SandboxClient::for_port(&self.env, port.clone())?;
        let deadline = config::now_ms() + STARTUP_TIMEOUT_MS;
        loop {
            let failure = match client.ping().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !container.running() {
                return Err(ApiError::Internal(format!(
                    "the Container stopped while starting (see its logs): {failure}"
                )));
            }
            if config::now_ms() >= deadline {
                return Err(ApiError::Internal(format!(
                    "vf-sandbox did not answer within {} s of the Container starting: {failure}",
                    STARTUP_TIMEOUT_MS / 1000
                )));
            }
            Delay::from(Duration::from_millis(STARTUP_POLL_MS)).await;
        }
    }

    /// The alarm: re-arms itself while the Container is in use, stops it once idle, and ends with the Container.
    async fn keep_alive(&self) -> ApiResult<()> {
        let container = self.container()?;
        if !container.running() {
            // It stopped on its own; the next request starts it again (and the alarm with it).
            return Ok(());
        }
        let idle_ms = config::now_ms().saturating_sub(self.last_request_ms.get());
        let in_use = idle_ms < config::var_u64(&self.env, "SANDBOX_IDLE_MS", IDLE_MS)
            || match self.running_processes(&container).await {
                Ok(count) => count > 0,
                // In doubt, keep it: an answer in progress must not be cut off by a passing failure.
                Err(e) => {
                    worker::console_warn!("sandbox keep-alive: cannot list processes: {e}");
                    true
                }
            };
        if in_use {
            self.state.storage().set_alarm(KEEPALIVE_MS).await?;
        } else {
            worker::console_log!(
                "sandbox idle for {} s with no process running: stopping its Container",
                idle_ms / 1000
            );
            container.destroy(None).await?;
        }
        Ok(())
    }

    async fn running_processes(&self, container: &Container) -> ApiResult<usize> {
        let port = container.get_tcp_port(PORT)?;
        let client = SandboxClient::for_port(&self.env, port)?;
        let processes = client.processes().await?;
        Ok(processes.iter().filter(|p| p.is_running()).count())
    }
}

/// Starts the Container with internet access (the agent calls back to the Worker and reaches Claude's API) and
/// the one thing the image cannot know: the shared token. Listen address and workspace are the image's
/// `ENTRYPOINT`; `VF_*` defaults are its `ENV`.
///
/// The options are a plain object rather than worker's `ContainerStartupOptions`: in worker 0.8.7 that type hands
/// workerd its `env` as a JS `Map`, which workerd reads like an object (own properties only), so every variable
/// would be dropped; and it always sends an `entrypoint` (an empty one when unset) rather than leaving the image's.
fn start(container: &Container, env: &Env) -> ApiResult<()> {
    let js = |e: JsValue| ApiError::Internal(format!("starting the Container: {e:?}"));
    let token = config::secret(env, "SANDBOX_TOKEN")?;
    let vars = Object::new();
    Reflect::set(&vars, &"SANDBOX_TOKEN".into(), &token.into()).map_err(js)?;
    let options = Object::new();
    Reflect::set(&options, &"enableInternet".into(), &JsValue::TRUE).map_err(js)?;
    Reflect::set(&options, &"env".into(), &vars).map_err(js)?;
    container
        .as_ref()
        .unchecked_ref::<worker_sys::Container>()
        .start(&options)
        .map_err(js)
}
