//! The ingest rule: which lines of an agent's callback connections a session stores, for every connection alike.
//!
//! An execution's agent may reach the DO over several connections: after a break it reconnects and resends what
//! the DO has not acknowledged, and a connection it gave up on (a stalled network) can still deliver late bytes
//! after a newer one started. One rule holds across all of them, against the execution's shared mark (the
//! highest `aseq` stored, read at the moment of storing, never a copy taken when a connection opened):
//!
//! - a numbered line is stored only if its `aseq` is the next one after the mark; one at or below the mark was
//!   stored already and is dropped; one that skips ahead refuses its connection (nothing more of it is stored,
//!   and the receipt tells the agent where to resend from);
//! - a newer connection supersedes an older one: the older is read to its end and its lines are dropped;
//! - after the terminal event (`done`, `error`) nothing more is stored;
//! - heartbeats only prove liveness; `connected` and `user-message` are the DO's to write, never the agent's;
//! - a line that is not an event is skipped and counted; a line over the size limit leaves a visible marker
//!   in its place (numbered like the line it replaces, when its `aseq` can be read from its first bytes).
//!
//! Lines without an `aseq` (an agent of the original protocol) are stored in arrival order: nothing can
//! de-duplicate them, so such an agent must not resend.

use crate::event::{AgentLine, Event};
use crate::framer::{FrameError, LineFramer};

/// The largest `aseq` accepted: JavaScript's largest safe integer, so positions survive every JSON reader on
/// the way (the browser, workerd).
pub const MAX_AGENT_SEQ: u64 = (1 << 53) - 1;

/// One execution's stored stream, shared by all its callback connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingest {
    last_aseq: u64,
    ended: bool,
    /// The id of the newest connection; older ones are superseded.
    current: u64,
}

/// One callback connection: its own line framing and what became of its lines.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    framer: LineFramer,
    refused: Option<Gap>,
    /// Lines of this connection that went into a batch to store.
    pub stored: u64,
    /// Lines that were not events (malformed JSON, unknown shape, an `aseq` out of range).
    pub not_events: u64,
}

/// A numbered line that skipped ahead of the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub expected: u64,
    pub got: u64,
}

impl Connection {
    /// Whether this connection was refused for a gap, and where.
    pub fn refused(&self) -> Option<Gap> {
        self.refused
    }
}

impl Ingest {
    /// The stream of an execution whose highest stored `aseq` is `last_aseq` (0: none yet).
    pub fn new(last_aseq: u64) -> Self {
        Ingest {
            last_aseq,
            ended: false,
            current: 0,
        }
    }

    /// The highest `aseq` stored.
    pub fn last_aseq(&self) -> u64 {
        self.last_aseq
    }

    /// Whether the terminal event was stored.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// A new connection, which supersedes every earlier one.
    pub fn connect(&mut self) -> Connection {
        self.current += 1;
        Connection {
            id: self.current,
            framer: LineFramer::default(),
            refused: None,
            stored: 0,
            not_events: 0,
        }
    }

    /// Whether `conn` is still the connection whose lines count.
    pub fn is_current(&self, conn: &Connection) -> bool {
        conn.id == self.current
    }

    /// Frames one chunk of `conn`'s body and appends the events to store to `batch`, advancing the mark. The
    /// caller stores the batch before it awaits anything, so the mark and the log never disagree.
    pub fn push(&mut self, conn: &mut Connection, chunk: &[u8], batch: &mut Vec<Event>) {
        let mut framer = std::mem::take(&mut conn.framer);
        framer.push(chunk, |line| self.accept(conn, line, batch));
        conn.framer = framer;
    }

    /// `conn`'s body ended: a last line without its newline still counts.
    pub fn finish(&mut self, conn: &mut Connection, batch: &mut Vec<Event>) {
        let mut framer = std::mem::take(&mut conn.framer);
        framer.finish(|line| self.accept(conn, line, batch));
        conn.framer = framer;
    }

    fn accept(
        &mut self,
        conn: &mut Connection,
        line: Result<&[u8], FrameError>,
        batch: &mut Vec<Event>,
    ) {
        if self.ended || conn.refused.is_some() || !self.is_current(conn) {
            return;
        }
        let (aseq, event) = match line {
            Ok(bytes) => match serde_json::from_slice::<AgentLine>(bytes) {
                Ok(AgentLine { aseq, event }) if aseq.is_none_or(valid_aseq) => (aseq, event),
                _ => {
                    conn.not_events += 1;
                    return;
                }
            },
            Err(FrameError::LineTooLong { len, max, head }) => (
                leading_aseq(&head).filter(|n| valid_aseq(*n)),
                Event::TextDelta {
                    text: format!(
                        "\n\n[VaporForge: an agent event of {len} bytes exceeded the {max}-byte limit and was left out]\n\n"
                    ),
                },
            ),
        };
        if let Some(n) = aseq {
            if n <= self.last_aseq {
                return;
            }
            if n > self.last_aseq + 1 {
                conn.refused = Some(Gap {
                    expected: self.last_aseq + 1,
                    got: n,
                });
                return;
            }
            self.last_aseq = n;
        }
        if matches!(
            event,
            Event::Heartbeat | Event::Connected { .. } | Event::UserMessage { .. }
        ) {
            return;
        }
        self.ended = event.is_terminal();
        conn.stored += 1;
        batch.push(event);
    }
}

fn valid_aseq(n: u64) -> bool {
    (1..=MAX_AGENT_SEQ).contains(&n)
}

/// The `aseq` of an agent line from its first bytes (`{"aseq":N,`), as [`AgentLine`] writes it.
fn leading_aseq(head: &[u8]) -> Option<u64> {
    let digits = head.strip_prefix(b"{\"aseq\":")?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    if digits.get(end) != Some(&b',') || end == 0 {
        return None;
    }
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framer::MAX_LINE_BYTES;

    fn line(aseq: u64, text: &str) -> Vec<u8> {
        AgentLine {
            aseq: Some(aseq),
            event: Event::TextDelta { text: text.into() },
        }
        .to_line()
    }

    fn done(aseq: u64) -> Vec<u8> {
        AgentLine {
            aseq: Some(aseq),
            event: Event::cancelled(),
        }
        .to_line()
    }

    fn lines(range: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        range.flat_map(|n| line(n, &format!("d{n}"))).collect()
    }

    fn texts(batch: &[Event]) -> Vec<String> {
        batch
            .iter()
            .map(|e| match e {
                Event::TextDelta { text } => text.clone(),
                other => other.kind().to_string(),
            })
            .collect()
    }

    fn push(ingest: &mut Ingest, conn: &mut Connection, bytes: &[u8]) -> Vec<String> {
        let mut batch = Vec::new();
        ingest.push(conn, bytes, &mut batch);
        texts(&batch)
    }

    #[test]
    fn lines_in_order_are_stored_and_move_the_mark() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        assert_eq!(
            push(&mut ingest, &mut conn, &lines(1..=3)),
            ["d1", "d2", "d3"]
        );
        assert_eq!(ingest.last_aseq(), 3);
        assert_eq!(conn.stored, 3);
        // A line split across chunks is one line.
        let bytes = lines(4..=5);
        let (a, b) = bytes.split_at(7);
        assert!(push(&mut ingest, &mut conn, a).is_empty());
        assert_eq!(push(&mut ingest, &mut conn, b), ["d4", "d5"]);
    }

    #[test]
    fn a_new_connection_below_at_and_above_the_mark() {
        // Below: the overlap is dropped, the rest stored.
        let mut ingest = Ingest::new(10);
        let mut below = ingest.connect();
        assert_eq!(
            push(&mut ingest, &mut below, &lines(8..=12)),
            ["d11", "d12"]
        );
        // At: starts right after the mark.
        let mut at = ingest.connect();
        assert_eq!(push(&mut ingest, &mut at, &lines(13..=13)), ["d13"]);
        // Above: a gap refuses the connection, and nothing after it is stored, not even the line the mark
        // expects.
        let mut above = ingest.connect();
        let mut bytes = lines(15..=16);
        bytes.extend(line(14, "late"));
        assert!(push(&mut ingest, &mut above, &bytes).is_empty());
        assert_eq!(
            above.refused(),
            Some(Gap {
                expected: 14,
                got: 15
            })
        );
        assert_eq!(ingest.last_aseq(), 13);
        // The agent resends from the receipt's mark on a new connection.
        let mut resend = ingest.connect();
        assert_eq!(
            push(&mut ingest, &mut resend, &lines(14..=16)),
            ["d14", "d15", "d16"]
        );
    }

    #[test]
    fn late_lines_of_a_superseded_connection_are_dropped() {
        let mut ingest = Ingest::new(0);
        let mut old = ingest.connect();
        push(&mut ingest, &mut old, &lines(1..=3));
        // The old connection stalls; the agent reconnects and resends from its acknowledged mark.
        let mut new = ingest.connect();
        assert_eq!(push(&mut ingest, &mut new, &lines(1..=5)), ["d4", "d5"]);
        // The stall ends: the old connection's bytes in flight arrive, in order and beyond the mark too.
        assert!(push(&mut ingest, &mut old, &lines(4..=9)).is_empty());
        assert!(!ingest.is_current(&old));
        assert_eq!(push(&mut ingest, &mut new, &lines(6..=6)), ["d6"]);
        assert_eq!(ingest.last_aseq(), 6);
    }

    #[test]
    fn late_lines_that_arrive_before_the_new_connection_are_stored_once() {
        let mut ingest = Ingest::new(0);
        let mut old = ingest.connect();
        push(&mut ingest, &mut old, &lines(1..=2));
        // The agent read the mark (2) and is about to reconnect; the old connection's late bytes land first.
        assert_eq!(push(&mut ingest, &mut old, &lines(3..=4)), ["d3", "d4"]);
        // The new connection resends from 3: what the old one stored meanwhile is dropped, the rest stored.
        let mut new = ingest.connect();
        assert_eq!(push(&mut ingest, &mut new, &lines(3..=5)), ["d5"]);
    }

    #[test]
    fn interleaved_chunks_of_two_connections_store_each_line_once() {
        let mut ingest = Ingest::new(0);
        let mut old = ingest.connect();
        let mut new = ingest.connect();
        let old_bytes = lines(1..=20);
        let new_bytes = lines(1..=20);
        let mut stored = Vec::new();
        for (a, b) in old_bytes.chunks(13).zip(new_bytes.chunks(17)) {
            stored.extend(push(&mut ingest, &mut old, a));
            stored.extend(push(&mut ingest, &mut new, b));
        }
        for b in new_bytes.chunks(17).skip(old_bytes.chunks(13).count()) {
            stored.extend(push(&mut ingest, &mut new, b));
        }
        let expected: Vec<String> = (1..=20).map(|n| format!("d{n}")).collect();
        assert_eq!(stored, expected);
    }

    #[test]
    fn the_terminal_event_latches_for_every_connection() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        let mut bytes = lines(1..=1);
        bytes.extend(done(2));
        bytes.extend(line(3, "after the end"));
        assert_eq!(push(&mut ingest, &mut conn, &bytes), ["d1", "done"]);
        assert!(ingest.ended());
        let mut other = ingest.connect();
        assert!(push(&mut ingest, &mut other, &line(3, "x")).is_empty());
    }

    #[test]
    fn what_an_agent_may_not_send_moves_the_mark_but_is_not_stored() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        let mut bytes = Vec::new();
        for (aseq, event) in [
            (
                Some(1),
                Event::UserMessage {
                    text: "forged".into(),
                },
            ),
            (
                Some(2),
                Event::Connected {
                    execution_id: "e".into(),
                },
            ),
            (None, Event::Heartbeat),
            (
                Some(3),
                Event::TextDelta {
                    text: "real".into(),
                },
            ),
        ] {
            bytes.extend(AgentLine { aseq, event }.to_line());
        }
        assert_eq!(push(&mut ingest, &mut conn, &bytes), ["real"]);
        assert_eq!(ingest.last_aseq(), 3);
    }

    #[test]
    fn lines_that_are_not_events_are_counted_and_skipped() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        let mut bytes = b"not json\n{\"type\":\"text-delta\"}\n".to_vec();
        bytes.extend(
            format!(
                "{{\"aseq\":{},\"type\":\"text-delta\",\"text\":\"x\"}}\n",
                MAX_AGENT_SEQ + 1
            )
            .as_bytes(),
        );
        bytes.extend(b"{\"aseq\":0,\"type\":\"text-delta\",\"text\":\"x\"}\n");
        bytes.extend(line(1, "ok"));
        assert_eq!(push(&mut ingest, &mut conn, &bytes), ["ok"]);
        assert_eq!(conn.not_events, 4);
    }

    #[test]
    fn unnumbered_lines_are_stored_in_arrival_order() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        let bytes = [
            Event::TextDelta { text: "a".into() }.to_line(),
            Event::TextDelta { text: "b".into() }.to_line(),
        ]
        .concat();
        assert_eq!(push(&mut ingest, &mut conn, &bytes), ["a", "b"]);
        assert_eq!(ingest.last_aseq(), 0);
    }

    #[test]
    fn an_over_long_line_leaves_one_marker_in_its_place() {
        let mut ingest = Ingest::new(0);
        let mut conn = ingest.connect();
        let huge = line(2, &"x".repeat(MAX_LINE_BYTES));
        let bytes = [line(1, "a"), huge.clone(), line(3, "b")].concat();
        let stored = push(&mut ingest, &mut conn, &bytes);
        assert_eq!(stored.len(), 3);
        assert!(
            stored[1].contains("exceeded the 1048576-byte limit"),
            "{stored:?}"
        );
        // Resent after a reconnect, the marker is not stored again: it carries the line's aseq.
        let mut again = ingest.connect();
        assert!(push(&mut ingest, &mut again, &bytes).is_empty());
        assert_eq!(ingest.last_aseq(), 3);
    }

    #[test]
    fn the_leading_aseq_is_read_only_from_the_agent_line_prefix() {
        assert_eq!(leading_aseq(b"{\"aseq\":42,\"type\""), Some(42));
        assert_eq!(leading_aseq(b"{\"aseq\":42"), None);
        assert_eq!(leading_aseq(b"{\"aseq\":,"), None);
        assert_eq!(leading_aseq(b"{\"type\":\"x\",\"aseq\":4,"), None);
    }
}
