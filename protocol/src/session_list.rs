//! The session list's rules: what a session is doing after an event, its title, the order and the filter.

use crate::api::{SessionStatus, SessionSummary, DEFAULT_SESSION_NAME};
use crate::event::Event;

/// A title made from a prompt keeps at most this many characters.
pub const TITLE_CHARS: usize = 60;

/// The status a session has after `event`, if the event changes it.
pub fn status_after(event: &Event) -> Option<SessionStatus> {
    match event {
        Event::UserMessage { .. } | Event::ConfirmationResult { .. } => {
            Some(SessionStatus::Running)
        }
        Event::Confirmation { .. } => Some(SessionStatus::AwaitingApproval),
        Event::Done { .. } => Some(SessionStatus::Idle),
        Event::Error { .. } => Some(SessionStatus::Failed),
        _ => None,
    }
}

/// A session's title: its name, else (still the default name) the start of its first prompt on one line.
pub fn title(name: &str, first_prompt: Option<&str>) -> String {
    let prompt = first_prompt
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty());
    match prompt {
        Some(prompt) if name == DEFAULT_SESSION_NAME || name.trim().is_empty() => {
            if prompt.chars().count() > TITLE_CHARS {
                let cut: String = prompt.chars().take(TITLE_CHARS - 1).collect();
                format!("{}…", cut.trim_end())
            } else {
                prompt
            }
        }
        _ => name.to_string(),
    }
}

/// Most recent activity first; among equals, the newest session first.
pub fn sort(sessions: &mut [SessionSummary]) {
    sessions.sort_by(|a, b| {
        (b.last_activity_at, b.record.created_at, &b.record.id).cmp(&(
            a.last_activity_at,
            a.record.created_at,
            &a.record.id,
        ))
    });
}

/// Whether `session` matches the filter box: every word of `filter` appears in its title or name, ignoring case.
pub fn matches(session: &SessionSummary, filter: &str) -> bool {
    let haystack = format!("{} {}", session.title, session.record.name).to_lowercase();
    filter
        .to_lowercase()
        .split_whitespace()
        .all(|word| haystack.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SessionRecord;
    use crate::ErrorCode;

    fn summary(id: &str, name: &str, created_at: u64, last: u64) -> SessionSummary {
        SessionSummary {
            record: SessionRecord {
                id: id.into(),
                user_id: "u".into(),
                name: name.into(),
                sandbox_id: format!("sbx-{id}"),
                created_at,
            },
            status: SessionStatus::Idle,
            last_activity_at: last,
            cost_usd: 0.0,
            title: title(name, None),
        }
    }

    #[test]
    fn statuses_follow_the_turn() {
        assert_eq!(
            status_after(&Event::UserMessage { text: "q".into() }),
            Some(SessionStatus::Running)
        );
        assert_eq!(status_after(&Event::TextDelta { text: "a".into() }), None);
        assert_eq!(
            status_after(&Event::error(ErrorCode::AgentCrashed, "x")),
            Some(SessionStatus::Failed)
        );
        assert_eq!(status_after(&Event::cancelled()), Some(SessionStatus::Idle));
    }

    #[test]
    fn a_title_is_the_name_else_the_first_prompt() {
        assert_eq!(title("Refactor", Some("hello")), "Refactor");
        assert_eq!(title(DEFAULT_SESSION_NAME, None), DEFAULT_SESSION_NAME);
        assert_eq!(
            title(DEFAULT_SESSION_NAME, Some("  fix\n the   build ")),
            "fix the build"
        );
        let long = title(DEFAULT_SESSION_NAME, Some(&"word ".repeat(40)));
        assert!(long.chars().count() <= TITLE_CHARS, "{long}");
        assert!(long.ends_with("word…"), "{long}");
    }

    #[test]
    fn sorted_by_last_activity_and_filtered_by_words() {
        let mut list = vec![
            summary("a", "Alpha build", 1, 10),
            summary("b", "Beta docs", 2, 30),
            summary("c", "Gamma", 3, 20),
        ];
        sort(&mut list);
        let ids: Vec<_> = list.iter().map(|s| s.record.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
        assert!(matches(&list[2], "alpha"));
        assert!(matches(&list[2], "BUILD alp"));
        assert!(!matches(&list[2], "beta"));
        assert!(matches(&list[0], ""));
    }
}
