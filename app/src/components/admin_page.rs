//! The rollout page: shows the `agentChat` flag and changes it with the admin token.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::flags::{FlagSource, FlagUpdate, FlagsResponse};

use super::ErrorBanner;
use crate::api::{self, ApiError};
use crate::browser;
use crate::transport::{self, Transport};

/// A rollout percent as typed: a whole number from 0 to 100.
fn parse_percent(text: &str) -> Option<u8> {
    text.trim().parse::<u8>().ok().filter(|p| *p <= 100)
}

fn describe_flag(flags: &FlagsResponse) -> String {
    let path = Transport::from_flag(flags.agent_chat).label();
    let why = match flags.source {
        FlagSource::Rollout => "by the rollout",
        FlagSource::Override => "by a per-user override",
        FlagSource::Kill => "by the kill switch",
    };
    format!("{path}, {why}")
}

/// The flag as it stands, and the form that changes it. The admin token lives in this page's memory only.
#[component]
pub fn AdminPage() -> impl IntoView {
    let flags = RwSignal::new(None::<FlagsResponse>);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let admin_token = RwSignal::new(String::new());
    let percent = RwSignal::new(String::new());
    let kill = RwSignal::new(false);
    let saving = RwSignal::new(false);
    let remembered = RwSignal::new(browser::storage_get(transport::STORAGE_KEY));

    let load = move || {
        spawn_local(async move {
            match api::flags().await {
                Ok(current) => {
                    percent.try_set(current.rollout_percent.to_string());
                    kill.try_set(current.kill);
                    flags.try_set(Some(current));
                }
                Err(e) => {
                    error.try_set(Some(format!("Could not read the flag: {e}")));
                }
            }
        })
    };
    load();

    let save = move |ev: SubmitEvent| {
        ev.prevent_default();
        notice.set(None);
        let Some(rollout_percent) = parse_percent(&percent.get_untracked()) else {
            error.set(Some(
                "The rollout percent is a whole number from 0 to 100.".into(),
            ));
            return;
        };
        let token = admin_token.get_untracked().trim().to_string();
        if token.is_empty() {
            error.set(Some("Type the admin token first.".into()));
            return;
        }
        let update = FlagUpdate {
            rollout_percent: Some(rollout_percent),
            kill: Some(kill.get_untracked()),
            ..FlagUpdate::default()
        };
        error.set(None);
        saving.set(true);
        spawn_local(async move {
            let result = api::update_flags(&token, &update).await;
            saving.try_set(false);
            match result {
                Ok(()) => {
                    notice.try_set(Some(
                        "Saved. Browsers pick it up on their next session page.".into(),
                    ));
                    load();
                }
                Err(ApiError::Unauthorized(_)) => {
                    error.try_set(Some("The admin token was rejected.".into()));
                }
                Err(e) => {
                    error.try_set(Some(format!("Could not save: {e}")));
                }
            }
        });
    };

    let forget = move |_| {
        browser::storage_remove(transport::STORAGE_KEY);
        remembered.set(None);
    };

    view! {
        <section class="page admin">
            <h1>"Rollout"</h1>
            <p>
                "The " <code>"agentChat"</code> " flag sends a share of users to the DO path (answers stored, "
                "resumable); the rest use the legacy WebSocket. The kill switch sends everyone to the legacy path."
            </p>
            <ErrorBanner message=error />
            {move || notice.get().map(|text| view! { <div class="banner banner-ok" role="status" data-testid="admin-notice">{text}</div> })}
            <dl
                class="flags"
                data-testid="flags"
                data-percent=move || flags.with(|f| f.as_ref().map(|f| f.rollout_percent.to_string()))
                data-kill=move || flags.with(|f| f.as_ref().map(|f| f.kill.to_string()))
            >
                <dt>"DO path rollout"</dt>
                <dd data-testid="rollout-percent">
                    {move || flags.with(|f| f.as_ref().map_or("…".into(), |f| format!("{}%", f.rollout_percent)))}
                </dd>
                <dt>"Kill switch"</dt>
                <dd data-testid="kill-switch">
                    {move || flags.with(|f| f.as_ref().map_or("…", |f| if f.kill { "on" } else { "off" }))}
                </dd>
                <dt>"Your account"</dt>
                <dd>{move || flags.with(|f| f.as_ref().map_or("…".into(), describe_flag))}</dd>
                <dt>"This browser"</dt>
                <dd>
                    {move || match remembered.get() {
                        Some(value) => view! {
                            "forced to " {value.to_uppercase()} " by ?transport= "
                            <button type="button" class="ghost" data-testid="forget-transport" on:click=forget>
                                "Follow the flag again"
                            </button>
                        }
                        .into_any(),
                        None => "follows the flag".into_any(),
                    }}
                </dd>
            </dl>
            <form class="stack admin-form" on:submit=save>
                <label for="admin-token">"Admin token"</label>
                <input
                    id="admin-token"
                    type="password"
                    data-testid="admin-token"
                    autocomplete="off"
                    prop:value=move || admin_token.get()
                    on:input=move |ev| admin_token.set(event_target_value(&ev))
                />
                <label for="admin-percent">"DO path rollout (%)"</label>
                <input
                    id="admin-percent"
                    type="number"
                    min="0"
                    max="100"
                    step="1"
                    inputmode="numeric"
                    data-testid="admin-percent"
                    prop:value=move || percent.get()
                    on:input=move |ev| percent.set(event_target_value(&ev))
                />
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="admin-kill"
                        prop:checked=move || kill.get()
                        on:change=move |ev| kill.set(event_target_checked(&ev))
                    />
                    "Kill switch: everyone on the legacy WebSocket"
                </label>
                <button type="submit" class="primary" data-testid="admin-save" disabled=move || saving.get()>
                    {move || if saving.get() { "Saving…" } else { "Save" }}
                </button>
            </form>
            <p class="fine">"The admin token stays in this page's memory; it is never stored."</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_are_whole_numbers_up_to_100() {
        assert_eq!(parse_percent(" 25 "), Some(25));
        assert_eq!(parse_percent("100"), Some(100));
        assert_eq!(parse_percent("101"), None);
        assert_eq!(parse_percent("-1"), None);
        assert_eq!(parse_percent("12.5"), None);
        assert_eq!(parse_percent(""), None);
    }

    #[test]
    fn the_flag_is_explained() {
        let flags = FlagsResponse {
            agent_chat: false,
            source: FlagSource::Kill,
            rollout_percent: 100,
            kill: true,
        };
        assert_eq!(describe_flag(&flags), "WS, by the kill switch");
    }
}
