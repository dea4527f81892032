//! One message of the chat: the user's turn as plain text, the assistant's as markdown and tool cards.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::transcript::{Activity, Message, Part, Role, Status};
use vf_protocol::{StatusKind, Usage};
use wasm_bindgen::JsCast;

use super::{ApprovalCard, ToolCard};
use crate::{browser, code_worker, markdown};

/// The least time between two renders of a streaming text, in ms: 20 a second read as fluid, and each render
/// costs a layout of the whole text.
const STREAM_RENDER_MS: f64 = 50.0;

/// The value of `data-status`.
fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Streaming => "streaming",
        Status::Done { .. } => "done",
        Status::Stopped => "stopped",
        Status::Failed { .. } => "failed",
    }
}

/// A cost in dollars to four decimals, `$0.0412`. Integer arithmetic: float formatting (`{:.4}`) would add tens of
/// kilobytes of wasm for a few numbers.
pub(crate) fn dollars(cost: f64) -> String {
    let ten_thousandths = (cost.max(0.0) * 10_000.0).round() as u64;
    format!(
        "${}.{:04}",
        ten_thousandths / 10_000,
        ten_thousandths % 10_000
    )
}

/// The small print under a finished answer: duration, tokens, cost.
fn meta_line(usage: Option<Usage>, cost_usd: Option<f64>, duration_ms: Option<u64>) -> String {
    let mut bits = Vec::new();
    if let Some(ms) = duration_ms {
        // Integer arithmetic: float formatting would add kilobytes of wasm for two numbers.
        bits.push(format!("{}.{} s", ms / 1000, ms % 1000 / 100));
    }
    if let Some(u) = usage {
        bits.push(format!(
            "{} in / {} out tokens",
            u.input_tokens, u.output_tokens
        ));
    }
    if let Some(cost) = cost_usd {
        bits.push(dollars(cost));
    }
    bits.join(" · ")
}

/// One message. `message` is `None` only for the moment the row is being removed.
///
/// Parts only ever grow (text is appended, tool results fill in), so each part keeps its DOM node for the life of
/// the message: a tool card the user opened stays open while the answer streams on.
#[component]
pub fn MessageView(
    /// The message, kept up to date as events arrive.
    message: Signal<Option<Message>>,
) -> impl IntoView {
    let role = message.with_untracked(|m| m.as_ref().map_or(Role::Assistant, |m| m.role));
    let status = move || message.with(|m| m.as_ref().map_or("done", |m| status_name(&m.status)));
    match role {
        Role::User => view! {
            <article class="message message-user" data-testid="message" data-role="user" data-status=status>
                <p class="user-text">{move || message.with(|m| m.as_ref().map(Message::text).unwrap_or_default())}</p>
            </article>
        }
        .into_any(),
        Role::Assistant => {
            let part_count = Memo::new(move |_| message.with(|m| m.as_ref().map_or(0, |m| m.parts.len())));
            let status_value = Memo::new(move |_| message.with(|m| m.as_ref().map(|m| m.status.clone())));
            let answering = Signal::derive(move || status_value.with(|s| s == &Some(Status::Streaming)));
            let activity = Memo::new(move |_| message.with(|m| m.as_ref().and_then(|m| m.activity.clone())));
            view! {
                <article class="message message-assistant" data-testid="message" data-role="assistant" data-status=status>
                    <For each=move || 0..part_count.get() key=|index| *index let:index>
                        <PartView
                            part=Memo::new(move |_| {
                                message.with(|m| m.as_ref().and_then(|m| m.parts.get(index).cloned()))
                            })
                            answering
                        />
                    </For>
                    <StatusLine status=status_value activity />
                </article>
            }
            .into_any()
        }
    }
}

/// A text part (markdown), a tool card or an approval card; a part never changes kind. `answering`: the answer is still streaming.
#[component]
fn PartView(part: Memo<Option<Part>>, answering: Signal<bool>) -> impl IntoView {
    if part.with_untracked(|p| matches!(p, Some(Part::Approval(_)))) {
        let approval = Memo::new(move |_| {
            part.with(|p| match p {
                Some(Part::Approval(approval)) => Some(approval.clone()),
                _ => None,
            })
        });
        view! { <ApprovalCard approval /> }.into_any()
    } else if part.with_untracked(|p| matches!(p, Some(Part::Tool(_)))) {
        let call = Memo::new(move |_| {
            part.with(|p| match p {
                Some(Part::Tool(call)) => Some(call.clone()),
                _ => None,
            })
        });
        view! { <ToolCard call answering /> }.into_any()
    } else {
        // A text part only grows, so its length tells which version of it the page shows.
        let length = move || {
            part.try_with_untracked(|p| match p {
                Some(Part::Text(text)) => text.len(),
                _ => 0,
            })
        };
        let rendered = StoredValue::new(0);
        // Fired when the highlighting of a code block that this text showed plain comes: one for each piece.
        let finished_highlighted = Trigger::new();
        let growing_highlighted = Trigger::new();
        // While it streams, the text shows as two pieces: its finished blocks, each rendered once and appended
        // when it finishes (so their DOM, a selection in them and their highlighted code stay put), and the block
        // still growing, rendered again as it grows. Otherwise it is one piece, rendered whole.
        let finished = RwSignal::new(String::new());
        let finished_piece = NodeRef::<leptos::html::Div>::new();
        let growing = RwSignal::new(String::new());
        // How much of the text the finished piece shows (None: it must be rendered whole again), and where each
        // block appended to it since it was last rendered whole starts (each sits in its own `data-at` element).
        let finished_len = StoredValue::new(None::<usize>);
        let appended = StoredValue::new(Vec::<usize>::new());
        let render = move |streaming: bool| {
            part.try_with_untracked(|p| {
                let Some(Part::Text(text)) = p else {
                    return;
                };
                rendered.try_set_value(text.len());
                let split = if streaming {
                    markdown::finished_blocks_len(text)
                } else {
                    text.len()
                };
                let shown = finished_len.get_value().filter(|_| streaming);
                let piece = finished_piece.get_untracked();
                match (shown, piece) {
                    (Some(shown), _) if shown == split => {}
                    (Some(shown), Some(piece)) if shown < split => {
                        let blocks = markdown::render(&text[shown..split], code_worker::write);
                        let html =
                            format!("<div class=\"md-piece\" data-at=\"{shown}\">{blocks}</div>");
                        let _ = piece.insert_adjacent_html("beforeend", &html);
                        appended.update_value(|starts| starts.push(shown));
                    }
                    _ => {
                        finished.try_set(markdown::render(&text[..split], code_worker::write));
                        appended.update_value(Vec::clear);
                    }
                }
                code_worker::notify_when_answered(finished_highlighted);
                finished_len.set_value(Some(split));
                growing.try_set(markdown::render(&text[split..], code_worker::write));
                code_worker::notify_when_answered(growing_highlighted);
            });
        };
        render(answering.get_untracked());
        // While the answer streams, deltas come faster than a screen shows them: render the text at most once an
        // animation frame, and no sooner than STREAM_RENDER_MS after its last render. A finished text renders
        // again only when the highlighting of one of its blocks comes.
        let frame_pending = StoredValue::new(false);
        let last_render = StoredValue::new(0.0_f64);
        let schedule = move || {
            if !answering.get_untracked() {
                render(false);
            } else if !frame_pending.get_value() {
                frame_pending.set_value(true);
                let frame = move || {
                    request_animation_frame(move || {
                        frame_pending.try_set_value(false);
                        last_render.try_set_value(browser::now_ms() as f64);
                        render(answering.get_untracked());
                    })
                };
                let wait = last_render.get_value() + STREAM_RENDER_MS - browser::now_ms() as f64;
                if wait > 0.0 {
                    set_timeout(frame, Duration::from_millis(wait as u64));
                } else {
                    frame();
                }
            }
        };
        Effect::new(move |_| {
            part.track();
            if length() != rendered.try_get_value() {
                schedule();
            }
        });
        // The answer ended: its whole text shows now, in one piece, in the same update as its status, not after a
        // pending frame.
        Effect::new(move |was_answering: Option<bool>| {
            let answering = answering.get();
            if !answering && (was_answering == Some(true) || length() != rendered.try_get_value()) {
                render(false);
            }
            answering
        });
        // A finished block's highlighting came: while the answer streams, only the appended blocks that hold code
        // are rendered again, in place; the rest of the finished piece stays as it is.
        Effect::new(move |first_run: Option<()>| {
            finished_highlighted.track();
            if first_run.is_none() {
                return;
            }
            let (Some(end), Some(piece)) =
                (finished_len.get_value(), finished_piece.get_untracked())
            else {
                return schedule();
            };
            let starts = appended.get_value();
            let whole_first = starts.first().copied().unwrap_or(end);
            part.try_with_untracked(|p| {
                let Some(Part::Text(text)) = p else {
                    return;
                };
                if !answering.get_untracked() || has_fence(&text[..whole_first]) {
                    finished_len.set_value(None);
                    return schedule();
                }
                let ends = starts.iter().skip(1).copied().chain([end]);
                for (start, end) in starts.iter().copied().zip(ends) {
                    let block = &text[start..end];
                    let selector = format!(":scope > [data-at=\"{start}\"]");
                    if let (true, Ok(Some(element))) =
                        (has_fence(block), piece.query_selector(&selector))
                    {
                        element.set_inner_html(&markdown::render(block, code_worker::write));
                    }
                }
                code_worker::notify_when_answered(finished_highlighted);
            });
        });
        Effect::new(move |first_run: Option<()>| {
            growing_highlighted.track();
            if first_run.is_some() {
                schedule();
            }
        });
        view! {
            <div class="markdown" on:click=copy_code>
                <div class="md-piece" node_ref=finished_piece inner_html=finished></div>
                <div class="md-piece" inner_html=growing></div>
            </div>
        }
        .into_any()
    }
}

/// Whether markdown holds a fenced code block (the only kind that gets highlighted).
fn has_fence(markdown: &str) -> bool {
    markdown.contains("```") || markdown.contains("~~~")
}

/// A click in rendered markdown: on a code block's copy button, copies that block's code. One listener serves every
/// button, since the markdown is inner HTML and its buttons cannot carry their own.
fn copy_code(event: web_sys::MouseEvent) {
    let Some(button) = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .and_then(|element| element.closest("button.copy-code").ok().flatten())
    else {
        return;
    };
    let Some(code) = button
        .parent_element()
        .and_then(|block| block.query_selector("code").ok().flatten())
    else {
        return;
    };
    let text = code.text_content().unwrap_or_default();
    spawn_local(async move {
        let copied = browser::copy_text(&text).await;
        // The stylesheet labels the button by its state.
        let _ = button.set_attribute("data-state", if copied { "copied" } else { "failed" });
        set_timeout(
            move || {
                let _ = button.remove_attribute("data-state");
            },
            Duration::from_millis(1500),
        );
    });
}

/// Under an answer: working (with what the CLI last said it is doing), its small print, stopped, or its failure.
#[component]
fn StatusLine(status: Memo<Option<Status>>, activity: Memo<Option<Activity>>) -> impl IntoView {
    move || match status.get() {
        Some(Status::Streaming) => {
            let kind = move || activity.with(|a| a.as_ref().map(|a| kind_name(a.kind)));
            let said = move || {
                activity.with(|a| {
                    a.as_ref()
                        .map_or("Working…".to_string(), |a| a.message.clone())
                })
            };
            view! {
                <p class="status status-streaming" data-testid="activity" data-kind=kind aria-live="polite">
                    <span class="pulse" aria-hidden="true"></span>{said}
                </p>
            }
            .into_any()
        }
        Some(Status::Done {
            usage,
            cost_usd,
            duration_ms,
        }) => view! { <p class="status status-meta">{meta_line(usage, cost_usd, duration_ms)}</p> }
            .into_any(),
        Some(Status::Stopped) => {
            view! { <p class="status status-stopped">"Stopped."</p> }.into_any()
        }
        Some(Status::Failed { message, .. }) => {
            view! { <p class="status status-failed" role="alert">{message}</p> }.into_any()
        }
        None => ().into_any(),
    }
}

/// The value of `data-kind` on the working line: what the CLI says it is doing.
fn kind_name(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::ApiRetry => "api-retry",
        StatusKind::RateLimit => "rate-limit",
        StatusKind::Compacting => "compacting",
        StatusKind::Task => "task",
        StatusKind::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_test_contract() {
        assert_eq!(status_name(&Status::Streaming), "streaming");
        assert_eq!(status_name(&Status::Stopped), "stopped");
        assert_eq!(
            status_name(&Status::Failed {
                code: vf_protocol::ErrorCode::Timeout,
                message: String::new()
            }),
            "failed"
        );
    }

    #[test]
    fn meta_line_says_what_is_known() {
        assert_eq!(meta_line(None, None, None), "");
        assert_eq!(
            meta_line(
                Some(Usage {
                    input_tokens: 12,
                    output_tokens: 3
                }),
                Some(0.04123),
                Some(8421)
            ),
            "8.4 s · 12 in / 3 out tokens · $0.0412"
        );
    }
}
