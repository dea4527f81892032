//! The session list: create, open and delete chat sessions.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use vf_protocol::api::SessionRecord;

use super::ErrorBanner;
use crate::api;

fn created_label(ms: u64) -> String {
    js_sys::Date::new(&(ms as f64).into())
        .to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED)
        .into()
}

/// Newest first, as the server lists them.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let navigate = use_navigate();
    let sessions = RwSignal::new(None::<Vec<SessionRecord>>);
    let error = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let creating = RwSignal::new(false);

    spawn_local(async move {
        match api::sessions().await {
            Ok(list) => {
                sessions.try_set(Some(list));
            }
            Err(e) => {
                error.try_set(Some(format!("Could not load the sessions: {e}")));
            }
        }
    });

    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let wanted = name.get_untracked().trim().to_string();
        creating.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::create_session((!wanted.is_empty()).then_some(wanted)).await {
                Ok(session) => navigate(&format!("/s/{}", session.id), Default::default()),
                Err(e) => {
                    error.try_set(Some(format!("Could not create the session: {e}")));
                    creating.try_set(false);
                }
            }
        });
    };

    let delete = move |id: String| {
        spawn_local(async move {
            match api::delete_session(&id).await {
                Ok(()) => sessions.update(|list| {
                    if let Some(list) = list {
                        list.retain(|s| s.id != id);
                    }
                }),
                Err(e) => {
                    error.try_set(Some(format!("Could not delete the session: {e}")));
                }
            }
        });
    };

    view! {
        <section class="page sessions">
            <h1>"Sessions"</h1>
            <form class="new-session" on:submit=create>
                <input
                    type="text"
                    data-testid="session-name"
                    aria-label="Session name"
                    placeholder="Name (optional)"
                    maxlength="120"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <button type="submit" class="primary" data-testid="new-session" disabled=move || creating.get()>
                    "New session"
                </button>
            </form>
            <ErrorBanner message=error />
            <Show when=move || sessions.with(Option::is_none)>
                <p class="empty">"Loading…"</p>
            </Show>
            <Show when=move || sessions.with(|list| list.as_ref().is_some_and(Vec::is_empty))>
                <p class="empty">"No sessions yet. Start one to chat with Claude Code."</p>
            </Show>
            <ul class="session-list" data-testid="session-list">
                <For each=move || sessions.get().unwrap_or_default() key=|session| session.id.clone() let:session>
                    {
                        let id = session.id.clone();
                        view! {
                            <li class="session" data-testid="session-item" data-session-id=session.id.clone()>
                                <a class="session-link" data-testid="open-session" href=format!("/s/{}", session.id)>
                                    <span class="session-name">{session.name.clone()}</span>
                                    <time class="session-date">{created_label(session.created_at)}</time>
                                </a>
                                <button
                                    type="button"
                                    class="ghost danger"
                                    data-testid="delete-session"
                                    aria-label=format!("Delete {}", session.name)
                                    on:click=move |_| delete(id.clone())
                                >
                                    "Delete"
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </section>
    }
}
