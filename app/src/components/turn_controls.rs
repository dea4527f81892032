//! The turn's controls under the prompt: mode (agent or plan), autonomy and model, remembered per session.

use leptos::prelude::*;
use vf_protocol::api::{Autonomy, SessionMode, TurnOptions};

use crate::browser;

/// The models offered: the CLI's aliases, which follow each family's newest model. "Default" sends none and leaves
/// the choice to the CLI (or the user's settings in the sandbox).
const MODELS: [Choice<()>; 4] = [
    ((), "", "Default model", "The CLI's default model"),
    ((), "sonnet", "Sonnet", "Claude Sonnet, the newest"),
    ((), "opus", "Opus", "Claude Opus, the newest"),
    ((), "haiku", "Haiku", "Claude Haiku, the newest"),
];

/// Each choice: its value, its wire name, its label and what it means (the option's tooltip).
type Choice<T> = (T, &'static str, &'static str, &'static str);

const MODES: [Choice<SessionMode>; 2] = [
    (
        SessionMode::Agent,
        "agent",
        "Agent",
        "Claude reads, edits and runs commands",
    ),
    (
        SessionMode::Plan,
        "plan",
        "Plan",
        "Claude reads and proposes a plan; it changes nothing",
    ),
];

const AUTONOMIES: [Choice<Autonomy>; 3] = [
    (
        Autonomy::Conservative,
        "conservative",
        "Conservative",
        "Claude asks before every edit and command",
    ),
    (
        Autonomy::Standard,
        "standard",
        "Standard",
        "Claude edits files freely and asks before commands",
    ),
    (
        Autonomy::Autonomous,
        "autonomous",
        "Autonomous",
        "Claude never asks (the sandbox is the boundary)",
    ),
];

/// The wire name of `value` in `table`, or `unset` when there is none.
fn wire_of<T: PartialEq + Copy>(
    table: &[Choice<T>],
    value: Option<T>,
    unset: &'static str,
) -> &'static str {
    table
        .iter()
        .find(|(v, ..)| Some(*v) == value)
        .map_or(unset, |(_, wire, ..)| *wire)
}

fn value_of<T: Copy>(table: &[Choice<T>], wire: &str) -> Option<T> {
    table.iter().find(|(_, w, ..)| *w == wire).map(|(v, ..)| *v)
}

/// The options of a picker: wire name, label, meaning.
type Options = Vec<(&'static str, &'static str, &'static str)>;

fn options<T>(table: &[Choice<T>]) -> Options {
    table
        .iter()
        .map(|(_, wire, label, meaning)| (*wire, *label, *meaning))
        .collect()
}

/// The chat's turn controls, for the components inside it that change them (an approved plan switches to agent
/// mode).
#[derive(Clone, Copy)]
pub struct SessionTurn(pub RwSignal<TurnOptions>);

fn storage_key(session: &str) -> String {
    format!("vf-turn:{session}")
}

/// What a session's prompt box starts with: what this browser last sent in it, else agent mode, standard autonomy
/// and the CLI's default model.
pub fn remembered(session: &str) -> TurnOptions {
    browser::storage_get(&storage_key(session))
        .and_then(|stored| serde_json::from_str(&stored).ok())
        .unwrap_or(TurnOptions {
            mode: Some(SessionMode::Agent),
            model: None,
            autonomy: Some(Autonomy::Standard),
        })
}

/// Remembers a session's controls in this browser (a full or disabled storage only forgets them).
pub fn remember(session: &str, turn: &TurnOptions) {
    if let Ok(json) = serde_json::to_string(turn) {
        browser::storage_set(&storage_key(session), &json);
    }
}

/// One `<select>` of the controls; `chosen` is the wire name selected.
#[component]
fn Picker(
    testid: &'static str,
    label: &'static str,
    options: Options,
    #[prop(into)] chosen: Signal<&'static str>,
    #[prop(into)] disabled: Signal<bool>,
    on_pick: impl Fn(String) + 'static,
) -> impl IntoView {
    view! {
        <select
            data-testid=testid
            data-value=chosen
            aria-label=label
            title=label
            disabled=disabled
            on:change=move |ev| on_pick(event_target_value(&ev))
        >
            {options
                .into_iter()
                .map(|(value, text, meaning)| {
                    view! {
                        <option value=value title=meaning prop:selected=move || chosen.get() == value>
                            {text}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

/// Mode, autonomy and model of the next turn. Autonomy does not apply in plan mode (Claude only reads), so its
/// picker is off there.
#[component]
pub fn TurnControls(
    /// The controls, read when a prompt is sent.
    turn: RwSignal<TurnOptions>,
    #[prop(into)] disabled: Signal<bool>,
) -> impl IntoView {
    let plan = Signal::derive(move || turn.with(|t| t.mode == Some(SessionMode::Plan)));
    let mode = Signal::derive(move || turn.with(|t| wire_of(&MODES, t.mode, "agent")));
    let autonomy =
        Signal::derive(move || turn.with(|t| wire_of(&AUTONOMIES, t.autonomy, "standard")));
    let model = Signal::derive(move || {
        turn.with(|t| {
            MODELS
                .iter()
                .find(|(_, wire, ..)| t.model.as_deref().unwrap_or("") == *wire)
                .map_or("", |(_, wire, ..)| *wire)
        })
    });
    view! {
        <div class="turn-controls">
            <Picker
                testid="turn-mode"
                label="Mode"
                options=options(&MODES)
                chosen=mode
                disabled=disabled
                on_pick=move |wire| turn.update(|t| t.mode = value_of(&MODES, &wire))
            />
            <Picker
                testid="turn-autonomy"
                label="Autonomy"
                options=options(&AUTONOMIES)
                chosen=autonomy
                disabled=Signal::derive(move || disabled.get() || plan.get())
                on_pick=move |wire| turn.update(|t| t.autonomy = value_of(&AUTONOMIES, &wire))
            />
            <Picker
                testid="turn-model"
                label="Model"
                options=options(&MODELS)
                chosen=model
                disabled=disabled
                on_pick=move |wire| turn.update(|t| t.model = Some(wire).filter(|w| !w.is_empty()))
            />
        </div>
    }
}
