//! The approval card: a tool call Claude asks to make, with Allow, Allow for this session and Deny; every tab
//! shows it, and every tab shows the outcome once any of them (or a rule, the timeout, a stop) decided.

use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::api::ApproveRequest;
use vf_protocol::transcript::{Approval, Decision};
use vf_protocol::{ApprovalScope, DecidedBy};

use super::tool_card::DetailView;
use crate::api;
use crate::tool_detail::{tool_hint, Detail};

/// The session the chat shows, for the components inside it that act on it.
#[derive(Clone, Copy)]
pub struct CurrentSession(pub Signal<String>);

/// What a decided card says.
fn outcome(decision: &Decision) -> String {
    let verdict = match (decision.approved, decision.scope) {
        (true, ApprovalScope::Session) => "Allowed for this session",
        (true, ApprovalScope::Once) => "Allowed",
        (false, _) => "Denied",
    };
    let why = match decision.by {
        DecidedBy::User => "",
        DecidedBy::Rule => " (by a session rule)",
        DecidedBy::Timeout => " (nobody answered in time)",
        DecidedBy::Cancel => " (the answer was stopped)",
    };
    match decision
        .message
        .as_deref()
        .filter(|_| decision.by == DecidedBy::User)
    {
        Some(message) => format!("{verdict}{why}: {message}"),
        None => format!("{verdict}{why}"),
    }
}

/// A pending or decided approval. Its buttons send the decision; the card changes when the decision comes back
/// on the stream, like every other tab's.
#[component]
pub fn ApprovalCard(
    /// The approval, kept up to date: its decision fills in.
    approval: Memo<Option<Approval>>,
) -> impl IntoView {
    let session = use_context::<CurrentSession>().map(|s| s.0);
    let (id, tool, hint, detail) = approval.with_untracked(|a| match a {
        Some(a) => (
            a.id.clone(),
            a.tool_name.clone(),
            tool_hint(&a.input).unwrap_or_default(),
            Detail::of(&a.tool_name, &a.input),
        ),
        None => (
            String::new(),
            String::new(),
            String::new(),
            Detail::Fields(Vec::new()),
        ),
    });
    let decided =
        Memo::new(move |_| approval.with(|a| a.as_ref().and_then(|a| a.decision.clone())));
    let state = move || match decided.get() {
        None => "pending",
        Some(d) if d.approved => "allowed",
        Some(_) => "denied",
    };
    let message = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let decide = move |approved: bool, scope: ApprovalScope| {
        let Some(session) = session else { return };
        let request = ApproveRequest {
            session_id: session.get_untracked(),
            approval_id: id.clone(),
            approved,
            scope: Some(scope),
            message: Some(message.get_untracked()).filter(|m| !approved && !m.trim().is_empty()),
        };
        sending.set(true);
        error.set(None);
        spawn_local(async move {
            match api::approve(&request).await {
                // 409: another tab, a rule or the timeout decided first; the stream brings the outcome.
                Ok(()) | Err(api::ApiError::Status { status: 409, .. }) => {}
                Err(e) => error.set(Some(e.to_string())),
            }
            sending.set(false);
        });
    };
    view! {
        <section class="approval" data-testid="approval" data-state=state>
            <header class="approval-head">
                <span class="approval-title">"Claude wants to use "<strong>{tool}</strong></span>
                <span class="tool-hint">{hint}</span>
            </header>
            <div class="tool-body">
                <DetailView detail />
            </div>
            {move || match decided.get() {
                Some(decision) => view! {
                    <p class="approval-outcome" data-testid="approval-outcome">{outcome(&decision)}</p>
                }
                .into_any(),
                None => {
                    let button = |testid: &'static str, class: &'static str, label: &'static str, approved, scope| {
                        let decide = decide.clone();
                        view! {
                            <button
                                type="button"
                                class=class
                                data-testid=testid
                                disabled=move || sending.get()
                                on:click=move |_| decide(approved, scope)
                            >
                                {label}
                            </button>
                        }
                    };
                    view! {
                        <div class="approval-actions">
                            {button("approval-allow", "", "Allow", true, ApprovalScope::Once)}
                            {button("approval-allow-session", "ghost", "Allow for this session", true, ApprovalScope::Session)}
                            <input
                                type="text"
                                class="approval-message"
                                data-testid="approval-message"
                                placeholder="Why not? (optional, told to Claude)"
                                aria-label="Message to Claude with a deny"
                                prop:value=move || message.get()
                                on:input=move |ev| message.set(event_target_value(&ev))
                            />
                            {button("approval-deny", "danger", "Deny", false, ApprovalScope::Once)}
                        </div>
                    }
                    .into_any()
                }
            }}
            {move || error.get().map(|e| view! { <p class="approval-error" role="alert">{e}</p> })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_say_who_decided() {
        let decision = |approved, scope, by, message: Option<&str>| Decision {
            approved,
            scope,
            message: message.map(String::from),
            by,
        };
        assert_eq!(
            outcome(&decision(true, ApprovalScope::Once, DecidedBy::User, None)),
            "Allowed"
        );
        assert_eq!(
            outcome(&decision(
                false,
                ApprovalScope::Once,
                DecidedBy::User,
                Some("use ls")
            )),
            "Denied: use ls"
        );
        assert_eq!(
            outcome(&decision(
                true,
                ApprovalScope::Session,
                DecidedBy::Rule,
                None
            )),
            "Allowed for this session (by a session rule)"
        );
        assert_eq!(
            outcome(&decision(
                false,
                ApprovalScope::Once,
                DecidedBy::Timeout,
                Some("Nobody answered in time.")
            )),
            "Denied (nobody answered in time)"
        );
    }
}
