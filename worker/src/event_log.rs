//! The ChatSessionAgent's SQLite: the session's event log, its executions and a little metadata.
//!
//! Every call here is synchronous. Inside a Durable Object that is a guarantee, not a detail: the writes of one
//! batch commit together (the runtime coalesces writes made without an intervening await), and a subscriber
//! that reads the tail and registers for live events in one synchronous step cannot miss an event in between.

use std::cell::Cell;
use std::sync::OnceLock;

use serde::Deserialize;
use vf_protocol::{Event, StoredLines};
use worker::{SqlStorage, SqlStorageValue};

use crate::error::{ApiError, ApiResult};

/// One row of `executions`.
#[derive(Debug, Clone, Deserialize)]
pub struct Execution {
    pub id: String,
    pub started_at: i64,
    pub process_id: Option<String>,
    /// When the agent's callback first reached the DO (None: the bridge is still waiting).
    pub callback_at: Option<i64>,
    /// The highest agent line position stored (`aseq`), to drop lines an agent resends.
    pub last_aseq: i64,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Cancelled,
    Failed,
}

impl Outcome {
    pub fn of(event: &Event) -> Outcome {
        match event {
            Event::Done {
                cancelled: Some(true),
                ..
            } => Outcome::Cancelled,
            Event::Error { .. } => Outcome::Failed,
            _ => Outcome::Done,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "error",
        }
    }
}

pub struct EventLog {
    sql: SqlStorage,
    next_seq: Cell<u64>,
}

fn int(v: impl TryInto<i64>) -> SqlStorageValue {
    SqlStorageValue::Integer(v.try_into().unwrap_or(i64::MAX))
}

fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::String(v.to_string())
}

/// The layout of `events.body` (see [`EventLog::open`]).
const EVENTS_FORMAT: &str = "2";

/// A replay page holds about this many bytes; the first holds [`FIRST_PAGE_ROWS`] events, so that a client sees
/// the start of a long replay at once and a page of the largest events (1 MB each) stays small, and later
/// pages grow fourfold while they stay well under the byte target, up to [`MAX_PAGE_ROWS`].
const PAGE_BYTES: usize = 1024 * 1024;
const FIRST_PAGE_ROWS: usize = 4;
const MAX_PAGE_ROWS: usize = 8192;

/// Events per INSERT statement: each row binds 3 values and the execution id is bound once, under the 100 bound
/// parameters a Durable Object's SQLite takes per statement.
pub const ROWS_PER_INSERT: usize = 33;

/// `INSERT … VALUES (?2, ?1, ?3, ?4), (?5, ?1, ?6, ?7), …` for `rows` rows (1 to [`ROWS_PER_INSERT`]): the text
/// depends only on the row count, so it is built once per count, and the runtime's statement cache holds at
/// most [`ROWS_PER_INSERT`] of them.
fn insert_statement(rows: usize) -> &'static str {
    static STATEMENTS: OnceLock<Vec<String>> = OnceLock::new();
    let statements = STATEMENTS.get_or_init(|| {
        let mut sql = String::from("INSERT INTO events(seq, execution_id, type, body) VALUES ");
        (0..ROWS_PER_INSERT)
            .map(|row| {
                let base = 2 + 3 * row;
                if row > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(?{base}, ?1, ?{}, ?{})", base + 1, base + 2));
                sql.clone()
            })
            .collect()
    });
    &statements[rows - 1]
}

impl EventLog {
    /// Opens the log, creating the schema on first use.
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, execution_id TEXT NOT NULL, \
             type TEXT NOT NULL, body TEXT NOT NULL)",
            None,
        )
        ?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS executions(id TEXT PRIMARY KEY, status TEXT NOT NULL, \
             started_at INTEGER NOT NULL, ended_at INTEGER, error TEXT, process_id TEXT, \
             callback_at INTEGER, last_aseq INTEGER NOT NULL DEFAULT 0)",
            None,
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            None,
        )?;
        let log = EventLog {
            sql,
            next_seq: Cell::new(1),
        };
        // Seqs never go back, not even after a clear: a client holding `after=N` must see every later event.
        let max_row = log.scalar("SELECT COALESCE(MAX(seq), 0) FROM events", vec![])?;
        let floor = log
            .meta("seq_floor")?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        log.next_seq.set(max_row.max(floor) as u64 + 1);
        // Since format 2 a row's body is its whole wire line (`{"seq":…,"executionId":…,…}`), so that replay is
        // one concatenation in SQLite. Rows written before are rewritten once, the way `StoredLines::line`
        // builds a line; a new log has none and only records the format.
        if log.meta("eventsFormat")?.as_deref() != Some(EVENTS_FORMAT) {
            log.update(
                "UPDATE events SET body = '{\"seq\":' || seq || ',\"executionId\":' || json_quote(execution_id) \
                 || iif(length(body) > 2, ',' || substr(body, 2), '}')",
                vec![],
            )?;
            log.set_meta("eventsFormat", EVENTS_FORMAT)?;
        }
        Ok(log)
    }

    fn scalar(&self, query: &str, bindings: Vec<SqlStorageValue>) -> ApiResult<i64> {
        let row = self.sql.exec(query, bindings)?.raw().next().transpose()?;
        match row.as_deref() {
            Some([SqlStorageValue::Integer(n)]) => Ok(*n),
            Some([SqlStorageValue::Float(n)]) => Ok(*n as i64),
            _ => Ok(0),
        }
    }

    /// The seq of the newest event (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.get() - 1
    }

    /// Appends events of one execution, assigning seqs, and writes their wire lines into `out`: one INSERT per
    /// [`ROWS_PER_INSERT`] events, each event serialized once; the row keeps the same line.
    pub fn append(&self, execution_id: &str, events: &[Event], out: &mut Vec<u8>) -> ApiResult<()> {
        let lines = StoredLines::new(execution_id);
        for group in events.chunks(ROWS_PER_INSERT) {
            let first = self.next_seq.get();
            let mut bindings = Vec::with_capacity(1 + 3 * group.len());
            bindings.push(text(execution_id));
            for (seq, event) in (first..).zip(group) {
                let line = lines.line(seq, event);
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
                bindings.push(int(seq));
                bindings.push(SqlStorageValue::String(event.kind().to_string()));
                bindings.push(SqlStorageValue::String(line));
            }
            self.sql.exec(insert_statement(group.len()), bindings)?;
            self.next_seq.set(first + group.len() as u64);
        }
        Ok(())
    }

    /// Writes the wire lines of the first `rows` events with `after < seq <= upto` into `out`, in order; returns
    /// the seq of the last one (None: there were none). SQLite joins the stored lines into one string, so a
    /// page is one call and one value, whatever its length.
    fn read_page(
        &self,
        after: u64,
        upto: u64,
        rows: usize,
        out: &mut Vec<u8>,
    ) -> ApiResult<Option<u64>> {
        let row = self
            .sql
            .exec(
                "SELECT max(seq), group_concat(body, char(10) ORDER BY seq) FROM \
                 (SELECT seq, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?)",
                vec![int(after), int(upto), int(rows)],
            )?
            .raw()
            .next()
            .transpose()?;
        match row.as_deref() {
            Some([last, SqlStorageValue::String(lines)]) => {
                let last = match last {
                    SqlStorageValue::Integer(n) => *n as u64,
                    SqlStorageValue::Float(n) => *n as u64,
                    other => return Err(ApiError::Internal(format!("bad page end: {other:?}"))),
                };
                out.extend_from_slice(lines.as_bytes());
                out.push(b'\n');
                Ok(Some(last))
            }
            Some([SqlStorageValue::Null, SqlStorageValue::Null]) | None => Ok(None),
            Some(other) => Err(ApiError::Internal(format!("bad event page: {other:?}"))),
        }
    }

    /// Deletes every event; seqs continue from where they were.
    pub fn clear(&self) -> ApiResult<()> {
        self.set_meta("seq_floor", &self.last_seq().to_string())?;
        self.sql.exec("DELETE FROM events", None)?;
        Ok(())
    }

    /// The running execution, if any.
    pub fn running(&self) -> ApiResult<Option<Execution>> {
        let rows: Vec<Execution> = self
            .sql
            .exec(
                "SELECT id, started_at, process_id, callback_at, last_aseq FROM executions \
                 WHERE status = 'running' ORDER BY started_at DESC LIMIT 1",
                None,
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    pub fn start_execution(&self, id: &str, now_ms: u64) -> ApiResult<()> {
        self.sql.exec(
            "INSERT INTO executions(id, status, started_at) VALUES (?, 'running', ?)",
            vec![text(id), int(now_ms)],
        )?;
        Ok(())
    }

    pub fn set_process(&self, id: &str, process_id: &str) -> ApiResult<()> {
        self.update(
            "UPDATE executions SET process_id = ? WHERE id = ?",
            vec![text(process_id), text(id)],
        )
    }

    pub fn mark_callback(&self, id: &str, now_ms: u64) -> ApiResult<()> {
        self.update(
            "UPDATE executions SET callback_at = COALESCE(callback_at, ?) WHERE id = ?",
            vec![int(now_ms), text(id)],
        )
    }

    /// The highest agent line position stored for execution `id`.
    pub fn last_aseq(&self, id: &str) -> ApiResult<u64> {
        let n = self.scalar(
            "SELECT last_aseq FROM executions WHERE id = ?",
            vec![text(id)],
        )?;
        Ok(n.max(0) as u64)
    }

    pub fn set_last_aseq(&self, id: &str, aseq: u64) -> ApiResult<()> {
        self.update(
            "UPDATE executions SET last_aseq = ? WHERE id = ?",
            vec![int(aseq), text(id)],
        )
    }

    pub fn end_execution(
        &self,
        id: &str,
        outcome: Outcome,
        now_ms: u64,
        error: Option<&str>,
    ) -> ApiResult<()> {
        self.update(
            "UPDATE executions SET status = ?, ended_at = ?, error = ? WHERE id = ?",
            vec![
                text(outcome.as_str()),
                int(now_ms),
                error.map_or(SqlStorageValue::Null, text),
                text(id),
            ],
        )
    }

    fn update(&self, query: &str, bindings: Vec<SqlStorageValue>) -> ApiResult<()> {
        self.sql.exec(query, bindings)?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> ApiResult<Option<String>> {
        let row = self
            .sql
            .exec("SELECT value FROM meta WHERE key = ?", vec![text(key)])?
            .raw()
            .next()
            .transpose()?;
        Ok(match row.as_deref() {
            Some([SqlStorageValue::String(v)]) => Some(v.clone()),
            _ => None,
        })
    }

    /// Whether `execution_id` stored an event of type `kind`.
    pub fn has_event(&self, execution_id: &str, kind: &str) -> ApiResult<bool> {
        let n = self.scalar(
            "SELECT COUNT(*) FROM events WHERE execution_id = ? AND type = ?",
            vec![text(execution_id), text(kind)],
        )?;
        Ok(n > 0)
    }

    pub fn delete_meta(&self, key: &str) -> ApiResult<()> {
        self.update("DELETE FROM meta WHERE key = ?", vec![text(key)])
    }

    pub fn set_meta(&self, key: &str, value: &str) -> ApiResult<()> {
        self.update(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vec![text(key), text(value)],
        )
    }
}

/// A replay of the events with `after < seq <= upto`, read page by page as the client takes them, so a session
/// of any length replays in bounded memory, each page one range scan of the primary key.
pub struct Replay {
    after: u64,
    upto: u64,
    rows: usize,
}

impl Replay {
    pub fn new(after: u64, upto: u64) -> Replay {
        Replay {
            after,
            upto,
            rows: FIRST_PAGE_ROWS,
        }
    }

    /// The next page of wire lines; None once the replay is complete.
    pub fn next_page(&mut self, log: &EventLog) -> ApiResult<Option<Vec<u8>>> {
        if self.after >= self.upto {
            return Ok(None);
        }
        let mut page = Vec::new();
        let Some(last) = log.read_page(self.after, self.upto, self.rows, &mut page)? else {
            self.after = self.upto;
            return Ok(None);
        };
        self.after = last;
        self.rows = next_page_rows(self.rows, page.len());
        Ok(Some(page))
    }

    pub fn is_done(&self) -> bool {
        self.after >= self.upto
    }
}

/// How many events the next page reads, given how many the last one read and its size in bytes.
fn next_page_rows(rows: usize, bytes: usize) -> usize {
    if bytes > PAGE_BYTES {
        (rows / 2).max(1)
    } else if bytes < PAGE_BYTES / 4 {
        (rows * 4).min(MAX_PAGE_ROWS)
    } else {
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_binds_the_execution_once_and_three_values_a_row() {
        assert_eq!(
            insert_statement(2),
            "INSERT INTO events(seq, execution_id, type, body) VALUES (?2, ?1, ?3, ?4), (?5, ?1, ?6, ?7)"
        );
        let full = insert_statement(ROWS_PER_INSERT);
        assert!(full.ends_with(", ?1, ?99, ?100)"), "{full}");
        assert!(!full.contains("?101"));
    }

    #[test]
    fn replay_pages_grow_while_small_and_shrink_when_large() {
        // 240-byte lines: 4, 16, 64, … until a page is about a megabyte.
        let mut rows = FIRST_PAGE_ROWS;
        let mut seen = vec![rows];
        for _ in 0..7 {
            rows = next_page_rows(rows, rows * 240);
            seen.push(rows);
        }
        assert_eq!(seen, [4, 16, 64, 256, 1024, 4096, 4096, 4096]);
        // Tiny lines stop at the row cap.
        assert_eq!(next_page_rows(4096, 4096 * 20), MAX_PAGE_ROWS);
        assert_eq!(next_page_rows(MAX_PAGE_ROWS, 300 * 1024), MAX_PAGE_ROWS);
        // 1 MB events: the page halves down to one event and stays there.
        assert_eq!(next_page_rows(4, 4 * 1024 * 1024), 2);
        assert_eq!(next_page_rows(1, 1024 * 1024 + 100), 1);
    }
}
