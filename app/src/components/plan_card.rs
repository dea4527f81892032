//! Claude's plan (`ExitPlanMode`) rendered as markdown, with "Approve plan" (Claude goes on to carry it out, and
//! the session can switch to agent mode for the next turns) and "Keep planning" with what should change.

use leptos::prelude::*;
use serde_json::Value;
use vf_protocol::api::SessionMode;
use vf_protocol::transcript::Decision;
use vf_protocol::ApprovalScope;

use super::approval_card::{decision_button, message_input, Decider};
use super::turn_controls::SessionTurn;
use crate::{code_worker, markdown};

/// What a decided plan card says.
fn plan_outcome(decision: &Decision) -> String {
    match (decision.approved, decision.message.as_deref()) {
        (true, _) => "Plan approved".into(),
        (false, Some(message)) if decision.by == vf_protocol::DecidedBy::User => {
            format!("Kept planning: {message}")
        }
        (false, _) => super::approval_card::outcome(decision),
    }
}

#[component]
pub fn PlanCard(input: Value, decided: Memo<Option<Decision>>, decider: Decider) -> impl IntoView {
    let plan = input["plan"].as_str().unwrap_or_default().to_string();
    let html = markdown::render(&plan, code_worker::write);
    let turn = use_context::<SessionTurn>().map(|t| t.0);
    // Offered while the session is in plan mode: the next turns then carry out rather than plan.
    let planning =
        Signal::derive(move || turn.is_some_and(|t| t.with(|t| t.mode == Some(SessionMode::Plan))));
    let switch = RwSignal::new(true);
    let message = RwSignal::new(String::new());
    let approve = move || {
        if planning.get_untracked() && switch.get_untracked() {
            if let Some(turn) = turn {
                turn.update(|t| t.mode = Some(SessionMode::Agent));
            }
        }
        decider.send(true, ApprovalScope::Once, None, None);
    };
    let keep = move || {
        decider.send(
            false,
            ApprovalScope::Once,
            Some(message.get_untracked()),
            None,
        )
    };
    view! {
        <header class="approval-head">
            <span class="approval-title">"Claude's plan"</span>
        </header>
        <div class="markdown plan-body" data-testid="plan-body" inner_html=html></div>
        {move || match decided.get() {
            Some(decision) => view! {
                <p class="approval-outcome" data-testid="approval-outcome">{plan_outcome(&decision)}</p>
            }
            .into_any(),
            None => view! {
                <div class="approval-actions">
                    {decision_button(decider, "plan-approve", "primary", "Approve plan", approve)}
                    <Show when=move || planning.get()>
                        <label class="plan-switch">
                            <input
                                type="checkbox"
                                data-testid="plan-switch"
                                prop:checked=move || switch.get()
                                on:change=move |ev| switch.set(event_target_checked(&ev))
                            />
                            "then work in agent mode"
                        </label>
                    </Show>
                    {message_input(message, "plan-message", "What should change? (told to Claude)")}
                    {decision_button(decider, "plan-keep", "", "Keep planning", keep)}
                </div>
            }
            .into_any(),
        }}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vf_protocol::DecidedBy;

    #[test]
    fn outcomes() {
        let decision = |approved, by, message: Option<&str>| Decision {
            approved,
            scope: ApprovalScope::Once,
            message: message.map(String::from),
            by,
            answers: None,
        };
        assert_eq!(
            plan_outcome(&decision(true, DecidedBy::User, None)),
            "Plan approved"
        );
        assert_eq!(
            plan_outcome(&decision(false, DecidedBy::User, Some("cover the tests"))),
            "Kept planning: cover the tests"
        );
        assert_eq!(
            plan_outcome(&decision(
                false,
                DecidedBy::Timeout,
                Some("Nobody answered in time.")
            )),
            "Denied (nobody answered in time)"
        );
    }
}
