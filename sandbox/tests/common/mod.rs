//! Helpers shared by the integration tests: the built binaries, scratch directories and agent-line checks.

use std::path::{Path, PathBuf};

use vf_protocol::{AgentLine, Event};

pub const AGENT: &str = env!("CARGO_BIN_EXE_vf-agent");
pub const FAKE_CLAUDE: &str = env!("CARGO_BIN_EXE_vf-fake-claude");

/// A fresh directory under the system's temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vf-sandbox-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a pending-query file the way the DO does.
pub fn write_query(path: &Path, prompt: &str) {
    let query = vf_protocol::api::PendingQuery {
        prompt: prompt.into(),
        session_id: "s-1".into(),
        execution_id: "e-1".into(),
        sdk_session_id: None,
        timestamp: 1,
    };
    std::fs::write(path, serde_json::to_vec(&query).unwrap()).unwrap();
}

pub fn parse_line(line: &[u8]) -> AgentLine {
    serde_json::from_slice(line)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)))
}

/// Checks the rules every agent stream follows (`aseq` 1, 2, 3… on all but heartbeats, exactly one terminal
/// event, and it is last) and returns the terminal event.
pub fn terminal(lines: &[AgentLine]) -> &Event {
    let numbered: Vec<u64> = lines
        .iter()
        .filter(|l| !matches!(l.event, Event::Heartbeat))
        .map(|l| l.aseq.expect("events carry aseq"))
        .collect();
    assert_eq!(numbered, (1..=numbered.len() as u64).collect::<Vec<_>>());
    assert!(lines
        .iter()
        .all(|l| l.aseq.is_some() != matches!(l.event, Event::Heartbeat)));
    let terminals = lines.iter().filter(|l| l.event.is_terminal()).count();
    assert_eq!(terminals, 1, "{lines:?}");
    let last = &lines.last().unwrap().event;
    assert!(last.is_terminal(), "{lines:?}");
    last
}
