//! The idempotency keys a session remembers (SQLite): what each keyed chat request got, so the same request
//! again (an outbox retrying after a lost response) answers the same and starts no second turn.

use serde::{Deserialize, Serialize};
use vf_protocol::api::QueuedResponse;
use worker::{SqlStorage, SqlStorageValue};

use crate::error::ApiResult;

/// A session keeps the answers of its newest keys, at most this many…
const KEEP_KEYS: i64 = 500;
/// …and for at most this long (an outbox retries for minutes or days, not weeks).
const KEEP_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// What a keyed request got.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Answered {
    /// It started a turn; its events follow seq `after`.
    Started { after: u64 },
    /// It was queued.
    Queued(QueuedResponse),
}

pub struct Idempotency {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct Row {
    answer: String,
}

impl Idempotency {
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS idempotency(key TEXT PRIMARY KEY, answer TEXT NOT NULL, \
             created_at INTEGER NOT NULL)",
            None,
        )?;
        Ok(Idempotency { sql })
    }

    /// What the request with `key` got, if one came.
    pub fn recall(&self, key: &str) -> ApiResult<Option<Answered>> {
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT answer FROM idempotency WHERE key = ?",
                vec![SqlStorageValue::String(key.into())],
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| serde_json::from_str(&r.answer).ok()))
    }

    /// Remembers what the request with `key` got, and forgets keys past the retention.
    pub fn remember(&self, key: &str, answered: &Answered, now_ms: u64) -> ApiResult<()> {
        let answer = serde_json::to_string(answered).expect("answers serialize");
        self.sql.exec(
            "INSERT OR REPLACE INTO idempotency(key, answer, created_at) VALUES (?, ?, ?)",
            vec![
                SqlStorageValue::String(key.into()),
                SqlStorageValue::String(answer),
                SqlStorageValue::Integer(now_ms as i64),
            ],
        )?;
        self.sql.exec(
            "DELETE FROM idempotency WHERE created_at < ? OR key NOT IN \
             (SELECT key FROM idempotency ORDER BY created_at DESC LIMIT ?)",
            vec![
                SqlStorageValue::Integer(now_ms.saturating_sub(KEEP_MS) as i64),
                SqlStorageValue::Integer(KEEP_KEYS),
            ],
        )?;
        Ok(())
    }
}
