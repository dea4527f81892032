//! `ChatSessionAgent`: the Durable Object that owns one chat session's stream.
//!
//! It starts the agent in the sandbox, receives the agent's NDJSON on the execution-token-secured callback,
//! appends every event to SQLite before anyone sees it, and fans it out to every watching client. The stream
//! belongs to the DO, not to a browser tab: a client that goes away loses nothing, and any client can resume
//! with `after=<seq>`. An alarm is the watchdog, so a dead or silent agent ends its execution even if the DO
//! was evicted in between.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::stream::{self, LocalBoxStream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use vf_protocol::api::{CallbackReceipt, ChatRequest, PendingQuery, SessionMode, SessionRecord};
use vf_protocol::token::{self, ExecutionClaims, EXECUTION_TOKEN_TTL_SECS};
use vf_protocol::{AgentLine, ErrorCode, Event, FrameError, LineFramer};
use wasm_bindgen::{JsCast, JsValue};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, State};

use crate::auth;
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::event_log::{EventLog, Execution, Outcome, Replay};
use crate::fanout::{Subscribers, Subscription};
use crate::http;
use crate::sandbox::{SandboxClient, SandboxError};
use crate::sessions;

/// No callback within this window after dispatch → `error` `timeout` (the seed's bridge timeout).
const BRIDGE_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// A connected agent silent this long (it sends heartbeats every 10 s) → `error` `agent-crashed`.
const WATCHDOG_MS: u64 = 60 * 1000;
const HEARTBEAT_MS: u64 = 15 * 1000;
/// When the watchdog looks after a callback ended without a terminal event.
const AFTER_CALLBACK_LOSS_MS: i64 = 500;

/// What the Worker forwards to `/chat`: the user's request plus what only the Worker knows.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatForward {
    #[serde(flatten)]
    pub request: ChatRequest,
    pub user_id: String,
    /// The public origin of the Worker, for the agent's callback URL.
    pub origin: String,
}

/// What the DO knows in memory about the running execution. Lost on eviction; the watchdog then starts over
/// with a fresh grace period, since no callback can be open on a new instance.
struct Live {
    execution_id: String,
    callback_open: bool,
    last_activity_ms: u64,
}

#[durable_object]
pub struct ChatSessionAgent {
    agent: Rc<Agent>,
}

impl DurableObject for ChatSessionAgent {
    fn new(state: State, env: Env) -> Self {
        let log = EventLog::open(state.storage().sql()).expect("the session schema is valid SQL");
        ChatSessionAgent {
            agent: Rc::new(Agent {
                state,
                env,
                log,
                subscribers: Subscribers::default(),
                live: RefCell::new(None),
            }),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        Ok(self
            .agent
            .clone()
            .route(req)
            .await
            .unwrap_or_else(ApiError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.agent.watchdog().await {
            worker::console_error!("watchdog: {e}");
        }
        Response::ok("ok")
    }
}

struct Agent {
    state: State,
    env: Env,
    log: EventLog,
    subscribers: Subscribers,
    live: RefCell<Option<Live>>,
}

impl Agent {
    async fn route(self: Rc<Self>, mut req: Request) -> ApiResult<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/init") => self.handle_init(http::read_json(&mut req).await?),
            (Method::Post, "/chat") => self.handle_chat(http::read_json(&mut req).await?),
            (Method::Get, "/events") => {
                let after = http::parse_after(&req)?;
                self.handle_events(after)
            }
            (Method::Delete, "/events") => self.handle_clear(),
            (Method::Post, "/cancel") => self.handle_cancel().await,
            (Method::Post, "/destroy") => self.handle_destroy().await,
            (Method::Post, "/internal/stream") => self.handle_callback(req).await,
            _ => Err(ApiError::NotFound),
        }
    }

    fn timeout(&self, name: &str, default: u64) -> u64 {
        config::var_u64(&self.env, name, default)
    }

    /// When the watchdog looks next: at the deadline, but at least once per watchdog window (so an agent that
    /// died before calling back is noticed early rather than at the bridge timeout) and once per heartbeat
    /// interval (each look sends the live streams a heartbeat).
    fn watchdog_tick(&self, until_deadline_ms: u64) -> i64 {
        until_deadline_ms
            .min(self.timeout("WATCHDOG_MS", WATCHDOG_MS))
            .min(self.timeout("HEARTBEAT_MS", HEARTBEAT_MS))
            .max(100) as i64
    }

    /// Records the session's owner. Idempotent; a session never changes hands.
    fn handle_init(&self, record: SessionRecord) -> ApiResult<Response> {
        match self.log.meta("userId")? {
            Some(owner) if owner != record.user_id => {
                return Err(ApiError::Conflict("session belongs to another user".into()))
            }
            Some(_) => {}
            None => {
                self.log.set_meta("userId", &record.user_id)?;
                self.log.set_meta("sessionId", &record.id)?;
            }
        }
        Ok(http::no_content())
    }

    fn check_owner(&self, user_id: &str) -> ApiResult<()> {
        if self.log.meta("userId")?.as_deref() != Some(user_id) {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// Starts a turn: a new execution, the user's message in the log, the agent dispatched in the background,
    /// and a response that streams the whole turn.
    fn handle_chat(self: Rc<Self>, forward: ChatForward) -> ApiResult<Response> {
        self.check_owner(&forward.user_id)?;
        if self.log.running()?.is_some() {
            return Err(ApiError::Conflict(
                "an answer is already running in this session".into(),
            ));
        }
        let execution_id = config::new_id();
        let now = config::now_ms();
        self.log.start_execution(&execution_id, now)?;
        *self.live.borrow_mut() = Some(Live {
            execution_id: execution_id.clone(),
            callback_open: false,
            last_activity_ms: now,
        });
        let live = self.subscribers.subscribe();
        self.publish(
            &execution_id,
            &[Event::UserMessage {
                text: forward.request.prompt.clone(),
            }],
        )?;
        let first = Event::Connected {
            execution_id: execution_id.clone(),
        }
        .to_line();
        let agent = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            agent.dispatch(execution_id, forward).await;
        });
        self.stream(stream::iter([first]), Some(live))
    }

    /// `GET /events?after=N`: the stored tail, then live events while an execution runs. The tail ends at the
    /// newest seq at the moment of subscribing, and both happen with no await in between, so nothing falls
    /// through the gap or arrives twice. The first page goes out at once; later pages are read as the client
    /// takes them (see [`Replay`]).
    fn handle_events(self: Rc<Self>, after: u64) -> ApiResult<Response> {
        let mut replay = Replay::new(after, self.log.last_seq());
        let first = replay.next_page(&self.log)?.unwrap_or_default();
        let live = self.log.running()?.map(|_| self.subscribers.subscribe());
        let rest = match replay.is_done() {
            true => stream::empty().boxed_local(),
            false => self.clone().replay_pages(replay),
        };
        self.stream(stream::iter([first]).chain(rest), live)
    }

    /// The rest of a replay, one page per read. A failing read ends the stream (logged); the client resumes
    /// from the last seq it got.
    fn replay_pages(self: Rc<Self>, replay: Replay) -> LocalBoxStream<'static, Vec<u8>> {
        stream::unfold(replay, move |mut replay| {
            let agent = self.clone();
            async move {
                match replay.next_page(&agent.log) {
                    Ok(Some(page)) => Some((page, replay)),
                    Ok(None) => None,
                    Err(e) => {
                        worker::console_error!("replay: {e}");
                        None
                    }
                }
            }
        })
        .boxed_local()
    }

    /// An NDJSON response: `head` (what is already known), then live chunks until the execution ends.
    fn stream(
        &self,
        head: impl futures::Stream<Item = Vec<u8>> + 'static,
        live: Option<Subscription>,
    ) -> ApiResult<Response> {
        let head = head.filter(|c| futures::future::ready(!c.is_empty()));
        let body = match live {
            Some(live) => head.chain(live).boxed_local(),
            None => head.boxed_local(),
        };
        http::ndjson(body.map(Ok))
    }

    fn handle_clear(&self) -> ApiResult<Response> {
        if self.log.running()?.is_some() {
            return Err(ApiError::Conflict(
                "cannot clear while an answer is running".into(),
            ));
        }
        self.log.clear()?;
        Ok(http::no_content())
    }

    /// Stops the running execution: ends it with `done` `cancelled`, then kills the agent's process group in the
    /// sandbox; the answer comes once the process is gone.
    async fn handle_cancel(&self) -> ApiResult<Response> {
        let Some(run) = self.log.running()? else {
            return Ok(http::json(200, &serde_json::json!({"cancelled": false})));
        };
        // The execution ends first, so whatever the dying agent still sends is refused rather than stored.
        self.finish(&run.id, Event::cancelled())?;
        self.kill_agent(&run).await;
        Ok(http::json(200, &serde_json::json!({"cancelled": true})))
    }

    /// The session was deleted: stop anything running and erase the DO's storage.
    async fn handle_destroy(&self) -> ApiResult<Response> {
        self.handle_cancel().await?;
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        Ok(http::no_content())
    }

    fn sandbox(&self) -> Result<SandboxClient, SandboxError> {
        let session_id = self
            .log
            .meta("sessionId")
            .ok()
            .flatten()
            .unwrap_or_default();
        SandboxClient::for_sandbox(&self.env, &sessions::sandbox_id(&session_id))
    }

    /// How the agent's process ended, if it was started and is no longer running.
    async fn agent_exited(&self, run: &Execution) -> Option<String> {
        let process_id = run.process_id.as_ref()?;
        let status = match self.sandbox() {
            Ok(sandbox) => sandbox.process_status(process_id).await,
            Err(e) => Err(e),
        };
        match status {
            Ok(status) => (!status.is_running()).then(|| status.describe()),
            Err(e) => {
                worker::console_warn!("watchdog: cannot read the agent's status: {e}");
                None
            }
        }
    }

    /// Kills the agent's process group in the sandbox, if it was started. Failures are logged: the execution
    /// ends either way.
    async fn kill_agent(&self, run: &Execution) {
        let Some(process_id) = &run.process_id else {
            return;
        };
        let killed = match self.sandbox() {
            Ok(sandbox) => sandbox.kill_process(process_id).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = killed {
            worker::console_error!("killing the agent: {e}");
        }
    }

    /// Appends events to the log and sends their lines to every subscriber.
    fn publish(&self, execution_id: &str, events: &[Event]) -> ApiResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut chunk = Vec::new();
        self.log.append(execution_id, events, &mut chunk)?;
        for event in events {
            if let Some(id) = event.sdk_session_id() {
                self.log.set_meta("sdkSessionId", id)?;
            }
        }
        self.subscribers.publish(chunk);
        Ok(())
    }

    /// Ends `execution_id` with `terminal` if it is still the running one; returns whether it was.
    fn finish(&self, execution_id: &str, terminal: Event) -> ApiResult<bool> {
        match self.log.running()? {
            Some(run) if run.id == execution_id => {}
            _ => return Ok(false),
        }
        let error = match &terminal {
            Event::Error { error, .. } => Some(error.clone()),
            _ => None,
        };
        let outcome = Outcome::of(&terminal);
        // A turn that failed before Claude Code even started its session (e.g. `--resume` of a transcript the
        // sandbox no longer has) must not poison the next turn: it starts a fresh Claude session instead.
        if outcome == Outcome::Failed && !self.log.has_event(execution_id, "session-init")? {
            self.log.delete_meta("sdkSessionId")?;
        }
        self.publish(execution_id, &[terminal])?;
        self.log
            .end_execution(execution_id, outcome, config::now_ms(), error.as_deref())?;
        self.live.borrow_mut().take();
        self.subscribers.close_all();
        Ok(true)
    }

    /// Starts the agent for one execution. Every failure ends the execution with `dispatch-failed` and a message
    /// safe to show; the detail goes to the log.
    async fn dispatch(&self, execution_id: String, forward: ChatForward) {
        if let Err(e) = self
            .state
            .storage()
            .set_alarm(self.watchdog_tick(self.timeout("BRIDGE_TIMEOUT_MS", BRIDGE_TIMEOUT_MS)))
            .await
        {
            worker::console_error!("dispatch: cannot arm the watchdog: {e}");
        }
        let outcome = self.try_dispatch(&execution_id, &forward).await;
        let message = match outcome {
            Ok(process_id) => {
                if let Err(e) = self.log.set_process(&execution_id, &process_id) {
                    worker::console_error!("dispatch: {e}");
                }
                return;
            }
            Err(Dispatch::Refused(message)) => message,
            Err(Dispatch::Failed(detail)) => {
                worker::console_error!("dispatch failed: {detail}");
                "The sandbox could not start the agent. Try again in a moment.".to_string()
            }
        };
        if let Err(e) = self.finish(
            &execution_id,
            Event::error(ErrorCode::DispatchFailed, message),
        ) {
            worker::console_error!("dispatch: {e}");
        }
    }

    async fn try_dispatch(
        &self,
        execution_id: &str,
        forward: &ChatForward,
    ) -> Result<String, Dispatch> {
        let session_id = &forward.request.session_id;
        let session = sessions::load(&self.env, session_id)
            .await
            .map_err(|e| Dispatch::Failed(e.to_string()))?
            .ok_or_else(|| Dispatch::Refused("This session no longer exists.".into()))?;
        let user = auth::load_user(&self.env, &forward.user_id)
            .await
            .map_err(|e| Dispatch::Failed(e.to_string()))?
            .ok_or_else(|| {
                Dispatch::Refused("No Claude token is on file. Sign in again.".into())
            })?;
        let secret =
            config::secret(&self.env, "JWT_SECRET").map_err(|e| Dispatch::Failed(e.to_string()))?;
        let claims = ExecutionClaims::new(
            execution_id,
            session_id,
            config::now_secs(),
            EXECUTION_TOKEN_TTL_SECS,
        );
        let stream_token =
            token::sign(&claims, secret.as_bytes()).map_err(|e| Dispatch::Failed(e.to_string()))?;
        let sdk_session_id = self
            .log
            .meta("sdkSessionId")
            .map_err(|e| Dispatch::Failed(e.to_string()))?;

        let sandbox = SandboxClient::for_sandbox(&self.env, &session.sandbox_id)
            .map_err(|e| Dispatch::Failed(e.to_string()))?;
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
            .await
            .map_err(|e| Dispatch::Failed(e.to_string()))?;

        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            env.insert(k.to_string(), v.to_string());
        };
        set("IS_SANDBOX", "1");
        set("CLAUDE_CODE_OAUTH_TOKEN", &user.claude_token);
        set(
            "VF_CALLBACK_URL",
            &format!("{}/internal/stream", forward.origin),
        );
        set("VF_STREAM_JWT", &stream_token);
        set("VF_QUERY_FILE", &query_file);
        set("VF_SESSION_ID", session_id);
        set("VF_EXECUTION_ID", execution_id);
        set(
            "VF_SESSION_MODE",
            match forward.request.mode.unwrap_or_default() {
                SessionMode::Agent => "agent",
                SessionMode::Plan => "plan",
            },
        );
        if let Some(id) = &sdk_session_id {
            set("VF_SDK_SESSION_ID", id);
        }
        if let Some(model) = &forward.request.model {
            set("VF_MODEL", model);
        }
        if let Some(autonomy) = forward.request.autonomy {
            let value = serde_json::to_value(autonomy).expect("enums serialize");
            set("VF_AUTONOMY_MODE", value.as_str().unwrap_or_default());
        }
        if let Some(dir) = config::var(&self.env, "CLAUDE_CONFIG_DIR") {
            set("CLAUDE_CONFIG_DIR", &dir);
        }
        let command = config::var(&self.env, "AGENT_COMMAND").unwrap_or_else(|| "vf-agent".into());
        sandbox
            .start_process(&command, &env)
            .await
            .map_err(|e| Dispatch::Failed(e.to_string()))
    }

    /// `POST /internal/stream`: the agent's callback. The Worker verified the token before waking this DO; it is
    /// checked again here, and bound to the running execution, so a token outlives its execution by nothing.
    async fn handle_callback(&self, mut req: Request) -> ApiResult<Response> {
        let run = match self.callback_execution(&req) {
            Ok(run) => run,
            Err(refused) => {
                // The Worker is still pumping the body into this request: answering first would fail that pump
                // ("Can't read from request stream after response has been sent", which also broke the Worker's
                // next request), so a refused body is read and dropped, as after an execution ends.
                let mut body = req.stream()?;
                while let Some(Ok(_)) = body.next().await {}
                return Err(refused);
            }
        };
        let execution_id = run.id.clone();
        self.log.mark_callback(&execution_id, config::now_ms())?;
        // The execution is running (checked above); on an instance that restarted since, memory starts here.
        self.live.borrow_mut().get_or_insert_with(|| Live {
            execution_id: execution_id.clone(),
            callback_open: true,
            last_activity_ms: config::now_ms(),
        });
        self.touch(&execution_id, Some(true));

        let mut ingest = Ingest {
            framer: LineFramer::default(),
            last_aseq: run.last_aseq.max(0) as u64,
            stored: 0,
            terminal: false,
        };
        let mut body = BodyReader::new(&req)?;
        let mut batch = Vec::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            // Once the execution is over (its terminal event, a cancel, the watchdog), the rest of the body is
            // read and dropped: answering before the body ends would make workerd fail the request stream.
            if ingest.terminal || !self.is_live(&execution_id) {
                continue;
            }
            ingest.push(&chunk, &mut batch);
            self.store_batch(&execution_id, &mut ingest, &mut batch)?;
            if body.backlogged() {
                // More is waiting: let this batch's commit and its bytes to the clients go out before the
                // next (larger) batch takes the thread.
                at_once().await;
            }
        }
        if !ingest.terminal && self.is_live(&execution_id) {
            ingest.finish(&mut batch);
            self.store_batch(&execution_id, &mut ingest, &mut batch)?;
        }
        self.touch(&execution_id, Some(false));
        if !ingest.terminal && self.is_live(&execution_id) {
            // The body ended without a terminal event: the agent died, or its connection broke and it will
            // reconnect and resend. The watchdog tells which, soon: at once if the process is gone, else after
            // the watchdog window without a new callback.
            self.state
                .storage()
                .set_alarm(AFTER_CALLBACK_LOSS_MS)
                .await?;
        }
        Ok(http::json(
            200,
            &CallbackReceipt {
                stored: ingest.stored,
                terminal: ingest.terminal,
            },
        ))
    }

    /// The running execution a callback's token names, if the token is valid and names this session and it.
    fn callback_execution(&self, req: &Request) -> ApiResult<Execution> {
        let bearer = http::bearer(req).ok_or(ApiError::Unauthorized)?;
        let secret = config::secret(&self.env, "JWT_SECRET")?;
        let claims: ExecutionClaims = token::verify(&bearer, secret.as_bytes(), config::now_secs())
            .map_err(|_| ApiError::Unauthorized)?;
        self.log
            .running()?
            .filter(|r| r.id == claims.execution_id)
            .filter(|_| {
                self.log.meta("sessionId").ok().flatten().as_deref()
                    == Some(claims.session_id.as_str())
            })
            .ok_or(ApiError::NotFound)
    }

    /// Whether `execution_id` is the running execution, from memory (no query on the per-chunk path): `finish`
    /// clears it, and a callback to a fresh instance sets it.
    fn is_live(&self, execution_id: &str) -> bool {
        self.live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.execution_id == execution_id)
    }

    /// Stores and publishes one batch of agent events; ends the execution at a terminal event.
    fn store_batch(
        &self,
        execution_id: &str,
        ingest: &mut Ingest,
        batch: &mut Vec<Event>,
    ) -> ApiResult<()> {
        self.touch(execution_id, None);
        if batch.is_empty() {
            return Ok(());
        }
        let terminal = match batch.last() {
            Some(e) if e.is_terminal() => batch.pop(),
            _ => None,
        };
        self.publish(execution_id, batch)?;
        ingest.stored += batch.len() as u64;
        batch.clear();
        self.log.set_last_aseq(execution_id, ingest.last_aseq)?;
        if let Some(terminal) = terminal {
            ingest.stored += 1;
            self.finish(execution_id, terminal)?;
        }
        Ok(())
    }

    /// Notes producer activity for the watchdog.
    fn touch(&self, execution_id: &str, callback_open: Option<bool>) {
        if let Some(live) = self
            .live
            .borrow_mut()
            .as_mut()
            .filter(|l| l.execution_id == execution_id)
        {
            live.last_activity_ms = config::now_ms();
            if let Some(open) = callback_open {
                live.callback_open = open;
            }
        }
    }

    /// The alarm: ends an execution whose agent never called back (`timeout`) or went silent (`agent-crashed`),
    /// and re-arms itself while one runs.
    async fn watchdog(&self) -> ApiResult<()> {
        let Some(run) = self.log.running()? else {
            return Ok(());
        };
        // Keeps idle streams open through proxies, and prunes subscribers whose client is gone.
        self.subscribers.publish(Event::Heartbeat.to_line());
        let now = config::now_ms();
        let bridge = self.timeout("BRIDGE_TIMEOUT_MS", BRIDGE_TIMEOUT_MS);
        let watchdog = self.timeout("WATCHDOG_MS", WATCHDOG_MS);
        let callback_open = self
            .live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.execution_id == run.id && l.callback_open);
        if !callback_open {
            if let Some(status) = self.agent_exited(&run).await {
                worker::console_warn!("watchdog: the agent exited without finishing ({status})");
                self.finish(
                    &run.id,
                    Event::error(
                        ErrorCode::AgentCrashed,
                        "The agent stopped before finishing its answer.",
                    ),
                )?;
                return Ok(());
            }
        }
        let verdict = {
            let mut live = self.live.borrow_mut();
            match live.as_mut().filter(|l| l.execution_id == run.id) {
                // A new instance (the DO restarted): no callback can be open here. Give the agent one watchdog
                // window to reconnect before declaring it dead.
                None => {
                    *live = Some(Live {
                        execution_id: run.id.clone(),
                        callback_open: false,
                        last_activity_ms: now,
                    });
                    Verdict::Wait(watchdog)
                }
                Some(l) if run.callback_at.is_none() && !l.callback_open => {
                    let deadline = run.started_at.max(0) as u64 + bridge;
                    if now >= deadline {
                        Verdict::End(Event::error(
                            ErrorCode::Timeout,
                            "The agent did not start in time. Try again.",
                        ))
                    } else {
                        Verdict::Wait(deadline - now)
                    }
                }
                Some(l) => {
                    let deadline = l.last_activity_ms + watchdog;
                    if now >= deadline {
                        Verdict::End(Event::error(
                            ErrorCode::AgentCrashed,
                            "The agent stopped responding.",
                        ))
                    } else {
                        Verdict::Wait(deadline - now)
                    }
                }
            }
        };
        match verdict {
            Verdict::End(event) => {
                self.kill_agent(&run).await;
                self.finish(&run.id, event)?;
            }
            Verdict::Wait(ms) => {
                self.state
                    .storage()
                    .set_alarm(self.watchdog_tick(ms))
                    .await?;
            }
        }
        Ok(())
    }
}

/// The callback body, read so that a burst is stored in a few large transactions and a lone line at once.
///
/// Each transaction costs a commit (the runtime writes and syncs the pages it touched), so the DO should store
/// as many lines per turn as have arrived, but never wait for lines that have not. Every read races a zero
/// timer: a read whose bytes were already there completes first. When the first read of a batch loses, the body
/// has paused, and whatever comes next goes out alone, at once: it is what a watching client waits for. When it
/// wins, a burst is on, and the batch takes every read that wins after it, up to a limit that starts small after
/// each pause and doubles while batches fill; the first read to lose stays pending for the next batch. Reads use
/// a BYOB reader: the default one hands out at most 4 KB.
struct BodyReader {
    reader: JsValue,
    read: js_sys::Function,
    /// The buffer for the next read (each read gives it back), the read in flight, and whether the body ended.
    buffer: Option<js_sys::ArrayBuffer>,
    pending: Option<wasm_bindgen_futures::JsFuture>,
    ended: bool,
    limit: usize,
}

impl BodyReader {
    const READ_BYTES: u32 = 64 * 1024;
    const MIN_BATCH: usize = 16 * 1024;
    const MAX_BATCH: usize = 1024 * 1024;

    fn new(req: &Request) -> worker::Result<Self> {
        let body: JsValue = req.inner().body().map_or(JsValue::NULL, Into::into);
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"mode".into(), &"byob".into())?;
        let get_reader: js_sys::Function =
            js_sys::Reflect::get(&body, &"getReader".into())?.dyn_into()?;
        let reader = get_reader.call1(&body, &options)?;
        let read = js_sys::Reflect::get(&reader, &"read".into())?.dyn_into()?;
        Ok(BodyReader {
            reader,
            read,
            buffer: None,
            pending: None,
            ended: false,
            limit: Self::MIN_BATCH,
        })
    }

    /// Whether a burst is on (the last batches filled up).
    fn backlogged(&self) -> bool {
        self.limit > Self::MIN_BATCH
    }

    /// Everything of the body that has arrived (at least one read's worth, at most about the batch limit);
    /// None at its end.
    async fn next(&mut self) -> Option<worker::Result<Vec<u8>>> {
        match self.batch().await {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => None,
            Err(e) => {
                self.ended = true;
                Some(Err(e.into()))
            }
        }
    }

    async fn batch(&mut self) -> Result<Option<Vec<u8>>, JsValue> {
        if self.ended {
            return Ok(None);
        }
        let mut read = match self.pending.take() {
            Some(read) => read,
            None => self.start_read()?,
        };
        let first = match futures::future::select(&mut read, at_once()).await {
            futures::future::Either::Left((first, _)) => first?,
            futures::future::Either::Right(_) => {
                self.limit = Self::MIN_BATCH;
                return self.finish_read(read.await?);
            }
        };
        let Some(mut bytes) = self.finish_read(first)? else {
            return Ok(None);
        };
        while bytes.len() < self.limit {
            let mut read = self.start_read()?;
            match futures::future::select(&mut read, at_once()).await {
                futures::future::Either::Left((more, _)) => match self.finish_read(more?)? {
                    Some(more) => bytes.extend_from_slice(&more),
                    None => return Ok(Some(bytes)),
                },
                futures::future::Either::Right(_) => {
                    self.pending = Some(read);
                    return Ok(Some(bytes));
                }
            }
        }
        self.limit = (self.limit * 2).min(Self::MAX_BATCH);
        Ok(Some(bytes))
    }

    fn start_read(&mut self) -> Result<wasm_bindgen_futures::JsFuture, JsValue> {
        let buffer = self
            .buffer
            .take()
            .unwrap_or_else(|| js_sys::ArrayBuffer::new(Self::READ_BYTES));
        let view = js_sys::Uint8Array::new(&buffer);
        let read: js_sys::Promise = self.read.call1(&self.reader, &view)?.dyn_into()?;
        Ok(read.into())
    }

    /// The bytes of a finished read (None: the body ended); takes the buffer back for the next read.
    fn finish_read(&mut self, result: JsValue) -> Result<Option<Vec<u8>>, JsValue> {
        if js_sys::Reflect::get(&result, &"done".into())?.is_truthy() {
            self.ended = true;
            return Ok(None);
        }
        let filled: js_sys::Uint8Array =
            js_sys::Reflect::get(&result, &"value".into())?.dyn_into()?;
        self.buffer = Some(filled.buffer());
        Ok(Some(filled.to_vec()))
    }
}

/// A timer that fires once the runtime has run everything already due: a read that loses the race to it was
/// waiting for bytes that had not arrived.
fn at_once() -> worker::Delay {
    worker::Delay::from(std::time::Duration::ZERO)
}

enum Verdict {
    End(Event),
    Wait(u64),
}

enum Dispatch {
    /// A reason the user can act on.
    Refused(String),
    /// An internal failure (logged, shown generically).
    Failed(String),
}

/// The state of one callback body being read: framing, duplicate suppression, counts.
struct Ingest {
    framer: LineFramer,
    last_aseq: u64,
    stored: u64,
    terminal: bool,
}

impl Ingest {
    fn push(&mut self, chunk: &[u8], batch: &mut Vec<Event>) {
        let Ingest {
            framer,
            last_aseq,
            terminal,
            ..
        } = self;
        framer.push(chunk, |line| accept(line, last_aseq, terminal, batch));
    }

    fn finish(&mut self, batch: &mut Vec<Event>) {
        let Ingest {
            framer,
            last_aseq,
            terminal,
            ..
        } = self;
        framer.finish(|line| accept(line, last_aseq, terminal, batch));
    }
}

/// Turns one agent line into at most one event to store. Heartbeats only prove liveness; `connected` and
/// `user-message` are the DO's to write, never the agent's; a line already stored (by `aseq`) is dropped; a line
/// that is not an event is skipped with a log line; an over-long line leaves a visible marker.
fn accept(
    line: Result<&[u8], FrameError>,
    last_aseq: &mut u64,
    terminal: &mut bool,
    batch: &mut Vec<Event>,
) {
    if *terminal {
        return;
    }
    let event = match line {
        Ok(bytes) => match serde_json::from_slice::<AgentLine>(bytes) {
            Ok(AgentLine { aseq, event }) => {
                if let Some(n) = aseq {
                    if n <= *last_aseq {
                        return;
                    }
                    *last_aseq = n;
                }
                event
            }
            Err(e) => {
                worker::console_warn!("callback: skipped a line that is not an event ({} bytes): {e}", bytes.len());
                return;
            }
        },
        Err(FrameError::LineTooLong { len, max }) => Event::TextDelta {
            text: format!("\n\n[VaporForge: an agent event of {len} bytes exceeded the {max}-byte limit and was left out]\n\n"),
        },
    };
    match event {
        Event::Heartbeat | Event::Connected { .. } | Event::UserMessage { .. } => {}
        event => {
            *terminal = event.is_terminal();
            batch.push(event);
        }
    }
}
