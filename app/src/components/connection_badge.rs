//! The connection badge: whether the answer stream is live, and over which transport.

use leptos::prelude::*;

use crate::reconnect::ConnectionState;
use crate::transport::Transport;

fn label(state: ConnectionState) -> String {
    match state {
        ConnectionState::Idle => "idle".into(),
        ConnectionState::Connecting => "connecting…".into(),
        ConnectionState::Live => "live".into(),
        ConnectionState::Reconnecting { attempt } => format!("reconnecting ({attempt})…"),
        ConnectionState::Offline => "offline".into(),
    }
}

/// A small badge: `data-state` is the connection state, `data-transport` is `do` or `ws`.
#[component]
pub fn ConnectionBadge(
    /// The stream's state.
    #[prop(into)]
    state: Signal<ConnectionState>,
    /// The transport in use.
    #[prop(into)]
    transport: Signal<Transport>,
) -> impl IntoView {
    view! {
        <span
            class="badge"
            data-testid="connection"
            data-state=move || state.get().as_str()
            data-transport=move || transport.get().as_str()
            title=move || match transport.get() {
                Transport::Do => "Durable Object path: answers are stored and resume after a drop",
                Transport::Ws => "Legacy WebSocket path: nothing is stored, a drop cannot resume",
            }
        >
            <span class="badge-dot" aria-hidden="true"></span>
            {move || label(state.get())}
            " · "
            {move || transport.get().label()}
        </span>
    }
}
