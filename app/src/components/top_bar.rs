//! The top bar: the brand, the navigation and the signed-in user.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use crate::{api, Auth};

/// Brand and, once signed in, the links, the token hint and sign out.
#[component]
pub fn TopBar() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    let sign_out = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            // Signed out locally even if the server cannot be reached; the cookie expires on its own.
            let _ = api::logout().await;
            auth.me.set(None);
            navigate("/login", Default::default());
        });
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <img src="/favicon.svg" alt="" width="24" height="24" />
                <span class="brand-name">"VaporForge"</span>
            </a>
            <Show when=move || auth.me.with(Option::is_some)>
                <nav class="nav">
                    <a href="/">"Sessions"</a>
                    <a href="/admin">"Admin"</a>
                </nav>
                <span class="who" data-testid="token-hint">
                    {move || auth.me.with(|me| me.as_ref().and_then(|m| m.token_hint.clone()).unwrap_or_default())}
                </span>
                <button type="button" class="ghost small" data-testid="logout" on:click=sign_out.clone()>
                    "Sign out"
                </button>
            </Show>
        </header>
    }
}
