//! The session's "allow for this session" rules: listed on demand in the chat bar, each one can be forgotten.

use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::api::SessionRule;

use super::CurrentSession;
use crate::api;

/// What the panel shows.
#[derive(Clone, PartialEq)]
enum Listing {
    Loading,
    Rules(Vec<SessionRule>),
    Failed(String),
}

/// A disclosure in the chat bar; opening it (again) reads the rules fresh, since any tab may have added one.
#[component]
pub fn SessionRules() -> impl IntoView {
    let session = use_context::<CurrentSession>().map(|s| s.0);
    let listing = RwSignal::new(Listing::Loading);
    let load = move || {
        let Some(session) = session else { return };
        let id = session.get_untracked();
        listing.set(Listing::Loading);
        spawn_local(async move {
            listing.set(match api::rules(&id).await {
                Ok(response) => Listing::Rules(response.rules),
                Err(e) => Listing::Failed(e.to_string()),
            });
        });
    };
    let forget = move |tool: String| {
        let Some(session) = session else { return };
        let id = session.get_untracked();
        spawn_local(async move {
            match api::forget_rule(&id, &tool).await {
                Ok(()) => listing.update(|l| {
                    if let Listing::Rules(rules) = l {
                        rules.retain(|r| r.tool_name != tool);
                    }
                }),
                Err(e) => listing.set(Listing::Failed(e.to_string())),
            }
        });
    };
    view! {
        <details
            class="rules"
            data-testid="rules"
            on:toggle=move |ev| {
                if event_target::<web_sys::HtmlDetailsElement>(&ev).open() {
                    load();
                }
            }
        >
            <summary>"Rules"</summary>
            <div class="rules-panel">
                {move || match listing.get() {
                    Listing::Loading => view! { <p>"Loading…"</p> }.into_any(),
                    Listing::Failed(message) => view! { <p role="alert">{message}</p> }.into_any(),
                    Listing::Rules(rules) if rules.is_empty() => {
                        view! {
                            <p data-testid="rules-empty">
                                "No rules: Claude asks before every tool call its autonomy does not allow."
                            </p>
                        }
                            .into_any()
                    }
                    Listing::Rules(rules) => {
                        view! {
                            <p>"Allowed without asking in this session:"</p>
                            <ul>
                                {rules
                                    .into_iter()
                                    .map(|rule| {
                                        let tool = rule.tool_name.clone();
                                        view! {
                                            <li data-testid="rule">
                                                <code>{rule.tool_name}</code>
                                                <button
                                                    type="button"
                                                    class="ghost"
                                                    data-testid="rule-forget"
                                                    on:click=move |_| forget(tool.clone())
                                                >
                                                    "Forget"
                                                </button>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }}
            </div>
        </details>
    }
}
