//! Reading the event lines a stream or a stored log returned: the execution a chat started, its terminal
//! events, its text deltas, its user messages.

use vf_protocol::Event;

use crate::client::Line;

/// The execution id of a chat response's `connected` line.
pub fn execution_id(line: &Line) -> String {
    match &line.envelope.event {
        Event::Connected { execution_id } => execution_id.clone(),
        other => panic!("expected connected, got {other:?}"),
    }
}

/// The terminal events among `lines` (a finished execution has exactly one).
pub fn terminals(lines: &[Line]) -> Vec<&Event> {
    lines
        .iter()
        .map(|l| &l.envelope.event)
        .filter(|e| e.is_terminal())
        .collect()
}

/// The text of every text delta, in order.
pub fn texts(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match &l.envelope.event {
            Event::TextDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// The prompts of the user messages among `lines`, in order.
pub fn prompts(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match &l.envelope.event {
            Event::UserMessage { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// How many user messages `lines` hold.
pub fn user_messages(lines: &[Line]) -> usize {
    lines
        .iter()
        .filter(|l| matches!(l.envelope.event, Event::UserMessage { .. }))
        .count()
}
