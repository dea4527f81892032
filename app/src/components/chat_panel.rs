//! The chat of one session: renders `use_agent_session`'s signals, and nothing else.

use leptos::prelude::*;

use super::session_rules::SessionRules;
use super::turn_controls::{remember, remembered, SessionTurn};
use super::{ConnectionBadge, CurrentSession, ErrorBanner, MessageView, PromptBox};
use crate::hooks::use_agent_session::{use_agent_session_with_options, UseAgentSessionOptions};
use crate::hooks::UseAgentSessionReturn;
use crate::reconnect::ConnectionState;

/// How close to the bottom (px) still counts as "following" the answer.
const FOLLOW_SLACK_PX: f64 = 120.0;

fn near_bottom() -> bool {
    let window = window();
    let body = document().document_element();
    match (window.inner_height(), window.scroll_y(), body) {
        (Ok(height), Ok(y), Some(root)) => {
            height.as_f64().unwrap_or(0.0) + y + FOLLOW_SLACK_PX >= f64::from(root.scroll_height())
        }
        _ => true,
    }
}

/// The messages, the prompt box, the connection badge and the error banner of session `session_id`.
#[component]
pub fn ChatPanel(
    /// The session shown; changing it loads the other session.
    #[prop(into)]
    session_id: Signal<String>,
) -> impl IntoView {
    provide_context(CurrentSession(session_id));
    // The turn's controls, per session: loaded when the session changes, remembered when they change.
    let turn = RwSignal::new(remembered(&session_id.get_untracked()));
    provide_context(SessionTurn(turn));
    Effect::watch(
        move || session_id.get(),
        move |id, _, _| turn.set(remembered(id)),
        false,
    );
    Effect::watch(
        move || turn.get(),
        move |options, _, _| remember(&session_id.get_untracked(), options),
        false,
    );
    let options = UseAgentSessionOptions {
        turn: Some(turn.into()),
        ..UseAgentSessionOptions::default()
    };
    let UseAgentSessionReturn {
        messages,
        message_at,
        is_streaming,
        connection,
        error,
        transport,
        send_message,
        stop,
        clear_messages,
        queued,
        remove_queued,
        outbox,
        discard_pending,
        edit_pending,
    } = use_agent_session_with_options(session_id, options);

    let count = Memo::new(move |_| messages.with(Vec::len));
    let loading = Signal::derive(move || connection.get() == ConnectionState::Connecting);
    // While an answer runs, a prompt is queued behind it (the DO path); the legacy path cannot queue.
    let prompt_disabled = Signal::derive(move || {
        loading.get() || (is_streaming.get() && transport.get() != crate::transport::Transport::Do)
    });

    // Follow the answer as it grows, unless the user scrolled up to read.
    let following = StoredValue::new(true);
    let scroll = window_event_listener(leptos::ev::scroll, move |_| {
        following.set_value(near_bottom())
    });
    on_cleanup(move || scroll.remove());
    // One scroll a frame at most, however many events the frame brought.
    let scroll_pending = StoredValue::new(false);
    Effect::new(move |_| {
        messages.track();
        if following.get_value() && !scroll_pending.get_value() {
            scroll_pending.set_value(true);
            request_animation_frame(move || {
                scroll_pending.try_set_value(false);
                let height = document()
                    .document_element()
                    .map_or(0, |e| e.scroll_height());
                window().scroll_to_with_x_and_y(0.0, f64::from(height));
            });
        }
    });

    view! {
        <section class="chat">
            <div class="chat-bar">
                <a class="back" href="/">"← Sessions"</a>
                <ConnectionBadge state=connection transport=transport />
                <div class="chat-actions">
                    <SessionRules />
                    <a
                        class="ghost button"
                        data-testid="export-transcript"
                        href=move || crate::api::export_url(&session_id.get())
                        download=""
                    >
                        "Export"
                    </a>
                    <button
                        type="button"
                        class="ghost"
                        data-testid="clear-transcript"
                        disabled=move || is_streaming.get() || count.get() == 0
                        on:click=move |_| clear_messages()
                    >
                        "Clear"
                    </button>
                </div>
            </div>
            <div class="messages" data-testid="messages">
                <Show when=move || count.get() == 0 && !loading.get()>
                    <p class="empty">"Ask Claude Code to read, change or explain the code in this session's sandbox."</p>
                </Show>
                <For each=move || 0..count.get() key=|index| *index let:index>
                    <MessageView message=message_at.get(index) />
                </For>
            </div>
            <super::PendingPrompts
                queued=queued
                remove_queued=remove_queued
                outbox=outbox
                discard_pending=discard_pending
                edit_pending=edit_pending
            />
            // Above the prompt box, where the eyes are when something goes wrong.
            <ErrorBanner message=error />
            <PromptBox
                disabled=prompt_disabled
                streaming=is_streaming
                on_send=Callback::new(send_message)
                on_stop=Callback::new(move |()| stop())
                turn=turn
            />
        </section>
    }
}
