//! Claude's questions (`AskUserQuestion`): read from the tool's input, answered as the CLI reads the answers.

use serde::Deserialize;
use serde_json::Value;
use vf_protocol::Answers;

/// One question, as the CLI's `AskUserQuestionInput` has it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub question: String,
    #[serde(default)]
    pub header: String,
    #[serde(default)]
    pub options: Vec<Choice>,
    #[serde(default)]
    pub multi_select: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Choice {
    pub label: String,
    #[serde(default)]
    pub description: String,
}

/// The questions of an `AskUserQuestion` input; an input without any reads as none (the card then offers only a
/// skip).
pub fn questions(input: &Value) -> Vec<Question> {
    serde_json::from_value(input["questions"].clone()).unwrap_or_default()
}

/// What the user picked for one question: option indexes, and the "other" free-text answer if chosen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picked {
    pub options: Vec<usize>,
    pub other: Option<String>,
}

impl Picked {
    /// Picks option `index`: alone for a single choice, toggled for a multiple choice.
    pub fn toggle(&mut self, index: usize, multi: bool) {
        if !multi {
            self.options = vec![index];
            self.other = None;
        } else if let Some(at) = self.options.iter().position(|&i| i == index) {
            self.options.remove(at);
        } else {
            self.options.push(index);
            self.options.sort_unstable();
        }
    }

    /// Chooses (or, for a multiple choice, toggles) the free-text answer.
    pub fn toggle_other(&mut self, multi: bool) {
        if !multi {
            self.options.clear();
            self.other = Some(self.other.take().unwrap_or_default());
        } else if self.other.is_some() {
            self.other = None;
        } else {
            self.other = Some(String::new());
        }
    }

    /// Typing a free-text answer chooses it.
    pub fn write_other(&mut self, text: String, multi: bool) {
        if !multi {
            self.options.clear();
        }
        self.other = Some(text);
    }
}

/// The answer to `question`: the picked labels in the options' order, then the free text, joined by ", " (how
/// the CLI takes a multiple choice); None while nothing is picked.
pub fn answer(question: &Question, picked: &Picked) -> Option<String> {
    let mut parts: Vec<&str> = picked
        .options
        .iter()
        .filter_map(|&i| question.options.get(i))
        .map(|choice| choice.label.as_str())
        .collect();
    if let Some(other) = picked.other.as_deref().map(str::trim) {
        if !other.is_empty() {
            parts.push(other);
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Every question's answer, keyed by its text, once each question has one.
pub fn answers(questions: &[Question], picked: &[Picked]) -> Option<Answers> {
    questions
        .iter()
        .zip(picked.iter().chain(std::iter::repeat(&Picked::default())))
        .map(|(q, p)| Some((q.question.clone(), answer(q, p)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asked() -> Vec<Question> {
        questions(&json!({"questions": [
            {"question": "Which database?", "header": "Database", "multiSelect": false,
             "options": [{"label": "PostgreSQL", "description": "a server"}, {"label": "SQLite", "description": "a file"}]},
            {"question": "Which features?", "header": "Features", "multiSelect": true,
             "options": [{"label": "Sign-in", "description": ""}, {"label": "Search", "description": ""},
                         {"label": "Export", "description": ""}]}
        ]}))
    }

    #[test]
    fn reads_the_clis_input() {
        let q = asked();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].header, "Database");
        assert!(!q[0].multi_select && q[1].multi_select);
        assert_eq!(q[1].options[2].label, "Export");
        assert!(questions(&json!({"plan": "x"})).is_empty());
    }

    #[test]
    fn a_single_choice_keeps_one_pick() {
        let q = &asked()[0];
        let mut p = Picked::default();
        assert_eq!(answer(q, &p), None);
        p.toggle(0, false);
        p.toggle(1, false);
        assert_eq!(answer(q, &p).as_deref(), Some("SQLite"));
        p.write_other("  DuckDB ".into(), false);
        assert_eq!(
            answer(q, &p).as_deref(),
            Some("DuckDB"),
            "other replaces the pick"
        );
        p.toggle(0, false);
        assert_eq!(
            answer(q, &p).as_deref(),
            Some("PostgreSQL"),
            "a pick replaces other"
        );
    }

    #[test]
    fn a_multiple_choice_joins_labels_in_order_then_other() {
        let q = &asked()[1];
        let mut p = Picked::default();
        p.toggle(2, true);
        p.toggle(0, true);
        p.toggle(1, true);
        p.toggle(1, true);
        assert_eq!(answer(q, &p).as_deref(), Some("Sign-in, Export"));
        p.toggle_other(true);
        assert_eq!(
            answer(q, &p).as_deref(),
            Some("Sign-in, Export"),
            "an empty other adds nothing"
        );
        p.write_other("Tags".into(), true);
        assert_eq!(answer(q, &p).as_deref(), Some("Sign-in, Export, Tags"));
    }

    #[test]
    fn answers_need_every_question() {
        let q = asked();
        let mut picked = vec![Picked::default()];
        picked[0].toggle(1, false);
        assert_eq!(answers(&q, &picked), None, "the second has no answer");
        let mut second = Picked::default();
        second.toggle(1, true);
        picked.push(second);
        let all = answers(&q, &picked).unwrap();
        assert_eq!(all["Which database?"], "SQLite");
        assert_eq!(all["Which features?"], "Search");
    }
}
