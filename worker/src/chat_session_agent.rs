//! `ChatSessionAgent`: the Durable Object that owns one chat session's stream.
//!
//! It starts the agent in the sandbox, receives the agent's NDJSON on the execution-token-secured callback,
//! appends every event to SQLite before anyone sees it, and fans it out to every watching client. The stream
//! belongs to the DO, not to a browser tab: a client that goes away loses nothing, and any client can resume
//! with `after=<seq>`. An alarm is the watchdog, so a dead or silent agent ends its execution even if the DO
//! was evicted in between.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures::channel::oneshot;

use futures::stream::{self, LocalBoxStream};
use futures::StreamExt;
use vf_protocol::api::{
    AgentDecision, QueuedResponse, SessionRecord, SessionStatus, SessionUpdate, MAX_QUEUED_PROMPTS,
};
use vf_protocol::ingest::Ingest;
use vf_protocol::watchdog::{self, Producer, Timeouts, Verdict};
use vf_protocol::{export, session_list, DequeueReason, Envelope, Event, StoredLines};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, State};

use crate::approval_log::ApprovalLog;
use crate::config;
use crate::dispatch::{self, ChatForward};
use crate::error::{ApiError, ApiResult};
use crate::event_log::{EventLog, Execution, Outcome, Replay};
use crate::fanout::{Subscribers, Subscription};
use crate::http;
use crate::idempotency::{Answered, Idempotency};
use crate::prompt_queue::PromptQueue;
use crate::sandbox::SandboxClient;
use crate::session_index;

mod approvals;
mod callback;

pub use approvals::ApproveForward;

/// No callback within this window after dispatch → `error` `timeout` (the seed's bridge timeout).
const BRIDGE_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// A connected agent silent this long (it sends heartbeats every 10 s) → `error` `agent-crashed`.
const WATCHDOG_MS: u64 = 60 * 1000;
const HEARTBEAT_MS: u64 = 15 * 1000;
/// When the watchdog looks after a callback ended without a terminal event.
const AFTER_CALLBACK_LOSS_MS: i64 = 500;

/// What the DO knows in memory about the running execution: its stream's mark (shared by every callback
/// connection) and its producer. Lost on eviction; it is rebuilt from the log (the mark) and the watchdog gives
/// the agent a fresh window, since no callback can be open on a new instance.
struct Live {
    execution_id: String,
    ingest: Ingest,
    producer: Producer,
}

#[durable_object]
pub struct ChatSessionAgent {
    agent: Rc<Agent>,
}

impl DurableObject for ChatSessionAgent {
    fn new(state: State, env: Env) -> Self {
        let log = EventLog::open(state.storage().sql()).expect("the session schema is valid SQL");
        let approvals =
            ApprovalLog::open(state.storage().sql()).expect("the approvals schema is valid SQL");
        let queue =
            PromptQueue::open(state.storage().sql()).expect("the queue schema is valid SQL");
        let keys = Idempotency::open(state.storage().sql()).expect("the keys schema is valid SQL");
        ChatSessionAgent {
            agent: Rc::new_cyclic(|me| Agent {
                state,
                env,
                log,
                approvals,
                queue,
                keys,
                subscribers: Subscribers::default(),
                live: RefCell::new(None),
                waiters: RefCell::default(),
                me: me.clone(),
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
    approvals: ApprovalLog,
    queue: PromptQueue,
    keys: Idempotency,
    subscribers: Subscribers,
    live: RefCell<Option<Live>>,
    /// The agent's polls waiting for a decision, by approval id (in memory: after a restart the agent asks
    /// again and finds the decision in SQLite).
    waiters: RefCell<HashMap<String, Vec<oneshot::Sender<AgentDecision>>>>,
    /// This agent, for the tasks a turn spawns (a queued turn starts from `finish`, which has only `&self`).
    me: Weak<Agent>,
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
            (Method::Get, "/internal/stream") => self.handle_mark(&req),
            (Method::Post, "/approve") => self.handle_approve(http::read_json(&mut req).await?),
            (Method::Delete, path) if path.starts_with("/queue/") => {
                self.handle_dequeue(&path["/queue/".len()..])
            }
            (Method::Post, "/export") => self.handle_export(http::read_json(&mut req).await?),
            (Method::Get, "/rules") => self.handle_rules(),
            (Method::Delete, "/rules") => self.handle_clear_rules(&req),
            (Method::Get, path) if path.starts_with("/internal/approvals/") => {
                let id = &path["/internal/approvals/".len()..];
                self.handle_decision(&req, id).await
            }
            _ => Err(ApiError::NotFound),
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            bridge_ms: config::var_u64(&self.env, "BRIDGE_TIMEOUT_MS", BRIDGE_TIMEOUT_MS),
            watchdog_ms: config::var_u64(&self.env, "WATCHDOG_MS", WATCHDOG_MS),
            heartbeat_ms: config::var_u64(&self.env, "HEARTBEAT_MS", HEARTBEAT_MS),
        }
    }

    /// Arms the watchdog to look again within `wait_ms`.
    async fn arm_watchdog(&self, wait_ms: u64) -> ApiResult<()> {
        let tick = self.timeouts().tick(wait_ms);
        self.state.storage().set_alarm(tick as i64).await?;
        Ok(())
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
                self.log.set_meta("sandboxId", &record.sandbox_id)?;
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

    /// `POST /chat`: starts a turn, queues the prompt while an answer runs (`"queue": true`; else 409), or,
    /// for an idempotency key already seen, answers what its first request got without starting anything.
    fn handle_chat(self: Rc<Self>, forward: ChatForward) -> ApiResult<Response> {
        self.check_owner(&forward.user_id)?;
        if let Some(key) = &forward.request.idempotency_key {
            match self.keys.recall(key)? {
                Some(Answered::Started { after }) => return self.handle_events(after),
                Some(Answered::Queued(queued)) => return Ok(http::json(202, &queued)),
                None => {}
            }
        }
        if let Some(run) = self.log.running()? {
            if !forward.request.queue {
                return Err(ApiError::Conflict(
                    "an answer is already running in this session".into(),
                ));
            }
            return self.enqueue(&run.id, forward);
        }
        let live = self.subscribers.subscribe();
        let execution_id = self.start_turn(forward, None)?;
        let first = Event::Connected { execution_id }.to_line();
        self.stream(stream::iter([first]), Some(live))
    }

    /// Starts a turn: a new execution, the user's message in the log (after `dequeued` for a queued prompt),
    /// and the agent dispatched in the background. Returns the execution's id.
    fn start_turn(&self, forward: ChatForward, dequeued: Option<String>) -> ApiResult<String> {
        let execution_id = config::new_id();
        let now = config::now_ms();
        self.log.set_meta("sandboxId", &forward.sandbox_id)?;
        self.log.start_execution(&execution_id, now)?;
        *self.live.borrow_mut() = Some(Live {
            execution_id: execution_id.clone(),
            ingest: Ingest::new(0),
            producer: Producer {
                callback_open: false,
                last_activity_ms: now,
            },
        });
        if let (Some(key), None) = (&forward.request.idempotency_key, &dequeued) {
            let answered = Answered::Started {
                after: self.log.last_seq(),
            };
            self.keys.remember(key, &answered, now)?;
        }
        if self.log.meta("firstPrompt")?.is_none() {
            let start: String = forward.request.prompt.chars().take(200).collect();
            self.log.set_meta("firstPrompt", &start)?;
        }
        let mut events = Vec::with_capacity(2);
        if let Some(queue_id) = dequeued {
            events.push(Event::Dequeued {
                queue_id,
                reason: DequeueReason::Started,
            });
        }
        events.push(Event::UserMessage {
            text: forward.request.prompt.clone(),
        });
        self.publish(&execution_id, &events)?;
        let agent = self.me.upgrade().expect("the agent outlives its requests");
        let id = execution_id.clone();
        wasm_bindgen_futures::spawn_local(async move {
            agent.dispatch(id, forward).await;
        });
        Ok(execution_id)
    }

    /// Queues a prompt behind the running execution: 202 with its place, 429 past [`MAX_QUEUED_PROMPTS`].
    fn enqueue(&self, running: &str, forward: ChatForward) -> ApiResult<Response> {
        if self.queue.len()? >= MAX_QUEUED_PROMPTS {
            return Err(ApiError::TooManyRequests(format!(
                "{MAX_QUEUED_PROMPTS} prompts are already waiting in this session"
            )));
        }
        let queue_id = config::new_id();
        let position = self.queue.push(&queue_id, &forward)? as u32;
        let queued = QueuedResponse {
            queue_id: queue_id.clone(),
            position,
        };
        if let Some(key) = &forward.request.idempotency_key {
            self.keys
                .remember(key, &Answered::Queued(queued.clone()), config::now_ms())?;
        }
        self.publish(
            running,
            &[Event::Queued {
                queue_id,
                text: forward.request.prompt,
            }],
        )?;
        Ok(http::json(202, &queued))
    }

    /// `DELETE /queue/{id}`: the prompt leaves the queue before it starts (404 if it is not waiting).
    fn handle_dequeue(&self, queue_id: &str) -> ApiResult<Response> {
        if !self.queue.remove(queue_id)? {
            return Err(ApiError::NotFound);
        }
        self.announce_dequeued(vec![queue_id.to_string()])?;
        Ok(http::no_content())
    }

    /// Empties the queue (the session is cleared or deleted).
    fn drop_queue(&self) -> ApiResult<()> {
        let dropped = self.queue.clear()?;
        self.announce_dequeued(dropped)
    }

    /// `dequeued` `cancelled` for each id, in the running execution (with none running, nobody is listening
    /// live and the events only go to the log).
    fn announce_dequeued(&self, queue_ids: Vec<String>) -> ApiResult<()> {
        let events: Vec<Event> = queue_ids
            .into_iter()
            .map(|queue_id| Event::Dequeued {
                queue_id,
                reason: DequeueReason::Cancelled,
            })
            .collect();
        let execution_id = self.log.running()?.map(|r| r.id).unwrap_or_default();
        self.publish(&execution_id, &events)
    }

    /// After an answer ended: the next queued prompt starts as its own turn. A failure is logged (the prompt
    /// is lost, and says so in the log).
    fn start_next(&self) {
        match self.queue.pop_front() {
            Ok(None) => {}
            Ok(Some((queue_id, forward))) => {
                if let Err(e) = self.start_turn(forward, Some(queue_id)) {
                    worker::console_error!("starting a queued prompt: {e}");
                }
            }
            Err(e) => worker::console_error!("reading the queue: {e}"),
        }
    }

    /// `POST /export` (the session's record): the stored transcript as a Markdown download.
    fn handle_export(&self, record: SessionRecord) -> ApiResult<Response> {
        let mut replay = Replay::new(0, self.log.last_seq());
        let mut lines = Vec::new();
        while let Some(page) = replay.next_page(&self.log)? {
            lines.extend_from_slice(&page);
        }
        let events: Vec<Envelope> = lines
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        let title = session_list::title(&record.name, self.log.meta("firstPrompt")?.as_deref());
        http::markdown_download(
            export::markdown(&title, &events),
            &format!("vaporforge-{}.md", record.id),
        )
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
        self.drop_queue()?;
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
        // First, so that the cancel below starts nothing.
        self.drop_queue()?;
        self.handle_cancel().await?;
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        Ok(http::no_content())
    }

    /// The session's sandbox, as the Worker named it (at creation, and with every chat).
    fn sandbox(&self) -> ApiResult<SandboxClient> {
        let sandbox_id = self
            .log
            .meta("sandboxId")?
            .ok_or_else(|| ApiError::Internal("no sandbox is recorded for this session".into()))?;
        Ok(SandboxClient::for_sandbox(&self.env, &sandbox_id)?)
    }

    /// How the agent's process ended, if it was started and is no longer running.
    async fn agent_exited(&self, run: &Execution) -> Option<String> {
        let process_id = run.process_id.as_ref()?;
        let status = match self.sandbox() {
            Ok(sandbox) => sandbox
                .process_status(process_id)
                .await
                .map_err(ApiError::from),
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
            Ok(sandbox) => sandbox
                .kill_process(process_id)
                .await
                .map(drop)
                .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = killed {
            worker::console_error!("killing the agent: {e}");
        }
    }

    /// Appends events to the log and sends their lines to every subscriber, in order. A live-only event (a
    /// `status`) is sent without a seq and never stored.
    fn publish(&self, execution_id: &str, events: &[Event]) -> ApiResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut chunk = Vec::new();
        for run in events.chunk_by(|a, b| a.is_persisted() == b.is_persisted()) {
            if run[0].is_persisted() {
                self.log.append(execution_id, run, &mut chunk)?;
            } else {
                let lines = StoredLines::new(execution_id);
                for event in run {
                    chunk.extend_from_slice(lines.live(event).as_bytes());
                    chunk.push(b'\n');
                }
            }
        }
        let mut status = None;
        for event in events {
            if let Some(id) = event.sdk_session_id() {
                self.log.set_meta("sdkSessionId", id)?;
            }
            if let Event::Done {
                cost_usd: Some(cost),
                ..
            } = event
            {
                let total = self.cost_usd()? + cost;
                self.log.set_meta("costUsd", &total.to_string())?;
            }
            status = session_list::status_after(event).or(status);
        }
        self.subscribers.publish(chunk);
        if let Some(status) = status {
            self.report(status)?;
        }
        Ok(())
    }

    /// The sum of the session's answers' costs.
    fn cost_usd(&self) -> ApiResult<f64> {
        Ok(self
            .log
            .meta("costUsd")?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0.0))
    }

    /// Tells the user's session index what the session is doing now (in the background: a lost update is
    /// followed by the next transition's, which carries the whole state).
    fn report(&self, status: SessionStatus) -> ApiResult<()> {
        let (Some(user_id), Some(id)) = (self.log.meta("userId")?, self.log.meta("sessionId")?)
        else {
            return Ok(());
        };
        let update = SessionUpdate {
            id,
            version: self.log.last_seq(),
            status,
            last_activity_at: config::now_ms(),
            cost_usd: self.cost_usd()?,
            first_prompt: self.log.meta("firstPrompt")?,
        };
        let env = self.env.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = session_index::update(&env, &user_id, &update).await {
                worker::console_error!("session index update: {e}");
            }
        });
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
        self.deny_pending(execution_id)?;
        self.publish(execution_id, &[terminal])?;
        self.log
            .end_execution(execution_id, outcome, config::now_ms(), error.as_deref())?;
        self.live.borrow_mut().take();
        self.subscribers.close_all();
        self.start_next();
        Ok(true)
    }

    /// Starts the agent for one execution. Every failure ends the execution with `dispatch-failed` and a message
    /// safe to show; the detail goes to the log.
    async fn dispatch(&self, execution_id: String, forward: ChatForward) {
        if let Err(e) = self.arm_watchdog(self.timeouts().bridge_ms).await {
            worker::console_error!("dispatch: cannot arm the watchdog: {e}");
        }
        let started = match self.log.meta("sdkSessionId") {
            Ok(sdk_session_id) => {
                dispatch::start_agent(&self.env, &execution_id, &forward, sdk_session_id).await
            }
            Err(e) => Err(e.into()),
        };
        let message = match started {
            Ok(process_id) => match self.log.set_process(&execution_id, &process_id) {
                Ok(()) => return,
                // Without its process id the watchdog cannot check or kill the agent: the turn cannot be run
                // safely, so it ends now (the agent's callback will be refused).
                Err(e) => dispatch::DispatchError::from(e).user_message(),
            },
            Err(e) => e.user_message(),
        };
        if let Err(e) = self.finish(
            &execution_id,
            Event::error(vf_protocol::ErrorCode::DispatchFailed, message),
        ) {
            worker::console_error!("dispatch: {e}");
        }
    }

    /// The in-memory state of `run`, created from the log if this instance has none for it (it restarted since).
    fn live_for(&self, run: &Execution) -> RefMut<'_, Live> {
        let mut live = self.live.borrow_mut();
        if live.as_ref().is_none_or(|l| l.execution_id != run.id) {
            *live = Some(Live {
                execution_id: run.id.clone(),
                ingest: Ingest::new(run.last_aseq.max(0) as u64),
                producer: Producer {
                    callback_open: false,
                    last_activity_ms: config::now_ms(),
                },
            });
        }
        RefMut::map(live, |l| l.as_mut().expect("set above"))
    }

    /// Whether `execution_id` is the running execution, from memory (no query on the per-chunk path): `finish`
    /// clears it, and a callback to a fresh instance sets it.
    fn is_live(&self, execution_id: &str) -> bool {
        self.live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.execution_id == execution_id)
    }

    /// The alarm: ends an execution whose agent never called back (`timeout`), died or went silent
    /// (`agent-crashed`), and re-arms itself while one runs. The verdict is [`watchdog::verdict`]'s.
    async fn watchdog(&self) -> ApiResult<()> {
        let Some(run) = self.log.running()? else {
            return Ok(());
        };
        // Keeps idle streams open through proxies, and prunes subscribers whose client is gone.
        self.subscribers.publish(Event::Heartbeat.to_line());
        let next_timeout = self.expire_approvals(&run.id, config::now_ms())?;
        let facts = watchdog::Run {
            started_at_ms: run.started_at.max(0) as u64,
            called_back: run.callback_at.is_some(),
            awaiting_user: next_timeout.is_some(),
        };
        let producer = self.producer_of(&run.id);
        let exited = match facts.needs_process_check(producer.as_ref()) {
            true => self.agent_exited(&run).await,
            false => None,
        };
        // The process check awaited: what the DO knows may have moved meanwhile (a callback opened).
        let producer = match exited {
            Some(_) => self.producer_of(&run.id),
            None => producer,
        };
        let timeouts = self.timeouts();
        match watchdog::verdict(
            facts,
            producer.as_ref(),
            exited.as_deref(),
            config::now_ms(),
            timeouts,
        ) {
            Verdict::Wait(ms) => {
                self.arm_watchdog(next_timeout.map_or(ms, |t| t.min(ms)))
                    .await?
            }
            Verdict::Adopt(ms) => {
                // A new instance (the DO restarted): no callback can be open here. The agent gets one window to
                // reconnect before it is declared dead.
                drop(self.live_for(&run));
                self.arm_watchdog(ms).await?;
            }
            Verdict::End { event, kill } => {
                if let Some(status) = exited {
                    worker::console_warn!(
                        "watchdog: the agent exited without finishing ({status})"
                    );
                }
                // The verdict is stored first: an agent that wakes while it is being killed (a frozen process the
                // kernel continues, say) may still say "stopped", and that must not replace why the run ended.
                self.finish(&run.id, event)?;
                if kill {
                    self.kill_agent(&run).await;
                }
            }
        }
        Ok(())
    }

    /// What this instance knows of `execution_id`'s producer (None: nothing, it started since).
    fn producer_of(&self, execution_id: &str) -> Option<Producer> {
        self.live
            .borrow()
            .as_ref()
            .filter(|l| l.execution_id == execution_id)
            .map(|l| l.producer)
    }
}
