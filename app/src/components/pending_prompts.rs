//! Prompts that have not run yet, under the running answer: the ones queued on the server (with a remove
//! button) and the ones still waiting to be sent from this browser (edit, discard).

use leptos::prelude::*;
use vf_protocol::transcript::QueuedPrompt;

use crate::outbox::Pending;

#[component]
pub fn PendingPrompts(
    /// Queued on the server behind the running answer, in order.
    #[prop(into)]
    queued: Signal<Vec<QueuedPrompt>>,
    /// Removes a queued prompt by its queue id.
    remove_queued: Callback<String>,
    /// Not yet accepted by the server.
    #[prop(into)]
    outbox: Signal<Vec<Pending>>,
    /// Drops a waiting prompt by its key.
    discard_pending: Callback<String>,
    /// Replaces a waiting prompt's text: (key, new text).
    edit_pending: Callback<(String, String)>,
) -> impl IntoView {
    let edit = move |pending: Pending| {
        if let Ok(Some(text)) =
            window().prompt_with_message_and_default("Edit the prompt", &pending.prompt)
        {
            if !text.trim().is_empty() {
                edit_pending.run((pending.key, text));
            }
        }
    };
    view! {
        <ul class="pending-prompts" data-testid="queued-prompts">
            <For each=move || queued.get() key=|q| q.queue_id.clone() let:q>
                {
                    let id = q.queue_id.clone();
                    view! {
                        <li class="pending queued" data-testid="queued-prompt" data-queue-id=q.queue_id.clone()>
                            <span class="pending-label">"Queued"</span>
                            <span class="pending-text">{q.text.clone()}</span>
                            <button
                                type="button"
                                class="ghost danger"
                                data-testid="remove-queued"
                                aria-label="Remove this queued prompt"
                                on:click=move |_| remove_queued.run(id.clone())
                            >
                                "Remove"
                            </button>
                        </li>
                    }
                }
            </For>
            <For each=move || outbox.get() key=|p| (p.key.clone(), p.prompt.clone()) let:pending>
                {
                    let key = pending.key.clone();
                    let editing = pending.clone();
                    view! {
                        <li class="pending outbox" data-testid="outbox-prompt" data-key=pending.key.clone()>
                            <span class="pending-label">"Waiting to send"</span>
                            <span class="pending-text">{pending.prompt.clone()}</span>
                            <button
                                type="button"
                                class="ghost"
                                data-testid="edit-pending"
                                on:click=move |_| edit(editing.clone())
                            >
                                "Edit"
                            </button>
                            <button
                                type="button"
                                class="ghost danger"
                                data-testid="discard-pending"
                                on:click=move |_| discard_pending.run(key.clone())
                            >
                                "Discard"
                            </button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}
