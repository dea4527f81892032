//! The ChatSessionAgent's approvals in SQLite: every confirmation an agent asked for, its decision once there is
//! one, and the session's "allow for this session" rules. Synchronous, like the event log: a decision and its
//! `confirmation-result` event commit together.

use serde::Deserialize;
use vf_protocol::api::{AgentDecision, SessionRule};
use vf_protocol::DecidedBy;
use worker::{SqlStorage, SqlStorageValue};

use crate::error::ApiResult;

/// One row of `approvals`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalRow {
    pub id: String,
    pub execution_id: String,
    pub tool_name: String,
    pub created_at: i64,
    /// Null while pending.
    pub approved: Option<i64>,
    pub scope: Option<String>,
    pub message: Option<String>,
    pub decided_by: Option<String>,
    /// The answers to Claude's questions, as JSON.
    pub answers: Option<String>,
}

impl ApprovalRow {
    /// The decision, once there is one, as the agent receives it.
    pub fn decision(&self) -> Option<AgentDecision> {
        let approved = self.approved? != 0;
        Some(AgentDecision {
            approval_id: self.id.clone(),
            approved,
            scope: wire(self.scope.as_deref()).unwrap_or_default(),
            message: self.message.clone(),
            by: wire(self.decided_by.as_deref()).unwrap_or(DecidedBy::User),
            answers: self
                .answers
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
        })
    }
}

fn wire<T: serde::de::DeserializeOwned>(name: Option<&str>) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name?.to_string())).ok()
}

fn wire_name<T: serde::Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("protocol enums serialize as strings"),
    }
}

fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::String(v.to_string())
}

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A row of `pragma_table_info`.
#[derive(Deserialize)]
struct Column {
    name: String,
}

pub struct ApprovalLog {
    sql: SqlStorage,
}

const COLUMNS: &str =
    "id, execution_id, tool_name, created_at, approved, scope, message, decided_by, answers";

impl ApprovalLog {
    /// Opens the tables, creating them on first use.
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS approvals(id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, \
             tool_name TEXT NOT NULL, created_at INTEGER NOT NULL, approved INTEGER, scope TEXT, \
             message TEXT, decided_by TEXT, decided_at INTEGER, answers TEXT)",
            None,
        )?;
        // Tables made before answers existed get the column; nothing stored changes.
        let columns: Vec<Column> = sql
            .exec("SELECT name FROM pragma_table_info('approvals')", None)?
            .to_array()?;
        if !columns.iter().any(|c| c.name == "answers") {
            sql.exec("ALTER TABLE approvals ADD COLUMN answers TEXT", None)?;
        }
        sql.exec(
            "CREATE TABLE IF NOT EXISTS rules(tool_name TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
            None,
        )?;
        Ok(ApprovalLog { sql })
    }

    fn rows(&self, query: &str, bindings: Vec<SqlStorageValue>) -> ApiResult<Vec<ApprovalRow>> {
        Ok(self.sql.exec(query, bindings)?.to_array()?)
    }

    /// Records a pending approval. An id seen before (an agent that resent its confirmation) is kept as it was.
    pub fn insert(
        &self,
        id: &str,
        execution_id: &str,
        tool_name: &str,
        now_ms: u64,
    ) -> ApiResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO approvals(id, execution_id, tool_name, created_at) VALUES (?, ?, ?, ?)",
            vec![text(id), text(execution_id), text(tool_name), int(now_ms)],
        )?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> ApiResult<Option<ApprovalRow>> {
        Ok(self
            .rows(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?"),
                vec![text(id)],
            )?
            .into_iter()
            .next())
    }

    /// The pending approvals of `execution_id`, oldest first.
    pub fn pending(&self, execution_id: &str) -> ApiResult<Vec<ApprovalRow>> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM approvals WHERE execution_id = ? AND approved IS NULL \
                 ORDER BY created_at"
            ),
            vec![text(execution_id)],
        )
    }

    /// Records the decision of a pending approval; false if it was no longer pending (someone decided first).
    pub fn decide(&self, decision: &AgentDecision, now_ms: u64) -> ApiResult<bool> {
        let changed = self
            .sql
            .exec(
                "UPDATE approvals SET approved = ?, scope = ?, message = ?, decided_by = ?, decided_at = ?, \
                 answers = ? WHERE id = ? AND approved IS NULL RETURNING id",
                vec![
                    int(u64::from(decision.approved)),
                    text(&wire_name(decision.scope)),
                    decision.message.as_deref().map_or(SqlStorageValue::Null, text),
                    text(&wire_name(decision.by)),
                    int(now_ms),
                    decision
                        .answers
                        .as_ref()
                        .map_or(SqlStorageValue::Null, |a| text(&serde_json::to_string(a).unwrap_or_default())),
                    text(&decision.approval_id),
                ],
            )?
            .raw()
            .count();
        Ok(changed > 0)
    }

    /// Whether a session rule allows `tool_name`.
    pub fn has_rule(&self, tool_name: &str) -> ApiResult<bool> {
        let rules: Vec<SessionRule> = self
            .sql
            .exec(
                "SELECT tool_name AS toolName, created_at AS createdAt FROM rules WHERE tool_name = ?",
                vec![text(tool_name)],
            )?
            .to_array()?;
        Ok(!rules.is_empty())
    }

    pub fn add_rule(&self, tool_name: &str, now_ms: u64) -> ApiResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO rules(tool_name, created_at) VALUES (?, ?)",
            vec![text(tool_name), int(now_ms)],
        )?;
        Ok(())
    }

    pub fn rules(&self) -> ApiResult<Vec<SessionRule>> {
        Ok(self
            .sql
            .exec(
                "SELECT tool_name AS toolName, created_at AS createdAt FROM rules ORDER BY tool_name",
                None,
            )?
            .to_array()?)
    }

    /// Removes one rule (`Some`) or all of them.
    pub fn clear_rules(&self, tool_name: Option<&str>) -> ApiResult<()> {
        match tool_name {
            Some(name) => self
                .sql
                .exec("DELETE FROM rules WHERE tool_name = ?", vec![text(name)])?,
            None => self.sql.exec("DELETE FROM rules", None)?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vf_protocol::ApprovalScope;

    #[test]
    fn a_row_reads_back_as_the_agents_decision() {
        let row = ApprovalRow {
            id: "a1".into(),
            execution_id: "e1".into(),
            tool_name: "Bash".into(),
            created_at: 1,
            approved: Some(1),
            scope: Some("session".into()),
            message: None,
            decided_by: Some("rule".into()),
            answers: None,
        };
        let decision = row.decision().unwrap();
        assert!(decision.approved);
        assert_eq!(decision.answers, None);
        let answered = ApprovalRow {
            tool_name: "AskUserQuestion".into(),
            answers: Some(r#"{"Which?":"A, B"}"#.into()),
            ..row.clone()
        };
        assert_eq!(
            answered.decision().unwrap().answers.unwrap()["Which?"],
            "A, B"
        );
        assert_eq!(decision.scope, ApprovalScope::Session);
        assert_eq!(decision.by, DecidedBy::Rule);
        assert_eq!(
            ApprovalRow {
                approved: None,
                ..row
            }
            .decision(),
            None
        );
        assert_eq!(wire_name(DecidedBy::Timeout), "timeout");
    }
}
