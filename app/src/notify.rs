//! Browser notifications while the tab is hidden: an answer ended, or Claude asks for approval; asked for once.

use leptos::prelude::window;
use vf_protocol::transcript::{Approval, Status};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use crate::conversation::Finished;
use crate::{browser, tool_detail};

/// Set once the permission prompt was shown, whatever the answer: the app never asks twice.
const ASKED_KEY: &str = "vf-notifications-asked";

/// Longest answer excerpt shown in a notification.
const EXCERPT_CHARS: usize = 140;

/// Some browsers (iOS Safari outside a home-screen app) have no `Notification` at all.
fn supported() -> bool {
    js_sys::Reflect::has(&window(), &"Notification".into()).unwrap_or(false)
}

/// Asks for permission the first time the user sends a prompt (a user gesture, as browsers require).
pub fn ask_once() {
    if !supported()
        || Notification::permission() != NotificationPermission::Default
        || browser::storage_get(ASKED_KEY).is_some()
    {
        return;
    }
    browser::storage_set(ASKED_KEY, "1");
    let _ = Notification::request_permission();
}

/// The title and body of the notification for an answer that ended.
pub fn describe(finished: &Finished) -> (String, String) {
    let title = match &finished.status {
        Status::Failed { .. } => "Claude Code failed",
        Status::Stopped => "Claude Code stopped",
        Status::Done { .. } | Status::Streaming => "Claude Code answered",
    };
    let body = match &finished.status {
        Status::Failed { message, .. } => message.clone(),
        _ => excerpt(&finished.text),
    };
    (title.to_string(), body)
}

fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(EXCERPT_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// The title and body of the notification for an approval Claude waits for.
pub fn describe_approval(approval: &Approval) -> (String, String) {
    let hint = tool_detail::tool_hint(&approval.input)
        .map(|hint| excerpt(&hint))
        .unwrap_or_default();
    (
        format!("Claude Code asks to use {}", approval.tool_name),
        hint,
    )
}

/// Shows a notification if the tab is hidden and the user allowed notifications; a click on it brings the tab
/// forward. Notifications with the same `tag` replace each other.
fn show(title: &str, body: &str, tag: &str) {
    if !supported()
        || !browser::is_hidden()
        || Notification::permission() != NotificationPermission::Granted
    {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    options.set_tag(tag);
    options.set_icon("/favicon.svg");
    let Ok(notification) = Notification::new_with_options(title, &options) else {
        return;
    };
    let shown = notification.clone();
    let focus = Closure::<dyn FnMut()>::new(move || {
        let _ = window().focus();
        shown.close();
    });
    notification.set_onclick(Some(focus.as_ref().unchecked_ref()));
    // The handler lives as long as the notification, which the browser owns.
    focus.forget();
}

/// An answer ended.
pub fn answer_finished(finished: &Finished) {
    let (title, body) = describe(finished);
    show(&title, &body, "vf-answer");
}

/// Claude waits for a decision: one notification per approval.
pub fn approval_needed(approval: &Approval) {
    let (title, body) = describe_approval(approval);
    show(&title, &body, &format!("vf-approval-{}", approval.id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use vf_protocol::ErrorCode;

    #[test]
    fn describes_the_outcome() {
        let done = Finished {
            status: Status::Done {
                usage: None,
                cost_usd: None,
                duration_ms: None,
            },
            text: "line one\n\nline   two".into(),
        };
        assert_eq!(
            describe(&done),
            ("Claude Code answered".into(), "line one line two".into())
        );
        let failed = Finished {
            status: Status::Failed {
                code: ErrorCode::Timeout,
                message: "no answer in time".into(),
            },
            text: String::new(),
        };
        assert_eq!(describe(&failed).1, "no answer in time");
    }

    #[test]
    fn describes_an_approval() {
        let approval = Approval {
            id: "a1".into(),
            tool_name: "Bash".into(),
            input: serde_json::json!({"command": "cargo test"}),
            tool_use_id: None,
            suggestions: None,
            decision: None,
        };
        let (title, body) = describe_approval(&approval);
        assert_eq!(title, "Claude Code asks to use Bash");
        assert_eq!(body, "cargo test");
    }

    #[test]
    fn long_answers_are_cut() {
        let long = "word ".repeat(100);
        let body = excerpt(&long);
        assert_eq!(body.chars().count(), EXCERPT_CHARS);
        assert!(body.ends_with('…'));
    }
}
