//! The sign-in page: paste the token `claude setup-token` prints.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use vf_protocol::api::CLAUDE_TOKEN_PREFIX;

use super::ErrorBanner;
use crate::{api, Auth};

/// The sign-in form and what the token is.
#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    let token = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let value = token.get_untracked().trim().to_string();
        if !value.starts_with(CLAUDE_TOKEN_PREFIX) {
            error.set(Some(format!(
                "That is not a setup token: it should start with {CLAUDE_TOKEN_PREFIX}."
            )));
            return;
        }
        error.set(None);
        pending.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::login(value).await {
                Ok(me) => {
                    auth.me.set(Some(me));
                    navigate("/", Default::default());
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                    pending.try_set(false);
                }
            }
        });
    };

    view! {
        <section class="page login">
            <h1>"Sign in"</h1>
            <p>
                "VaporForge runs Claude Code for you in a cloud sandbox, on your own Claude subscription. "
                "It signs in with a long-lived Claude Code token:"
            </p>
            <ol class="steps">
                <li>"On a computer with Claude Code installed, run " <code>"claude setup-token"</code> "."</li>
                <li>"Approve the request in the browser window it opens."</li>
                <li>"Copy the token it prints (it starts with " <code>{CLAUDE_TOKEN_PREFIX}</code> ") and paste it here."</li>
            </ol>
            <form class="stack" on:submit=submit>
                <label for="token">"Claude Code token"</label>
                <input
                    id="token"
                    type="password"
                    data-testid="login-token"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder=format!("{CLAUDE_TOKEN_PREFIX}…")
                    prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev))
                />
                <ErrorBanner message=error />
                <button type="submit" class="primary" data-testid="login-submit" disabled=move || pending.get()>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
            <p class="fine">
                "The token goes to this VaporForge server once; it keeps it to start Claude Code in your sandbox and "
                "never sends it back. This browser keeps only a session cookie. Signing out ends the session here."
            </p>
        </section>
    }
}
