//! The VaporForge chat UI: the `App` component, its routes, and the modules behind them.

pub mod api;
mod browser;
mod code_worker;
pub mod components;
pub mod conversation;
pub mod highlight;
pub mod hooks;
pub mod legacy_ws;
pub mod markdown;
pub mod ndjson;
pub mod notify;
pub mod outbox;
pub mod questions;
pub mod reconnect;
pub mod tool_detail;
pub mod transport;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::path;
use vf_protocol::api::Me;

use components::{AdminPage, ChatPanel, LoginPage, SessionsPage, TopBar};

/// Who is signed in, shared through context; `None` until `/api/me` or a login says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    pub me: RwSignal<Option<Me>>,
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let auth = Auth {
        me: RwSignal::new(None),
    };
    provide_context(auth);
    spawn_local(async move {
        if let Ok(me) = api::me().await {
            auth.me.set(Some(me));
        }
    });

    view! {
        <Router>
            <SignInOnUnauthorized />
            <TopBar />
            <main class="main">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/") view=SessionsPage />
                    <Route path=path!("/s/:id") view=ChatPage />
                    <Route path=path!("/admin") view=AdminPage />
                </Routes>
            </main>
        </Router>
    }
}

/// Sends the user to /login whenever a call answers 401.
#[component]
fn SignInOnUnauthorized() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    api::set_unauthorized_handler(move || {
        auth.me.set(None);
        navigate("/login", Default::default());
    });
}

/// `/s/:id`: the chat of one session.
#[component]
fn ChatPage() -> impl IntoView {
    let params = use_params_map();
    // A memo: only a different id reopens the session, not any other change of the route.
    let session_id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    view! { <ChatPanel session_id /> }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="page">
            <h1>"Not found"</h1>
            <p><a href="/">"Back to the sessions"</a></p>
        </section>
    }
}
