//! The prompt box: Enter sends, Shift+Enter adds a line; a stop button while an answer runs; the turn's controls.

use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::prelude::*;
use vf_protocol::api::TurnOptions;

use super::turn_controls::TurnControls;

/// The textarea, the send button and, while an answer runs, the stop button.
#[component]
pub fn PromptBox(
    /// Typing and sending are off (an answer is running, or the session is still loading).
    #[prop(into)]
    disabled: Signal<bool>,
    /// An answer is running: show the stop button instead of send.
    #[prop(into)]
    streaming: Signal<bool>,
    /// Called with the prompt; the box empties itself.
    #[prop(into)]
    on_send: Callback<String>,
    /// Called when the user stops the answer.
    #[prop(into)]
    on_stop: Callback<()>,
    /// Mode, autonomy and model of the next turn.
    turn: RwSignal<TurnOptions>,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let submit = move || {
        let text = draft.get_untracked();
        if disabled.get_untracked() || text.trim().is_empty() {
            return;
        }
        draft.set(String::new());
        on_send.run(text);
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    view! {
        <form
            class="prompt"
            on:submit=move |ev: SubmitEvent| {
                ev.prevent_default();
                submit();
            }
        >
            <textarea
                data-testid="prompt"
                aria-label="Prompt"
                rows="2"
                placeholder="Ask Claude Code…"
                title="Enter sends; Shift+Enter adds a line"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=on_keydown
                disabled=disabled
            ></textarea>
            <Show
                when=move || streaming.get()
                fallback=move || {
                    view! {
                        <button
                            type="submit"
                            class="primary"
                            data-testid="send"
                            disabled=move || disabled.get() || draft.with(|d| d.trim().is_empty())
                        >
                            "Send"
                        </button>
                    }
                }
            >
                <button
                    type="submit"
                    class="primary"
                    data-testid="queue"
                    title="Sent when the running answer ends"
                    disabled=move || disabled.get() || draft.with(|d| d.trim().is_empty())
                >
                    "Queue"
                </button>
                <button type="button" class="stop" data-testid="stop" on:click=move |_| on_stop.run(())>
                    "Stop"
                </button>
            </Show>
            <TurnControls turn=turn disabled=disabled />
        </form>
    }
}
