//! A tool call as a card: what the tool was asked (a diff, a file, a command, a checklist…) and what it answered.

use leptos::prelude::*;
use vf_protocol::transcript::ToolCall;

use crate::code_worker;
use crate::tool_detail::{preview, result_summary, tool_hint, Detail, Todo};

/// A tool call as a collapsible card. `answering`: the answer is still streaming.
#[component]
pub fn ToolCard(
    /// The call, kept up to date: its result fills in when the tool reports back.
    call: Memo<Option<ToolCall>>,
    answering: Signal<bool>,
) -> impl IntoView {
    // The input is fixed when the call starts; only the result comes later.
    let (name, hint, detail) = call.with_untracked(|c| match c {
        Some(c) => (
            c.name.clone(),
            tool_hint(&c.input).unwrap_or_default(),
            Detail::of(&c.name, &c.input),
        ),
        None => (String::new(), String::new(), Detail::Fields(Vec::new())),
    });
    let state = move || {
        call.with(|c| match c {
            Some(c) if c.output.is_none() && answering.get() => "running",
            // The answer ended (stopped, failed) before the tool reported back.
            Some(c) if c.output.is_none() => "no-result",
            Some(c) if c.is_error => "error",
            _ => "done",
        })
    };
    let summary = move || {
        call.with(|c| {
            let c = c.as_ref()?;
            let output = c.output.as_deref()?;
            match c.images.len() {
                // A result that is only pictures (a screenshot, an image file read) says so, not "0 lines".
                n if n > 0 && output.is_empty() => Some(if n == 1 {
                    "1 image".into()
                } else {
                    format!("{n} images")
                }),
                _ => result_summary(&c.name, output, c.is_error),
            }
        })
    };
    let output = Memo::new(move |_| {
        call.with(|c| {
            c.as_ref()
                .and_then(|c| c.output.clone())
                .filter(|text| !text.is_empty() || c.as_ref().is_none_or(|c| c.images.is_empty()))
        })
    });
    let images =
        Memo::new(move |_| call.with(|c| c.as_ref().map(|c| c.images.clone()).unwrap_or_default()));
    let child_count = Memo::new(move |_| call.with(|c| c.as_ref().map_or(0, |c| c.children.len())));
    let children_label = move || match child_count.get() {
        0 => String::new(),
        1 => "1 call".to_string(),
        n => format!("{n} calls"),
    };
    view! {
        <details class="tool" class:tool-error=move || state() == "error" data-testid="tool-call" data-state=state>
            <summary>
                <span class="tool-name">{name}</span>
                <span class="tool-hint">{hint}</span>
                <span class="tool-count">{summary}</span>
                <span class="tool-count">{children_label}</span>
                <span class="tool-state">{move || state().replace('-', " ")}</span>
            </summary>
            <div class="tool-body">
                <DetailView detail />
                <Show when=move || { child_count.get() > 0 }>
                    <div class="tool-label">"Subagent's calls"</div>
                    <div class="tool-children" data-testid="subagent-calls">
                        <For each=move || 0..child_count.get() key=|index| *index let:index>
                            {
                                let child = Memo::new(move |_| {
                                    call.with(|c| c.as_ref().and_then(|c| c.children.get(index).cloned()))
                                });
                                // Erased: a card inside a card would otherwise be a type of infinite size.
                                view! { <ToolCard call=child answering /> }.into_any()
                            }
                        </For>
                    </div>
                </Show>
                {move || {
                    images.with(|images| {
                        images
                            .iter()
                            .map(|image| view! {
                                <img class="tool-image" data-testid="tool-image" src=image.data_url() alt="An image the tool returned" />
                            })
                            .collect_view()
                    })
                }}
                {move || {
                    output.get().map(|text| view! {
                        <div class="tool-label">"Result"</div>
                        <CodeText text language=String::new() class="tool-output" />
                    })
                }}
            </div>
        </details>
    }
}

/// The part of a card that shows the call's input (also what an approval card shows of the call it asks about).
#[component]
pub(super) fn DetailView(detail: Detail) -> impl IntoView {
    match detail {
        Detail::Edits(edits) => edits
            .into_iter()
            .map(|lines| {
                view! {
                    <pre class="diff">
                        {lines
                            .into_iter()
                            .map(|line| view! { <span class=line.kind.class()>{line.text}"\n"</span> })
                            .collect_view()}
                    </pre>
                }
            })
            .collect_view()
            .into_any(),
        Detail::File { language, content } => view! {
            <div class="tool-label">"Content"</div>
            <CodeText text=content language class="tool-input" />
        }
        .into_any(),
        Detail::Command(command) => view! { <pre class="tool-input tool-command">{command}</pre> }.into_any(),
        Detail::Todos(todos) => view! {
            <ul class="todos">{todos.into_iter().map(|todo| view! { <TodoItem todo /> }).collect_view()}</ul>
        }
        .into_any(),
        Detail::Fields(fields) => view! {
            <dl class="tool-fields">
                {fields
                    .into_iter()
                    .map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> })
                    .collect_view()}
            </dl>
        }
        .into_any(),
        Detail::Input(json) => view! {
            <div class="tool-label">"Input"</div>
            <pre class="tool-input">{json}</pre>
        }
        .into_any(),
    }
}

#[component]
fn TodoItem(todo: Todo) -> impl IntoView {
    let done = todo.status == "completed";
    view! {
        <li class="todo" data-status=todo.status>
            <input type="checkbox" disabled checked=done />
            " "
            {todo.content}
        </li>
    }
}

/// Text in a `pre`, highlighted (once the worker answered) when `language` is one we know; a long one shows its start and a "Show all".
#[component]
fn CodeText(text: String, language: String, class: &'static str) -> impl IntoView {
    let expanded = RwSignal::new(false);
    let total = preview(&text).map(|(_, total)| total);
    // Fired when the highlighting comes: until then the text shows plain.
    let highlighted = Trigger::new();
    let html = move || {
        highlighted.track();
        let shown = match preview(&text) {
            Some((start, _)) if !expanded.get() => start,
            _ => text.as_str(),
        };
        let mut html = String::new();
        code_worker::write(shown, &language, &mut html);
        code_worker::notify_when_answered(highlighted);
        html
    };
    view! {
        <pre class=class><code inner_html=html></code></pre>
        {total.map(|total| view! {
            <Show when=move || !expanded.get()>
                <button type="button" class="show-all" on:click=move |_| expanded.set(true)>
                    {format!("Show all {total} lines")}
                </button>
            </Show>
        })}
    }
}
