//! `use_agent_session`: one chat session's transcript, streams, reconnects and transport, as read-only signals.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::api::{ChatRequest, Invalid, TurnOptions};
use vf_protocol::transcript::{Message, QueuedPrompt, Status};
use vf_protocol::{Envelope, ErrorCode, Event};
use web_sys::{AbortController, AbortSignal, Response};

use crate::api::{self, ApiError, ApiResult};
use crate::conversation::Conversation;
use crate::legacy_ws::{self, ClientMessage, LegacySocket, SocketEvent};
use crate::outbox::{Outbox, Pending};
use crate::reconnect::{Backoff, ConnectionState, Decision, Reconnector, RESUME_BACKOFF};
use crate::transport::{self, Transport};
use crate::{browser, ndjson, notify};

/// What the legacy path says when its socket drops mid-answer.
const LEGACY_DROP: &str = "Connection lost; the legacy path cannot resume.";
/// What the legacy path says when its socket never opened.
const LEGACY_UNREACHABLE: &str = "Could not connect over the legacy WebSocket.";

/// Options of [`use_agent_session_with_options`].
#[derive(Debug, Clone)]
pub struct UseAgentSessionOptions {
    /// Resume backoff of the DO path.
    pub backoff: Backoff,
    /// A live stream silent this long when the tab becomes visible again is presumed dead and resumed.
    pub stale_after_ms: u64,
    /// Sent with every prompt, read at the moment of sending (the prompt box's controls).
    pub turn: Option<Signal<TurnOptions>>,
    /// Ask once for notification permission, and notify when an answer ends in a hidden tab.
    pub notify: bool,
}

impl Default for UseAgentSessionOptions {
    fn default() -> Self {
        UseAgentSessionOptions {
            backoff: RESUME_BACKOFF,
            stale_after_ms: 45_000,
            turn: None,
            notify: true,
        }
    }
}

/// Return type of [`use_agent_session`]: read-only signals to render, and closures to act.
///
/// ```no_run
/// use leptos::prelude::*;
/// use vf_app::hooks::use_agent_session::{use_agent_session, UseAgentSessionReturn};
///
/// #[component]
/// fn Chat(#[prop(into)] session_id: Signal<String>) -> impl IntoView {
///     let UseAgentSessionReturn {
///         messages,
///         is_streaming,
///         send_message,
///         stop,
///         ..
///     } = use_agent_session(session_id);
///     view! {
///         <p>{move || format!("{} messages", messages.get().len())}</p>
///         <button on:click=move |_| send_message("Explain this repository".into())>"Ask"</button>
///         <Show when=move || is_streaming.get()>
///             <button on:click={
///                 let stop = stop.clone();
///                 move |_| stop()
///             }>"Stop"</button>
///         </Show>
///     }
/// }
/// ```
#[derive(Clone)]
pub struct UseAgentSessionReturn<SendFn, StopFn, ClearFn>
where
    SendFn: Fn(String) + Clone + Send + Sync,
    StopFn: Fn() + Clone + Send + Sync,
    ClearFn: Fn() + Clone + Send + Sync,
{
    /// The conversation, in order.
    pub messages: Signal<Vec<Message>>,
    /// Each message on its own: a view of one message hears of its changes only, so an event costs the same at
    /// turn 1 and turn 500 (while an answer streams, every change is to the last message).
    pub message_at: MessageAt,
    /// An answer is being written, or was asked for and has not started yet.
    pub is_streaming: Signal<bool>,
    pub connection: Signal<ConnectionState>,
    /// The last problem worth showing; cleared by the next prompt.
    pub error: Signal<Option<String>>,
    pub transport: Signal<Transport>,
    /// Sends a prompt (ignored while an answer is open).
    pub send_message: SendFn,
    /// Stops the running answer; its terminal event arrives on the stream.
    pub stop: StopFn,
    /// Clears the transcript, on the server too on the DO path.
    pub clear_messages: ClearFn,
    /// Prompts queued on the server behind the running answer, in order.
    pub queued: Signal<Vec<QueuedPrompt>>,
    /// Removes a queued prompt (by its queue id) before it starts.
    pub remove_queued: Callback<String>,
    /// Prompts not yet accepted by the server ("waiting to send"), oldest first.
    pub outbox: Signal<Vec<Pending>>,
    /// Drops a waiting prompt (by its key).
    pub discard_pending: Callback<String>,
    /// Replaces a waiting prompt's text, `(key, text)`; it gets a new key (it is a new prompt).
    pub edit_pending: Callback<(String, String)>,
}

/// The hook with default options.
pub fn use_agent_session(
    session_id: Signal<String>,
) -> UseAgentSessionReturn<
    impl Fn(String) + Clone + Send + Sync,
    impl Fn() + Clone + Send + Sync,
    impl Fn() + Clone + Send + Sync,
> {
    use_agent_session_with_options(session_id, UseAgentSessionOptions::default())
}

/// The hook. Opening a session (and changing `session_id`) loads its history with `events?after=0`, which also
/// joins a running answer live. As in leptos-use, the return holds read-only signals and closures, the write halves
/// stay here, and `on_cleanup` aborts the fetches and closes the socket.
pub fn use_agent_session_with_options(
    session_id: Signal<String>,
    options: UseAgentSessionOptions,
) -> UseAgentSessionReturn<
    impl Fn(String) + Clone + Send + Sync,
    impl Fn() + Clone + Send + Sync,
    impl Fn() + Clone + Send + Sync,
> {
    let agent = Agent::new(session_id, options);

    Effect::new(move |_| {
        session_id.track();
        untrack(|| agent.open());
    });
    let listeners = [
        window_event_listener_untyped("online", move |_| agent.on_online()),
        window_event_listener_untyped("offline", move |_| agent.on_offline()),
        window_event_listener_untyped("visibilitychange", move |_| agent.on_visibility_change()),
        window_event_listener_untyped("focus", move |_| agent.flush()),
    ];
    on_cleanup(move || {
        for listener in listeners {
            listener.remove();
        }
        agent.close();
    });

    UseAgentSessionReturn {
        messages: agent.messages.read_only().into(),
        message_at: agent.message_at,
        is_streaming: agent.busy.read_only().into(),
        connection: agent.connection.read_only().into(),
        error: agent.error.read_only().into(),
        transport: agent.transport.read_only().into(),
        send_message: move |prompt: String| agent.send(prompt),
        stop: move || agent.stop(),
        clear_messages: move || agent.clear(),
        queued: agent.queued.read_only().into(),
        remove_queued: Callback::new(move |queue_id: String| agent.remove_queued(queue_id)),
        outbox: agent.outbox.read_only().into(),
        discard_pending: Callback::new(move |key: String| agent.discard(&key)),
        edit_pending: Callback::new(move |(key, text): (String, String)| agent.edit(&key, text)),
    }
}

/// A fresh idempotency key for a prompt.
fn new_key() -> String {
    let part = || (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!(
        "{:x}-{:08x}{:08x}{:08x}",
        browser::now_ms(),
        part(),
        part(),
        part()
    )
}

/// Which route a stream reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    /// `POST /api/v15/chat`: one turn, from its `user-message`.
    Chat,
    /// `GET …/events?after=N`: everything after N, then the running answer.
    Events,
}

/// The open connection of a session. Dropping it ends it.
enum Link {
    Fetch(AbortController),
    Socket(LegacySocket),
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Link::Fetch(controller) = self {
            controller.abort();
        }
    }
}

/// The hook's non-reactive state (it holds browser objects, so it stays on this thread).
struct Local {
    conversation: Conversation,
    reconnect: Reconnector,
    /// Bumped whenever the link is replaced or dropped on purpose.
    generation: u64,
    link: Option<Link>,
    retry: Option<TimeoutHandle>,
    last_activity_ms: u64,
    /// The transport of the current session is resolved.
    ready: bool,
    /// The outbox entry being sent (its key), if one is.
    sending: Option<String>,
    /// Failed attempts to send the outbox's first entry, for the backoff.
    outbox_failures: u32,
    outbox_retry: Option<TimeoutHandle>,
}

impl Local {
    /// Ends the current link and any scheduled retry; returns the new generation.
    fn detach(&mut self) -> u64 {
        self.generation += 1;
        self.link = None;
        if let Some(retry) = self.retry.take() {
            retry.clear();
        }
        self.generation
    }

    /// Replaces the link with a new abortable fetch.
    fn attach_fetch(&mut self) -> Option<(u64, AbortSignal)> {
        let generation = self.detach();
        let controller = AbortController::new().ok()?;
        let signal = controller.signal();
        self.link = Some(Link::Fetch(controller));
        Some((generation, signal))
    }
}

/// Handles to the hook's state; `Copy`, so every callback takes its own. Every stream gets a generation number; a
/// callback of a replaced stream finds its generation outdated and does nothing, so a late chunk can never land in
/// the wrong session.
/// One signal per message index, for the life of the hook: index `i` is always the same signal (a view keyed by
/// index keeps it), set only when message `i` changes, and `None` once the conversation is shorter than `i`.
#[derive(Clone, Copy)]
pub struct MessageAt(StoredValue<Vec<ArcRwSignal<Option<Message>>>>);

impl MessageAt {
    /// Message `index`, changing only when it does.
    pub fn get(self, index: usize) -> Signal<Option<Message>> {
        self.0
            .try_update_value(|slots| {
                while slots.len() <= index {
                    slots.push(ArcRwSignal::new(None));
                }
                slots[index].clone()
            })
            .map_or_else(|| Signal::stored(None), Signal::from)
    }

    /// `tail` in place of the messages from `from` on; only the slots whose message changed are set.
    fn show(self, from: usize, tail: &[Message]) {
        self.0.try_update_value(|slots| {
            while slots.len() < from + tail.len() {
                slots.push(ArcRwSignal::new(None));
            }
            let now = tail.iter().map(Some).chain(std::iter::repeat(None));
            for (slot, message) in slots[from..].iter().zip(now) {
                if slot.with_untracked(|shown| shown.as_ref() != message) {
                    slot.set(message.cloned());
                }
            }
        });
    }
}

#[derive(Clone, Copy)]
struct Agent {
    session_id: Signal<String>,
    options: StoredValue<UseAgentSessionOptions>,
    local: StoredValue<Local, LocalStorage>,
    messages: RwSignal<Vec<Message>>,
    message_at: MessageAt,
    busy: RwSignal<bool>,
    connection: RwSignal<ConnectionState>,
    error: RwSignal<Option<String>>,
    transport: RwSignal<Transport>,
    queued: RwSignal<Vec<QueuedPrompt>>,
    outbox: RwSignal<Vec<Pending>>,
}

impl Agent {
    fn new(session_id: Signal<String>, options: UseAgentSessionOptions) -> Self {
        let local = Local {
            conversation: Conversation::default(),
            reconnect: Reconnector::new(
                options.backoff,
                options.stale_after_ms,
                js_sys::Math::random,
            ),
            generation: 0,
            link: None,
            retry: None,
            last_activity_ms: 0,
            ready: false,
            sending: None,
            outbox_failures: 0,
            outbox_retry: None,
        };
        Agent {
            session_id,
            options: StoredValue::new(options),
            local: StoredValue::new_local(local),
            messages: RwSignal::new(Vec::new()),
            message_at: MessageAt(StoredValue::new(Vec::new())),
            busy: RwSignal::new(false),
            connection: RwSignal::new(ConnectionState::Connecting),
            error: RwSignal::new(None),
            transport: RwSignal::new(Transport::default()),
            queued: RwSignal::new(Vec::new()),
            outbox: RwSignal::new(Vec::new()),
        }
    }

    /// Runs `f` on the state; `None` once the hook is gone.
    fn with_local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> Option<R> {
        self.local.try_update_value(f)
    }

    fn is_current(&self, generation: u64) -> bool {
        self.with_local(|l| l.generation == generation)
            .unwrap_or(false)
    }

    /// The hook is alive and still on session `id`.
    fn is_on(&self, id: &str) -> bool {
        self.session_id.try_get_untracked().as_deref() == Some(id)
    }

    fn on_do_path(&self) -> bool {
        self.with_local(|l| l.ready).unwrap_or(false)
            && self.transport.get_untracked() == Transport::Do
    }

    fn fail(&self, message: impl Into<String>) {
        self.error.set(Some(message.into()));
    }

    /// Copies the busy flag and the connection state out to their signals.
    fn publish(&self) {
        let Some((busy, state, queued)) = self.with_local(|l| {
            let queued = l.conversation.queued().to_vec();
            (l.conversation.unfinished(), l.reconnect.state(), queued)
        }) else {
            return;
        };
        if self.queued.with_untracked(|q| *q != queued) {
            self.queued.set(queued);
        }
        if self.busy.get_untracked() != busy {
            self.busy.set(busy);
        }
        if self.connection.get_untracked() != state {
            self.connection.set(state);
        }
    }

    /// Starts on the current session: a fresh transcript, the transport, then the history.
    fn open(&self) {
        let Some(generation) = self.with_local(|l| {
            l.conversation = Conversation::default();
            l.reconnect.reset();
            l.reconnect.opening();
            l.ready = false;
            l.detach()
        }) else {
            return;
        };
        self.show(0, Vec::new());
        self.error.set(None);
        self.publish();
        if self.session_id.get_untracked().is_empty() {
            return;
        }
        self.outbox
            .set(Outbox::load(&self.session_id.get_untracked()).entries);
        let agent = *self;
        spawn_local(async move {
            let transport = transport::resolve().await;
            if !agent.is_current(generation) {
                return;
            }
            agent.transport.set(transport);
            agent.with_local(|l| {
                l.ready = true;
                if transport == Transport::Ws {
                    // Nothing is stored on the legacy path: there is no history to load.
                    l.reconnect.reset();
                }
            });
            match transport {
                Transport::Do => {
                    agent.resume();
                    agent.flush();
                }
                Transport::Ws => agent.publish(),
            }
        });
    }

    /// Ends everything (the component is going away).
    fn close(&self) {
        self.with_local(|l| l.detach());
    }

    /// Opens `events?after=<last seq>`, replacing any open stream.
    fn resume(&self) {
        let Some((generation, signal, after)) = self
            .with_local(|l| {
                let (generation, signal) = l.attach_fetch()?;
                l.reconnect.opening();
                Some((generation, signal, l.conversation.last_seq()))
            })
            .flatten()
        else {
            return;
        };
        self.publish();
        let (agent, id) = (*self, self.session_id.get_untracked());
        spawn_local(async move {
            let response = api::events(&id, after, &signal).await;
            agent
                .read_stream(generation, response, StreamKind::Events)
                .await;
        });
    }

    async fn read_stream(self, generation: u64, response: ApiResult<Response>, kind: StreamKind) {
        let response = match response {
            Ok(response) => response,
            Err(error) => return self.refused(generation, error, kind),
        };
        let now = browser::now_ms();
        if kind == StreamKind::Chat {
            self.sent();
        }
        if self.with_local(|l| {
            let current = l.generation == generation;
            if current {
                l.reconnect.opened();
                l.last_activity_ms = now;
            }
            current
        }) != Some(true)
        {
            return;
        }
        self.publish();
        let ended = ndjson::read(&response, |batch| self.receive(generation, &batch)).await;
        if self.is_current(generation) {
            self.stream_ended(kind, ended.is_ok());
        }
    }

    /// A stream request that got no stream.
    fn refused(&self, generation: u64, error: ApiError, kind: StreamKind) {
        if !self.is_current(generation) {
            return;
        }
        if kind == StreamKind::Chat {
            self.not_sent(&error);
        }
        match error {
            ApiError::Aborted => {}
            // No answer at all: the prompt stays in the outbox, which sends it again (with the same key, so a
            // turn it did start is not started twice); meanwhile the session is followed as after a drop.
            ApiError::Network(_) | ApiError::Status { status: 500.., .. }
                if kind == StreamKind::Chat =>
            {
                self.with_local(|l| l.conversation.forget_turn());
                self.stream_ended(kind, false);
            }
            ApiError::Network(_) => self.stream_ended(kind, false),
            ApiError::Status { status: 409, .. } if kind == StreamKind::Chat => {
                self.with_local(|l| l.conversation.forget_turn());
                self.resume();
            }
            error => {
                self.with_local(|l| {
                    l.link = None;
                    l.reconnect.refused();
                    if kind == StreamKind::Chat {
                        l.conversation.forget_turn();
                    }
                });
                self.fail(match error {
                    ApiError::Unauthorized(_) => "You are signed out.".to_string(),
                    ApiError::Status { status: 404, .. } => {
                        "This session does not exist.".to_string()
                    }
                    other => other.to_string(),
                });
                self.publish();
            }
        }
    }

    /// Shows `tail` in place of the messages from index `from` on.
    fn show(&self, from: usize, tail: Vec<Message>) {
        self.message_at.show(from, &tail);
        self.messages.update(|messages| {
            messages.truncate(from);
            messages.extend(tail);
        });
    }

    /// Applies one chunk's events.
    fn receive(&self, generation: u64, batch: &[Envelope]) {
        let now = browser::now_ms();
        let Some((finished, asked, tail)) = self
            .with_local(|l| {
                if l.generation != generation {
                    return None;
                }
                l.last_activity_ms = now;
                let applied = l.conversation.apply(batch);
                let tail = applied.changed_from.map(|from| {
                    l.reconnect.progressed();
                    (from, l.conversation.messages()[from..].to_vec())
                });
                Some((applied.finished, applied.asked, tail))
            })
            .flatten()
        else {
            return;
        };
        if let Some((from, tail)) = tail {
            self.show(from, tail);
        }
        self.publish();
        let notify = self.options.with_value(|o| o.notify);
        if notify {
            asked.iter().for_each(notify::approval_needed);
        }
        if let Some(finished) = finished {
            self.flush();
            if let Status::Failed { message, .. } = &finished.status {
                self.fail(format!("The agent failed: {message}"));
            }
            if notify {
                notify::answer_finished(&finished);
            }
        }
    }

    /// The current stream ended, cleanly (`clean`) or not: resume it if its answer is unfinished.
    fn stream_ended(&self, kind: StreamKind, clean: bool) {
        let online = browser::is_online();
        let Some((decision, reload)) = self.with_local(|l| {
            l.link = None;
            if kind == StreamKind::Events && clean {
                // This stream replayed everything after our seq: a turn that is not in it never started.
                l.conversation.forget_turn();
            }
            let unfinished = l.conversation.unfinished();
            let reload = !unfinished && l.conversation.take_missed_events();
            (l.reconnect.closed(unfinished, online), reload)
        }) else {
            return;
        };
        if reload {
            self.reload();
        } else {
            self.decide(decision);
        }
    }

    /// Loads the whole history again (after events of another client were skipped).
    fn reload(&self) {
        self.with_local(|l| l.conversation = Conversation::default());
        self.show(0, Vec::new());
        self.resume();
    }

    fn decide(&self, decision: Decision) {
        match decision {
            Decision::Wait => {}
            Decision::ResumeIn(0) => self.resume(),
            Decision::ResumeIn(ms) => {
                let agent = *self;
                let generation = self.with_local(|l| l.generation);
                let timer = set_timeout_with_handle(
                    move || {
                        if generation.is_some_and(|g| agent.is_current(g)) {
                            agent.resume();
                        }
                    },
                    Duration::from_millis(u64::from(ms)),
                );
                self.with_local(|l| {
                    if let Some(old) = std::mem::replace(&mut l.retry, timer.ok()) {
                        old.clear();
                    }
                });
            }
            Decision::GiveUp => self.fail(
                "Lost the connection to this answer. It resumes when you are back online or return to this tab.",
            ),
        }
        self.publish();
    }

    fn send(&self, prompt: String) {
        let turn = self
            .options
            .with_value(|o| o.turn.map(|t| t.get_untracked()))
            .unwrap_or_default();
        let session_id = self.session_id.get_untracked();
        let request = ChatRequest {
            session_id: session_id.clone(),
            prompt: prompt.trim_end().to_string(),
            turn,
            queue: false,
            idempotency_key: None,
        };
        let Some((ready, unfinished)) = self.with_local(|l| (l.ready, l.conversation.unfinished()))
        else {
            return;
        };
        if !ready {
            return;
        }
        if let Err(Invalid::Bad(message) | Invalid::TooLarge(message)) = request.validate() {
            return self.fail(message);
        }
        self.error.set(None);
        if self.options.with_value(|o| o.notify) {
            notify::ask_once();
        }
        match self.transport.get_untracked() {
            // Through the outbox: kept until the server accepts it, sent again (same key) after a failure.
            Transport::Do => {
                let mut outbox = Outbox::load(&session_id);
                outbox.push(new_key(), request.prompt, request.turn);
                outbox.save(&session_id);
                self.outbox.set(outbox.entries);
                self.flush();
            }
            Transport::Ws if !unfinished => self.send_ws(request),
            Transport::Ws => {}
        }
    }

    /// Sends the outbox's first prompt, unless one is on its way or the browser is offline: as a turn when the
    /// session is idle, queued behind the running answer otherwise.
    fn flush(&self) {
        if !self.on_do_path() || !browser::is_online() {
            return;
        }
        let session_id = self.session_id.get_untracked();
        let Some(pending) = Outbox::load(&session_id).first().cloned() else {
            return;
        };
        let Some(busy) = self
            .with_local(|l| {
                if l.sending.is_some() {
                    return None;
                }
                if let Some(retry) = l.outbox_retry.take() {
                    retry.clear();
                }
                l.sending = Some(pending.key.clone());
                Some(l.conversation.unfinished())
            })
            .flatten()
        else {
            return;
        };
        let request = pending.request(&session_id, busy);
        if !busy {
            return self.send_do(request);
        }
        let agent = *self;
        spawn_local(async move {
            let Ok(controller) = AbortController::new() else {
                return;
            };
            match api::chat(&request, &controller.signal()).await {
                Ok(response) => {
                    // 202: queued. 200: the answer ended meanwhile and this started the next turn, which the
                    // session's stream follows; this response is not read.
                    controller.abort();
                    agent.sent();
                    if response.status() == 200 && agent.is_on(&request.session_id) {
                        agent.resume();
                    }
                }
                Err(error) => agent.not_sent(&error),
            }
        });
    }

    /// The prompt on its way was accepted: it leaves the outbox; the next one goes.
    fn sent(&self) {
        let Some(key) = self.with_local(|l| {
            l.outbox_failures = 0;
            l.sending.take()
        }) else {
            return;
        };
        let Some(key) = key else { return };
        self.drop_pending(&key);
        self.flush();
    }

    /// The prompt on its way got no acceptance: a refusal drops it (with the reason shown); a lost request or a
    /// server error keeps it, sent again with backoff, when back online, or when the tab gets focus.
    fn not_sent(&self, error: &ApiError) {
        let Some(Some(key)) = self.with_local(|l| l.sending.take()) else {
            return;
        };
        match error {
            ApiError::Network(_) | ApiError::Aborted | ApiError::Status { status: 500.., .. } => {
                let agent = *self;
                let wait = self.with_local(|l| {
                    l.outbox_failures += 1;
                    RESUME_BACKOFF.delay_ms(l.outbox_failures.min(5), js_sys::Math::random())
                });
                let timer = set_timeout_with_handle(
                    move || agent.flush(),
                    Duration::from_millis(u64::from(wait.unwrap_or(8_000))),
                );
                self.with_local(|l| {
                    if let Some(old) = std::mem::replace(&mut l.outbox_retry, timer.ok()) {
                        old.clear();
                    }
                });
            }
            // Another answer runs (another tab started it): sent again, queued, once it is seen.
            ApiError::Status { status: 409, .. } => {}
            other => {
                self.drop_pending(&key);
                self.fail(format!("The prompt was not sent: {other}"));
            }
        }
    }

    fn drop_pending(&self, key: &str) {
        let session_id = self.session_id.get_untracked();
        let mut outbox = Outbox::load(&session_id);
        outbox.remove(key);
        outbox.save(&session_id);
        self.outbox.set(outbox.entries);
    }

    /// The user discarded a waiting prompt (one on its way may still arrive).
    fn discard(&self, key: &str) {
        self.drop_pending(key);
    }

    /// The user changed a waiting prompt: in its place, a new prompt with a new key.
    fn edit(&self, key: &str, text: String) {
        let session_id = self.session_id.get_untracked();
        let mut outbox = Outbox::load(&session_id);
        if let Some(entry) = outbox.entries.iter_mut().find(|p| p.key == key) {
            entry.key = new_key();
            entry.prompt = text.trim_end().to_string();
        }
        outbox.save(&session_id);
        self.outbox.set(outbox.entries);
        self.flush();
    }

    fn remove_queued(&self, queue_id: String) {
        let (agent, id) = (*self, self.session_id.get_untracked());
        spawn_local(async move {
            if let Err(e) = api::dequeue(&id, &queue_id).await {
                if agent.is_on(&id) {
                    agent.fail(format!("Could not remove the queued prompt: {e}"));
                }
            }
        });
    }

    fn send_do(&self, request: ChatRequest) {
        let Some((generation, signal)) = self
            .with_local(|l| {
                let attached = l.attach_fetch()?;
                l.conversation.expect_turn();
                l.reconnect.opening();
                Some(attached)
            })
            .flatten()
        else {
            return;
        };
        self.publish();
        let agent = *self;
        spawn_local(async move {
            let response = api::chat(&request, &signal).await;
            agent
                .read_stream(generation, response, StreamKind::Chat)
                .await;
        });
    }

    fn send_ws(&self, request: ChatRequest) {
        let Some(origin) = browser::websocket_origin() else {
            return self.fail("Cannot tell this page's address to open the WebSocket.");
        };
        let Some(generation) = self.with_local(|l| l.detach()) else {
            return;
        };
        let agent = *self;
        let query = ClientMessage::Query {
            prompt: request.prompt.clone(),
            model: request.turn.model,
            mode: request.turn.mode,
            autonomy: request.turn.autonomy,
        };
        let url = legacy_ws::url(&origin, &request.session_id);
        match LegacySocket::open(&url, query, move |event| agent.on_socket(generation, event)) {
            Ok(socket) => {
                self.with_local(|l| {
                    l.link = Some(Link::Socket(socket));
                    l.conversation.expect_turn();
                });
                // The legacy server does not echo the prompt: show it from here.
                self.receive(
                    generation,
                    &[Envelope::live(Event::UserMessage {
                        text: request.prompt,
                    })],
                );
                // Connecting until the socket reports open (the local echo above is no sign of that).
                self.with_local(|l| l.reconnect.opening());
                self.publish();
            }
            Err(e) => self.fail(format!("Could not open the WebSocket: {e}")),
        }
    }

    fn on_socket(&self, generation: u64, event: SocketEvent) {
        match event {
            SocketEvent::Open => {
                self.with_local(|l| {
                    if l.generation == generation {
                        l.reconnect.opened();
                    }
                });
                self.publish();
            }
            // Already shown when it was sent.
            SocketEvent::Event(Event::UserMessage { .. }) => {}
            SocketEvent::Event(event) => self.receive(generation, &[Envelope::live(event)]),
            SocketEvent::Closed => self.socket_closed(generation),
        }
    }

    fn socket_closed(&self, generation: u64) {
        let Some((link, unfinished, opened)) = self
            .with_local(|l| {
                (l.generation == generation).then(|| {
                    let opened = l.reconnect.state() == ConnectionState::Live;
                    (l.link.take(), l.conversation.unfinished(), opened)
                })
            })
            .flatten()
        else {
            return;
        };
        // This runs inside the socket's own close handler: free the handler after it returns.
        spawn_local(async move { drop(link) });
        if unfinished {
            let message = if opened {
                LEGACY_DROP
            } else {
                LEGACY_UNREACHABLE
            };
            self.receive(
                generation,
                &[Envelope::live(Event::error(ErrorCode::Unknown, message))],
            );
            self.fail(message);
            self.with_local(|l| l.reconnect.went_offline());
        } else {
            self.with_local(|l| l.reconnect.reset());
        }
        self.publish();
    }

    fn stop(&self) {
        if self.transport.get_untracked() == Transport::Ws {
            self.with_local(|l| {
                if let Some(Link::Socket(socket)) = &l.link {
                    socket.stop();
                }
            });
            return;
        }
        let (agent, id) = (*self, self.session_id.get_untracked());
        spawn_local(async move {
            let result = api::cancel(&id).await;
            if !agent.is_on(&id) {
                return;
            }
            if let Err(e) = result {
                agent.fail(format!("Could not stop the answer: {e}"));
            }
            // The terminal event arrives on the open stream; with none open, fetch it.
            let streaming = agent.with_local(|l| l.link.is_some()).unwrap_or(true);
            if !streaming {
                agent.resume();
            }
        });
    }

    fn clear(&self) {
        if self.busy.get_untracked() {
            return self.fail("Stop the running answer before clearing the transcript.");
        }
        let forget = move |agent: Agent| {
            agent.with_local(|l| {
                l.detach();
                l.conversation = Conversation::default();
                l.reconnect.reset();
            });
            agent.show(0, Vec::new());
            agent.error.set(None);
            agent.publish();
        };
        if self.transport.get_untracked() == Transport::Ws {
            return forget(*self);
        }
        let (agent, id) = (*self, self.session_id.get_untracked());
        spawn_local(async move {
            let result = api::clear_events(&id).await;
            if !agent.is_on(&id) {
                return;
            }
            match result {
                Ok(()) => forget(agent),
                Err(ApiError::Status { status: 409, .. }) => {
                    agent.fail("An answer is running; stop it before clearing the transcript.")
                }
                Err(e) => agent.fail(format!("Could not clear the transcript: {e}")),
            }
        });
    }

    fn on_online(&self) {
        if !self.on_do_path() {
            return;
        }
        self.flush();
        if let Some(decision) = self.with_local(|l| {
            let unfinished = l.conversation.unfinished();
            l.reconnect.came_online(unfinished)
        }) {
            self.decide(decision);
        }
    }

    fn on_offline(&self) {
        if self.on_do_path() {
            self.with_local(|l| l.reconnect.went_offline());
            self.publish();
        }
    }

    fn on_visibility_change(&self) {
        if browser::is_hidden() || !self.on_do_path() {
            return;
        }
        self.flush();
        let now = browser::now_ms();
        if let Some(decision) = self.with_local(|l| {
            let unfinished = l.conversation.unfinished();
            let silent_for = now.saturating_sub(l.last_activity_ms);
            l.reconnect.became_visible(unfinished, silent_for)
        }) {
            self.decide(decision);
        }
    }
}
