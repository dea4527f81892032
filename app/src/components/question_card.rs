//! Claude's questions (`AskUserQuestion`) as a form: each question with its options (one or several), an "other"
//! answer, then Answer or Skip; decided, the answers given.

use leptos::prelude::*;
use serde_json::Value;
use vf_protocol::transcript::Decision;
use vf_protocol::ApprovalScope;

use super::approval_card::{decision_button, message_input, outcome, Decider};
use crate::questions::{self, Picked, Question};

/// One question of the form: its options as radio buttons or checkboxes, and "Other" with a text field.
#[component]
fn QuestionField(
    /// Unique among the page's forms: the radio group's name.
    name: String,
    question: Question,
    picked: RwSignal<Picked>,
) -> impl IntoView {
    let multi = question.multi_select;
    let kind = if multi { "checkbox" } else { "radio" };
    let options = question
        .options
        .iter()
        .enumerate()
        .map(|(index, choice)| {
            let name = name.clone();
            let label = choice.label.clone();
            view! {
                <label class="question-option">
                    <input
                        type=kind
                        name=name
                        data-testid="question-option"
                        data-label=label
                        prop:checked=move || picked.with(|p| p.options.contains(&index))
                        on:change=move |_| picked.update(|p| p.toggle(index, multi))
                    />
                    <span class="question-label">{choice.label.clone()}</span>
                    <span class="question-description">{choice.description.clone()}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <fieldset class="question" data-testid="question">
            <legend>
                <span class="question-header">{question.header.clone()}</span>
                <span class="question-text">{question.question.clone()}</span>
                {multi.then(|| view! { <span class="question-hint">"(choose any)"</span> })}
            </legend>
            {options}
            <label class="question-option question-other">
                <input
                    type=kind
                    name=name
                    data-testid="question-other"
                    aria-label="Other answer"
                    prop:checked=move || picked.with(|p| p.other.is_some())
                    on:change=move |_| picked.update(|p| p.toggle_other(multi))
                />
                <input
                    type="text"
                    data-testid="question-other-text"
                    placeholder="Other…"
                    aria-label="Your own answer"
                    prop:value=move || picked.with(|p| p.other.clone().unwrap_or_default())
                    on:input=move |ev| picked.update(|p| p.write_other(event_target_value(&ev), multi))
                />
            </label>
        </fieldset>
    }
}

/// The questions, or once decided, the answers (or why there were none).
#[component]
pub fn QuestionCard(
    /// The approval's id: names the form's radio groups.
    id: String,
    input: Value,
    decided: Memo<Option<Decision>>,
    decider: Decider,
) -> impl IntoView {
    let asked = questions::questions(&input);
    let picked: Vec<RwSignal<Picked>> = asked
        .iter()
        .map(|_| RwSignal::new(Picked::default()))
        .collect();
    let chosen = {
        let asked = asked.clone();
        let picked = picked.clone();
        Memo::new(move |_| {
            let now: Vec<Picked> = picked.iter().map(|p| p.get()).collect();
            questions::answers(&asked, &now).filter(|a| !a.is_empty())
        })
    };
    let message = RwSignal::new(String::new());
    let fields = asked
        .into_iter()
        .zip(picked)
        .enumerate()
        .map(|(index, (question, picked))| {
            view! { <QuestionField name=format!("{id}-{index}") question picked /> }
        })
        .collect_view();
    view! {
        <header class="approval-head">
            <span class="approval-title">"Claude asks"</span>
        </header>
        {move || match decided.get() {
            Some(decision) => match decision.answers.clone().filter(|_| decision.approved) {
                Some(answers) => view! {
                    <dl class="question-answers" data-testid="question-answers">
                        {answers
                            .into_iter()
                            .map(|(question, answer)| view! { <dt>{question}</dt><dd>{answer}</dd> })
                            .collect_view()}
                    </dl>
                }
                .into_any(),
                None => view! {
                    <p class="approval-outcome" data-testid="approval-outcome">{outcome(&decision)}</p>
                }
                .into_any(),
            },
            None => ().into_any(),
        }}
        <div class="question-form" hidden=move || decided.with(Option::is_some)>
            {fields}
            <div class="approval-actions">
                <button
                    type="button"
                    class="primary"
                    data-testid="question-submit"
                    disabled=move || decider.sending.get() || chosen.with(Option::is_none)
                    on:click=move |_| decider.send(true, ApprovalScope::Once, None, chosen.get_untracked())
                >
                    "Answer"
                </button>
                {message_input(message, "approval-message", "Or tell Claude why not (optional)")}
                {decision_button(decider, "question-skip", "", "Skip", move || {
                    decider.send(false, ApprovalScope::Once, Some(message.get_untracked()), None)
                })}
            </div>
        </div>
    }
}
