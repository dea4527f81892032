//! The session list: what each session is doing, live (the list's watch stream); create, open, rename, filter
//! and delete sessions.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use vf_protocol::api::{SessionListEvent, SessionStatus, SessionSummary};
use vf_protocol::session_list;
use vf_protocol::LineFramer;
use web_sys::AbortController;

use super::message_view::dollars;
use super::ErrorBanner;
use crate::reconnect::RESUME_BACKOFF;
use crate::{api, ndjson};

/// A list line is a few hundred bytes a session.
const MAX_LIST_LINE_BYTES: usize = 4 * 1024 * 1024;

fn time_label(ms: u64) -> String {
    js_sys::Date::new(&(ms as f64).into())
        .to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED)
        .into()
}

fn status_label(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Idle => "idle",
        SessionStatus::Running => "running",
        SessionStatus::AwaitingApproval => "awaiting approval",
        SessionStatus::Failed => "failed",
    }
}

/// Keeps `sessions` equal to the server's list: reads the watch stream, and opens it again (with backoff) when
/// it drops, until `controller` is aborted.
fn watch(sessions: RwSignal<Option<Vec<SessionSummary>>>, controller: AbortController) {
    spawn_local(async move {
        let mut attempt = 0;
        while !controller.signal().aborted() {
            let mut framer = LineFramer::new(MAX_LIST_LINE_BYTES);
            let mut got_any = false;
            if let Ok(response) = api::watch_sessions(&controller.signal()).await {
                let _ = ndjson::read_chunks(&response, |chunk| {
                    framer.push(chunk, |line| {
                        let Ok(line) = line else { return };
                        if let Ok(SessionListEvent::Sessions { sessions: list }) =
                            serde_json::from_slice(line)
                        {
                            got_any = true;
                            sessions.try_set(Some(list));
                        }
                    })
                })
                .await;
            }
            attempt = if got_any { 1 } else { attempt + 1 };
            let wait = RESUME_BACKOFF.delay_ms(attempt, js_sys::Math::random());
            sleep(wait).await;
        }
    });
}

async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Most recently active first, as the server lists them.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let navigate = use_navigate();
    let sessions = RwSignal::new(None::<Vec<SessionSummary>>);
    let error = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let filter = RwSignal::new(String::new());
    let creating = RwSignal::new(false);

    if let Ok(controller) = AbortController::new() {
        watch(sessions, controller.clone());
        on_cleanup(move || controller.abort());
    }

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
                        list.retain(|s| s.record.id != id);
                    }
                }),
                Err(e) => {
                    error.try_set(Some(format!("Could not delete the session: {e}")));
                }
            }
        });
    };

    let rename = move |id: String, current: String| {
        let Ok(Some(wanted)) =
            window().prompt_with_message_and_default("Rename the session", &current)
        else {
            return;
        };
        spawn_local(async move {
            match api::rename_session(&id, wanted).await {
                Ok(renamed) => sessions.update(|list| {
                    if let Some(list) = list {
                        for s in list.iter_mut().filter(|s| s.record.id == renamed.record.id) {
                            *s = renamed.clone();
                        }
                    }
                }),
                Err(e) => {
                    error.try_set(Some(format!("Could not rename the session: {e}")));
                }
            }
        });
    };

    let shown = Memo::new(move |_| {
        let mut list = sessions.get().unwrap_or_default();
        session_list::sort(&mut list);
        filter.with(|f| list.retain(|s| session_list::matches(s, f)));
        list
    });

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
            <input
                type="search"
                class="session-filter"
                data-testid="session-filter"
                aria-label="Filter sessions"
                placeholder="Filter"
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
            <ErrorBanner message=error />
            <Show when=move || sessions.with(Option::is_none)>
                <p class="empty">"Loading…"</p>
            </Show>
            <Show when=move || sessions.with(|list| list.as_ref().is_some_and(Vec::is_empty))>
                <p class="empty">"No sessions yet. Start one to chat with Claude Code."</p>
            </Show>
            <ul class="session-list" data-testid="session-list">
                <For
                    each=move || shown.get()
                    key=|s| (s.record.id.clone(), s.title.clone(), s.status, s.last_activity_at, s.cost_usd.to_bits())
                    let:session
                >
                    {
                        let id = session.record.id.clone();
                        let rename_id = id.clone();
                        let name = session.record.name.clone();
                        let status = status_label(session.status);
                        view! {
                            <li
                                class="session"
                                data-testid="session-item"
                                data-session-id=session.record.id.clone()
                                data-status=status
                            >
                                <a class="session-link" data-testid="open-session" href=format!("/s/{}", session.record.id)>
                                    <span class="session-name" data-testid="session-title">{session.title.clone()}</span>
                                    <span class=format!("session-status {}", status.replace(' ', "-")) data-testid="session-status">
                                        {status}
                                    </span>
                                    <time class="session-date">{time_label(session.last_activity_at)}</time>
                                    <span class="session-cost">{dollars(session.cost_usd)}</span>
                                </a>
                                <button
                                    type="button"
                                    class="ghost"
                                    data-testid="rename-session"
                                    aria-label=format!("Rename {}", session.title)
                                    on:click=move |_| rename(rename_id.clone(), name.clone())
                                >
                                    "Rename"
                                </button>
                                <button
                                    type="button"
                                    class="ghost danger"
                                    data-testid="delete-session"
                                    aria-label=format!("Delete {}", session.title)
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
