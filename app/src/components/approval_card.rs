//! The approval card: a tool call Claude asks to make, with Allow, Allow for this session and Deny; every tab
//! shows it, and every tab shows the outcome once any of them (or a rule, the timeout, a stop) decided.

use leptos::prelude::*;
use leptos::task::spawn_local;
use vf_protocol::api::ApproveRequest;
use vf_protocol::transcript::{Approval, Decision};
use vf_protocol::{Answers, ApprovalScope, DecidedBy};

use super::plan_card::PlanCard;
use super::question_card::QuestionCard;
use super::tool_card::DetailView;
use crate::api;
use crate::tool_detail::{tool_hint, Detail};

/// The tool through which Claude asks the user questions.
const ASK_USER_QUESTION: &str = "AskUserQuestion";
/// The tool through which Claude, in plan mode, presents its plan.
const EXIT_PLAN_MODE: &str = "ExitPlanMode";

/// The session the chat shows, for the components inside it that act on it.
#[derive(Clone, Copy)]
pub struct CurrentSession(pub Signal<String>);

/// What a decided card says.
pub(super) fn outcome(decision: &Decision) -> String {
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

/// Sends the decision on one approval; the tool, question and plan cards share it. A 409 means another tab, a rule
/// or the timeout decided first: the stream brings that outcome, so it is no error here.
#[derive(Clone, Copy)]
pub(super) struct Decider {
    session: Option<Signal<String>>,
    id: StoredValue<String>,
    pub sending: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
}

impl Decider {
    fn new(id: String) -> Self {
        Decider {
            session: use_context::<CurrentSession>().map(|s| s.0),
            id: StoredValue::new(id),
            sending: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    pub fn send(
        self,
        approved: bool,
        scope: ApprovalScope,
        message: Option<String>,
        answers: Option<Answers>,
    ) {
        let Some(session) = self.session else { return };
        let request = ApproveRequest {
            session_id: session.get_untracked(),
            approval_id: self.id.get_value(),
            approved,
            scope: Some(scope),
            message: message.filter(|m| !approved && !m.trim().is_empty()),
            answers,
        };
        self.sending.set(true);
        self.error.set(None);
        spawn_local(async move {
            match api::approve(&request).await {
                Ok(()) | Err(api::ApiError::Status { status: 409, .. }) => {}
                Err(e) => self.error.set(Some(e.to_string())),
            }
            self.sending.set(false);
        });
    }
}

/// A button of a card that sends a decision.
pub(super) fn decision_button(
    decider: Decider,
    testid: &'static str,
    class: &'static str,
    label: &'static str,
    decide: impl Fn() + 'static,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class=class
            data-testid=testid
            disabled=move || decider.sending.get()
            on:click=move |_| decide()
        >
            {label}
        </button>
    }
}

/// The message a deny or "keep planning" carries to Claude.
pub(super) fn message_input(
    message: RwSignal<String>,
    testid: &'static str,
    placeholder: &'static str,
) -> impl IntoView {
    view! {
        <input
            type="text"
            class="approval-message"
            data-testid=testid
            placeholder=placeholder
            aria-label=placeholder
            prop:value=move || message.get()
            on:input=move |ev| message.set(event_target_value(&ev))
        />
    }
}

/// A pending or decided approval: a tool call, Claude's questions (`AskUserQuestion`) or its plan
/// (`ExitPlanMode`). Its buttons send the decision; the card changes when the decision comes back on the stream,
/// like every other tab's.
#[component]
pub fn ApprovalCard(
    /// The approval, kept up to date: its decision fills in.
    approval: Memo<Option<Approval>>,
) -> impl IntoView {
    let (id, tool, input) = approval.with_untracked(|a| match a {
        Some(a) => (a.id.clone(), a.tool_name.clone(), a.input.clone()),
        None => Default::default(),
    });
    let decided =
        Memo::new(move |_| approval.with(|a| a.as_ref().and_then(|a| a.decision.clone())));
    let state = move || match decided.get() {
        None => "pending",
        Some(d) if d.approved => "allowed",
        Some(_) => "denied",
    };
    let decider = Decider::new(id.clone());
    let (kind, body) = match tool.as_str() {
        ASK_USER_QUESTION => (
            "question",
            view! { <QuestionCard id input decided decider /> }.into_any(),
        ),
        EXIT_PLAN_MODE => (
            "plan",
            view! { <PlanCard input decided decider /> }.into_any(),
        ),
        _ => (
            "tool",
            view! { <ToolApproval tool input decided decider /> }.into_any(),
        ),
    };
    view! {
        <section class="approval" data-testid="approval" data-kind=kind data-state=state>
            {body}
            {move || {
                decider.error.get().map(|e| view! { <p class="approval-error" role="alert">{e}</p> })
            }}
        </section>
    }
}

/// A tool call: what it would do, then Allow, Allow for this session, or Deny with a message.
#[component]
fn ToolApproval(
    tool: String,
    input: serde_json::Value,
    decided: Memo<Option<Decision>>,
    decider: Decider,
) -> impl IntoView {
    let hint = tool_hint(&input).unwrap_or_default();
    let detail = Detail::of(&tool, &input);
    let message = RwSignal::new(String::new());
    let decide = move |approved: bool, scope: ApprovalScope| {
        move || decider.send(approved, scope, Some(message.get_untracked()), None)
    };
    view! {
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
            None => view! {
                <div class="approval-actions">
                    {decision_button(decider, "approval-allow", "primary", "Allow", decide(true, ApprovalScope::Once))}
                    {decision_button(
                        decider,
                        "approval-allow-session",
                        "",
                        "Allow for this session",
                        decide(true, ApprovalScope::Session),
                    )}
                    {message_input(message, "approval-message", "Why not? (optional, told to Claude)")}
                    {decision_button(decider, "approval-deny", "danger", "Deny", decide(false, ApprovalScope::Once))}
                </div>
            }
            .into_any(),
        }}
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
            answers: None,
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
