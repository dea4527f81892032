//! The session's queued prompts (SQLite): sent with `"queue": true` while an answer ran, started in order as the
//! answers end, each with the request (and turn options) it was sent with.

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use crate::dispatch::ChatForward;
use crate::error::{ApiError, ApiResult};

pub struct PromptQueue {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct Row {
    queue_id: String,
    body: String,
}

impl PromptQueue {
    /// Opens the queue, creating its table on first use. `pos` only grows, so it is the order of arrival.
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS queue(pos INTEGER PRIMARY KEY AUTOINCREMENT, \
             queue_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)",
            None,
        )?;
        Ok(PromptQueue { sql })
    }

    pub fn len(&self) -> ApiResult<usize> {
        let rows: Vec<serde_json::Value> = self
            .sql
            .exec("SELECT COUNT(*) AS n FROM queue", None)?
            .to_array()?;
        Ok(rows
            .first()
            .and_then(|r| r["n"].as_u64())
            .unwrap_or_default() as usize)
    }

    /// Appends a prompt; returns its position (1 = next).
    pub fn push(&self, queue_id: &str, forward: &ChatForward) -> ApiResult<usize> {
        let body = serde_json::to_string(forward).expect("forwards serialize");
        self.sql.exec(
            "INSERT INTO queue(queue_id, body) VALUES (?, ?)",
            vec![
                SqlStorageValue::String(queue_id.into()),
                SqlStorageValue::String(body),
            ],
        )?;
        self.len()
    }

    /// Takes the oldest prompt out of the queue.
    pub fn pop_front(&self) -> ApiResult<Option<(String, ChatForward)>> {
        let rows: Vec<Row> = self
            .sql
            .exec(
                "DELETE FROM queue WHERE pos = (SELECT MIN(pos) FROM queue) RETURNING queue_id, body",
                None,
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let forward = serde_json::from_str(&row.body)
            .map_err(|e| ApiError::Internal(format!("a queued prompt does not parse: {e}")))?;
        Ok(Some((row.queue_id, forward)))
    }

    /// Removes one prompt; returns whether it was there.
    pub fn remove(&self, queue_id: &str) -> ApiResult<bool> {
        let rows: Vec<serde_json::Value> = self
            .sql
            .exec(
                "DELETE FROM queue WHERE queue_id = ? RETURNING pos",
                vec![SqlStorageValue::String(queue_id.into())],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    /// Empties the queue; returns the ids that were in it, in order.
    pub fn clear(&self) -> ApiResult<Vec<String>> {
        #[derive(Deserialize)]
        struct Id {
            queue_id: String,
        }
        let rows: Vec<Id> = self
            .sql
            .exec("SELECT queue_id FROM queue ORDER BY pos", None)?
            .to_array()?;
        self.sql.exec("DELETE FROM queue", None)?;
        Ok(rows.into_iter().map(|r| r.queue_id).collect())
    }
}
