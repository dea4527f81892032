//! What a tool card shows of a call, read from its input and output. Pure, so it is tested without a browser.

use serde_json::Value;

/// An output (or file preview) longer than this many lines shows its start and a "Show all".
pub const PREVIEW_LINES: usize = 24;

/// The body of a card, by tool.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// Edit and MultiEdit: each edit as the lines it removes and adds.
    Edits(Vec<Vec<DiffLine>>),
    /// Write: the new file, highlighted by its extension.
    File { language: String, content: String },
    /// Bash: the command line.
    Command(String),
    /// TodoWrite: the list.
    Todos(Vec<Todo>),
    /// Read, Grep, Glob, Task and the like: a few labelled fields of the input.
    Fields(Vec<(&'static str, String)>),
    /// Any other tool: its input as JSON.
    Input(String),
}

/// One line of an edit's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Kept,
    Removed,
    Added,
}

impl LineKind {
    /// The line's CSS class.
    pub fn class(self) -> &'static str {
        match self {
            LineKind::Kept => "diff-line",
            LineKind::Removed => "diff-line diff-del",
            LineKind::Added => "diff-line diff-ins",
        }
    }
}

/// One item of a TodoWrite list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub content: String,
    /// `pending`, `in_progress` or `completed`, as Claude Code writes it.
    pub status: String,
}

fn text<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

impl Detail {
    /// What the card of a call to `tool` with `input` shows.
    pub fn of(tool: &str, input: &Value) -> Detail {
        match tool {
            "Edit" => Detail::Edits(vec![edit_diff(input)]),
            "MultiEdit" => Detail::Edits(
                input
                    .get("edits")
                    .and_then(Value::as_array)
                    .map(|edits| edits.iter().map(edit_diff).collect())
                    .unwrap_or_default(),
            ),
            "Write" => Detail::File {
                language: text(input, "file_path")
                    .and_then(|path| path.rsplit_once('.'))
                    .map(|(_, extension)| extension.to_string())
                    .unwrap_or_default(),
                content: text(input, "content").unwrap_or_default().to_string(),
            },
            "Bash" => Detail::Command(text(input, "command").unwrap_or_default().to_string()),
            "TodoWrite" => Detail::Todos(
                input
                    .get("todos")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|todo| Todo {
                        content: text(todo, "content").unwrap_or_default().to_string(),
                        status: text(todo, "status").unwrap_or("pending").to_string(),
                    })
                    .collect(),
            ),
            "Read" | "Grep" | "Glob" | "Task" | "Agent" | "WebFetch" | "WebSearch" => {
                Detail::Fields(fields(input))
            }
            _ => Detail::Input(pretty_input(input)),
        }
    }
}

/// The old and new text of one edit as diff lines.
fn edit_diff(edit: &Value) -> Vec<DiffLine> {
    /// The diff's table has a cell for each pair of lines: past this many, the old text is shown removed and the
    /// new one added, without looking for the lines they share.
    const MAX_CELLS: usize = 4_000_000;
    let old: Vec<&str> = text(edit, "old_string")
        .unwrap_or_default()
        .lines()
        .collect();
    let new: Vec<&str> = text(edit, "new_string")
        .unwrap_or_default()
        .lines()
        .collect();
    let line = |kind, text: &str| DiffLine {
        kind,
        text: text.to_string(),
    };
    if old.len().saturating_mul(new.len()) > MAX_CELLS {
        let removed = old.iter().map(|text| line(LineKind::Removed, text));
        return removed
            .chain(new.iter().map(|text| line(LineKind::Added, text)))
            .collect();
    }
    diff::slice(&old, &new)
        .into_iter()
        .map(|change| match change {
            diff::Result::Both(text, _) => line(LineKind::Kept, text),
            diff::Result::Left(text) => line(LineKind::Removed, text),
            diff::Result::Right(text) => line(LineKind::Added, text),
        })
        .collect()
}

/// The fields of a lookup-like call worth a line each, labelled.
fn fields(input: &Value) -> Vec<(&'static str, String)> {
    const LABELS: [(&str, &str); 10] = [
        ("description", "task"),
        ("subagent_type", "agent"),
        ("file_path", "file"),
        ("pattern", "pattern"),
        ("path", "in"),
        ("glob", "files"),
        ("url", "url"),
        ("query", "query"),
        ("prompt", "prompt"),
        ("output_mode", "mode"),
    ];
    let mut fields: Vec<(&'static str, String)> = LABELS
        .iter()
        .filter_map(|(key, label)| Some((*label, text(input, key)?.to_string())))
        .collect();
    let number = |key| input.get(key).and_then(Value::as_u64);
    match (number("offset"), number("limit")) {
        (None, None) => {}
        (offset, limit) => {
            let first = offset.unwrap_or(1);
            let last = limit.map_or(String::from("end"), |limit| (first + limit - 1).to_string());
            fields.push(("lines", format!("{first}–{last}")));
        }
    }
    fields
}

/// A one-line hint of what a tool call works on (its command, file, pattern…), for the card's summary.
pub fn tool_hint(input: &Value) -> Option<String> {
    let full = vf_protocol::transcript::tool_subject(input)?;
    let line = full.lines().next().unwrap_or_default();
    Some(if line.chars().count() > 60 || line.len() < full.len() {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line.to_string()
    })
}

fn pretty_input(input: &Value) -> String {
    match input {
        Value::Null => "(not recorded)".into(),
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    }
}

/// What a result amounts to, for the card's summary: lines read, files found, matches, a command's exit code.
pub fn result_summary(tool: &str, output: &str, is_error: bool) -> Option<String> {
    let lines = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count();
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let none_found = output.starts_with("No files found") || output.starts_with("No matches found");
    match tool {
        _ if is_error && tool != "Bash" => None,
        "Read" => Some(count(output.lines().count(), "line", "lines")),
        "Glob" if none_found => Some("no files".into()),
        "Glob" => Some(count(lines, "file", "files")),
        "Grep" if none_found => Some("no matches".into()),
        // Grep's default mode lists the files, after a "Found N files" line.
        "Grep" => Some(
            match output
                .strip_prefix("Found ")
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            {
                Some(files) => count(files, "file", "files"),
                None => count(lines, "match", "matches"),
            },
        ),
        "Bash" => exit_code(output)
            .or(if is_error { None } else { Some(0) })
            .map(|code| format!("exit {code}")),
        _ => None,
    }
}

/// The exit code a failed command's output starts with (`Exit code 2`), as Claude Code reports it.
fn exit_code(output: &str) -> Option<i32> {
    output
        .lines()
        .next()?
        .strip_prefix("Exit code ")?
        .trim()
        .parse()
        .ok()
}

/// The first `PREVIEW_LINES` lines of a long text and how many lines it has, or `None` when it is short enough
/// to show whole.
pub fn preview(text: &str) -> Option<(&str, usize)> {
    let total = text.lines().count();
    if total <= PREVIEW_LINES + 4 {
        return None;
    }
    let end = text
        .match_indices('\n')
        .nth(PREVIEW_LINES - 1)
        .map_or(text.len(), |(at, _)| at);
    Some((&text[..end], total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_show_as_diffs() {
        let line = |kind, text: &str| DiffLine {
            kind,
            text: text.into(),
        };
        assert_eq!(
            Detail::of(
                "Edit",
                &json!({"file_path": "/w/a.rs", "old_string": "a\nb\nc", "new_string": "a\nB\nc"})
            ),
            Detail::Edits(vec![vec![
                line(LineKind::Kept, "a"),
                line(LineKind::Removed, "b"),
                line(LineKind::Added, "B"),
                line(LineKind::Kept, "c"),
            ]])
        );
        let Detail::Edits(edits) = Detail::of(
            "MultiEdit",
            &json!({"file_path": "/w/a.rs", "edits": [
                {"old_string": "x", "new_string": "y"},
                {"old_string": "", "new_string": "new"}
            ]}),
        ) else {
            panic!("not edits");
        };
        assert_eq!(edits.len(), 2);
        assert_eq!(edits[1], vec![line(LineKind::Added, "new")]);
        // Too large to search for shared lines: all removed, then all added.
        let big = |tag: &str| {
            (0..3_000)
                .map(|n| format!("{tag} {n}\n"))
                .collect::<String>()
        };
        let Detail::Edits(edits) = Detail::of(
            "Edit",
            &json!({"old_string": big("old"), "new_string": big("new")}),
        ) else {
            panic!("not edits");
        };
        assert_eq!(edits[0].len(), 6_000);
        assert_eq!(edits[0][2_999], line(LineKind::Removed, "old 2999"));
        assert_eq!(edits[0][3_000], line(LineKind::Added, "new 0"));
    }

    #[test]
    fn writes_commands_and_todos() {
        assert_eq!(
            Detail::of(
                "Write",
                &json!({"file_path": "/w/src/main.rs", "content": "fn main() {}"})
            ),
            Detail::File {
                language: "rs".into(),
                content: "fn main() {}".into()
            }
        );
        assert_eq!(
            Detail::of(
                "Bash",
                &json!({"command": "cargo test", "description": "Run tests"})
            ),
            Detail::Command("cargo test".into())
        );
        assert_eq!(
            Detail::of(
                "TodoWrite",
                &json!({"todos": [
                    {"content": "Write tests", "status": "completed", "activeForm": "Writing tests"},
                    {"content": "Fix bug"}
                ]})
            ),
            Detail::Todos(vec![
                Todo {
                    content: "Write tests".into(),
                    status: "completed".into()
                },
                Todo {
                    content: "Fix bug".into(),
                    status: "pending".into()
                },
            ])
        );
    }

    #[test]
    fn lookups_show_their_fields() {
        assert_eq!(
            Detail::of(
                "Read",
                &json!({"file_path": "/w/a.rs", "offset": 10, "limit": 5})
            ),
            Detail::Fields(vec![("file", "/w/a.rs".into()), ("lines", "10–14".into())])
        );
        assert_eq!(
            Detail::of(
                "Grep",
                &json!({"pattern": "fn main", "path": "/w", "glob": "*.rs"})
            ),
            Detail::Fields(vec![
                ("pattern", "fn main".into()),
                ("in", "/w".into()),
                ("files", "*.rs".into())
            ])
        );
        assert_eq!(
            Detail::of("mcp__x__y", &Value::Null),
            Detail::Input("(not recorded)".into())
        );
    }

    #[test]
    fn results_are_summarized() {
        assert_eq!(
            result_summary("Read", "     1\tfn main() {}\n     2\t", false).as_deref(),
            Some("2 lines")
        );
        assert_eq!(
            result_summary("Grep", "Found 3 files\n/a\n/b\n/c", false).as_deref(),
            Some("3 files")
        );
        assert_eq!(
            result_summary("Grep", "/a:1:x\n/b:2:y", false).as_deref(),
            Some("2 matches")
        );
        assert_eq!(
            result_summary("Glob", "No files found", false).as_deref(),
            Some("no files")
        );
        assert_eq!(
            result_summary("Glob", "/a.rs\n", false).as_deref(),
            Some("1 file")
        );
        assert_eq!(
            result_summary("Bash", "Exit code 2\nboom", true).as_deref(),
            Some("exit 2")
        );
        assert_eq!(
            result_summary("Bash", "ok", false).as_deref(),
            Some("exit 0")
        );
        assert_eq!(result_summary("Bash", "killed", true), None);
        assert_eq!(result_summary("Write", "done", false), None);
    }

    #[test]
    fn long_texts_are_previewed() {
        assert_eq!(preview("a\nb"), None);
        let long: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        let (start, total) = preview(&long).unwrap();
        assert_eq!(total, 100);
        assert_eq!(start.lines().count(), PREVIEW_LINES);
        assert!(start.ends_with(&format!("line {PREVIEW_LINES}")));
    }

    #[test]
    fn tool_hints_pick_the_telling_field() {
        assert_eq!(
            tool_hint(&json!({"file_path": "/w/main.rs", "limit": 5})).as_deref(),
            Some("/w/main.rs")
        );
        assert_eq!(
            tool_hint(&json!({"command": "cargo test\ncargo fmt"})).as_deref(),
            Some("cargo test…")
        );
        assert_eq!(tool_hint(&json!({"other": 1})), None);
        assert_eq!(tool_hint(&Value::Null), None);
    }
}
