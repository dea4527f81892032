//! `SessionIndex`: one Durable Object per user, the strongly consistent session list (record, status, last
//! activity, cost, title), fed by the sessions' DOs on their transitions, and its live watchers.
//!
//! KV keeps the records (ownership checks read them), but KV is eventually consistent across locations; the
//! list a user sees comes from here. On its first request an index copies the user's KV records in, so
//! sessions made before it existed appear (idle, last active when created) until their next transition.

use serde::{Deserialize, Serialize};
use vf_protocol::api::{
    SessionListEvent, SessionRecord, SessionStatus, SessionSummary, SessionUpdate,
};
use vf_protocol::session_list;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, SqlStorageValue,
    State,
};

use crate::config::{self, SESSIONS_KV};
use crate::error::{ApiError, ApiResult};
use crate::fanout::Subscribers;
use crate::http;
use crate::sessions;

/// Watch streams get a heartbeat this often, which also notices watchers that went away.
const HEARTBEAT_MS: i64 = 15_000;

#[durable_object]
pub struct SessionIndex {
    state: State,
    env: Env,
    sql: SqlStorage,
    watchers: Subscribers,
}

#[derive(Deserialize)]
struct Row {
    record: String,
    status: String,
    last_activity_at: f64,
    cost_usd: f64,
    first_prompt: Option<String>,
}

/// `POST /rename` and `POST /remove` bodies.
#[derive(Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

impl DurableObject for SessionIndex {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in [
            "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, record TEXT NOT NULL, \
             status TEXT NOT NULL DEFAULT 'idle', last_activity_at INTEGER NOT NULL, \
             cost_usd REAL NOT NULL DEFAULT 0, first_prompt TEXT, version INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ] {
            sql.exec(statement, None)
                .expect("the index schema is valid SQL");
        }
        SessionIndex {
            state,
            env,
            sql,
            watchers: Subscribers::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        Ok(self
            .route(&mut req)
            .await
            .unwrap_or_else(ApiError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if !self.watchers.is_empty() {
            self.watchers.publish(line(&SessionListEvent::Heartbeat));
            self.state
                .storage()
                .set_alarm(config::now_ms() as i64 + HEARTBEAT_MS)
                .await?;
        }
        Response::ok("ok")
    }
}

fn line(event: &SessionListEvent) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(event).expect("list events serialize");
    bytes.push(b'\n');
    bytes
}

impl SessionIndex {
    async fn route(&self, req: &mut Request) -> ApiResult<Response> {
        let user = http::query_param(req, "user")?.ok_or(ApiError::NotFound)?;
        self.migrate(&user).await?;
        match (req.method(), req.path().as_str()) {
            (Method::Get, "/list") => Ok(http::json(200, &self.list()?)),
            (Method::Get, "/watch") => self.watch().await,
            (Method::Post, "/add") => {
                let record: SessionRecord = http::read_json(req).await?;
                self.add(&record)?;
                self.changed();
                Ok(http::no_content())
            }
            (Method::Post, "/update") => {
                let update: SessionUpdate = http::read_json(req).await?;
                if self.update(&update)? {
                    self.changed();
                }
                Ok(http::no_content())
            }
            (Method::Post, "/rename") => {
                let named: Named = http::read_json(req).await?;
                let summary = self.rename(&named)?.ok_or(ApiError::NotFound)?;
                self.changed();
                Ok(http::json(200, &summary))
            }
            (Method::Post, "/remove") => {
                let named: Named = http::read_json(req).await?;
                self.sql.exec(
                    "DELETE FROM sessions WHERE id = ?",
                    vec![SqlStorageValue::String(named.id)],
                )?;
                self.changed();
                Ok(http::no_content())
            }
            _ => Err(ApiError::NotFound),
        }
    }

    fn meta(&self, key: &str) -> ApiResult<Option<String>> {
        #[derive(Deserialize)]
        struct Value {
            value: String,
        }
        let rows: Vec<Value> = self
            .sql
            .exec(
                "SELECT value FROM meta WHERE key = ?",
                vec![SqlStorageValue::String(key.into())],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }

    /// The first time: copies the user's sessions from KV (the records of the list before this index).
    async fn migrate(&self, user: &str) -> ApiResult<()> {
        if self.meta("migratedUser")?.is_some() {
            return Ok(());
        }
        let records = sessions::kv_records(&config::kv(&self.env, SESSIONS_KV)?, user).await?;
        // Another request may have migrated while KV was read.
        if self.meta("migratedUser")?.is_some() {
            return Ok(());
        }
        for record in records.iter().filter(|r| r.user_id == user) {
            self.insert(record, "INSERT OR IGNORE")?;
        }
        self.sql.exec(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('migratedUser', ?)",
            vec![SqlStorageValue::String(user.into())],
        )?;
        Ok(())
    }

    fn insert(&self, record: &SessionRecord, verb: &str) -> ApiResult<()> {
        self.sql.exec(
            &format!("{verb} INTO sessions(id, record, last_activity_at) VALUES (?, ?, ?)"),
            vec![
                SqlStorageValue::String(record.id.clone()),
                SqlStorageValue::String(serde_json::to_string(record).expect("records serialize")),
                SqlStorageValue::Integer(record.created_at as i64),
            ],
        )?;
        Ok(())
    }

    fn add(&self, record: &SessionRecord) -> ApiResult<()> {
        self.insert(record, "INSERT OR REPLACE")
    }

    /// Applies a session's update unless a newer one came first; returns whether anything changed.
    fn update(&self, update: &SessionUpdate) -> ApiResult<bool> {
        let status = serde_json::to_value(update.status).expect("statuses serialize");
        let rows: Vec<serde_json::Value> = self
            .sql
            .exec(
                "UPDATE sessions SET status = ?, last_activity_at = ?, cost_usd = ?, \
                 first_prompt = COALESCE(first_prompt, ?), version = ? WHERE id = ? AND version < ? \
                 RETURNING id",
                vec![
                    SqlStorageValue::String(status.as_str().unwrap_or("idle").into()),
                    SqlStorageValue::Integer(update.last_activity_at as i64),
                    SqlStorageValue::Float(update.cost_usd),
                    update
                        .first_prompt
                        .clone()
                        .map_or(SqlStorageValue::Null, SqlStorageValue::String),
                    SqlStorageValue::Integer(update.version as i64),
                    SqlStorageValue::String(update.id.clone()),
                    SqlStorageValue::Integer(update.version as i64),
                ],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    fn rename(&self, named: &Named) -> ApiResult<Option<SessionSummary>> {
        let Some(mut summary) = self.list()?.into_iter().find(|s| s.record.id == named.id) else {
            return Ok(None);
        };
        summary.record.name = named.name.clone();
        self.sql.exec(
            "UPDATE sessions SET record = ? WHERE id = ?",
            vec![
                SqlStorageValue::String(
                    serde_json::to_string(&summary.record).expect("records serialize"),
                ),
                SqlStorageValue::String(named.id.clone()),
            ],
        )?;
        Ok(self.list()?.into_iter().find(|s| s.record.id == named.id))
    }

    /// Every session, most recently active first.
    fn list(&self) -> ApiResult<Vec<SessionSummary>> {
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT record, status, last_activity_at, cost_usd, first_prompt FROM sessions",
                None,
            )?
            .to_array()?;
        let mut sessions: Vec<SessionSummary> = rows
            .into_iter()
            .filter_map(|row| {
                let record: SessionRecord = serde_json::from_str(&row.record).ok()?;
                let status: SessionStatus =
                    serde_json::from_value(serde_json::Value::String(row.status))
                        .unwrap_or_default();
                let title = session_list::title(&record.name, row.first_prompt.as_deref());
                Some(SessionSummary {
                    record,
                    status,
                    last_activity_at: row.last_activity_at.max(0.0) as u64,
                    cost_usd: row.cost_usd,
                    title,
                })
            })
            .collect();
        session_list::sort(&mut sessions);
        Ok(sessions)
    }

    /// Sends every watcher the new list.
    fn changed(&self) {
        match self.list() {
            Ok(sessions) => self
                .watchers
                .publish(line(&SessionListEvent::Sessions { sessions })),
            Err(e) => worker::console_error!("session index: {e}"),
        }
    }

    /// `GET /watch`: the list now, then again after every change, with heartbeats.
    async fn watch(&self) -> ApiResult<Response> {
        let first = line(&SessionListEvent::Sessions {
            sessions: self.list()?,
        });
        let live = self.watchers.subscribe();
        if self.state.storage().get_alarm().await?.is_none() {
            self.state
                .storage()
                .set_alarm(config::now_ms() as i64 + HEARTBEAT_MS)
                .await?;
        }
        use futures::StreamExt;
        let body = futures::stream::iter([first]).chain(live).map(Ok);
        http::ndjson(body)
    }
}

/// Calls `path` of `user_id`'s index.
async fn call(
    env: &Env,
    user_id: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> ApiResult<Response> {
    let user = String::from(worker::js_sys::encode_uri_component(user_id));
    http::call_stub(
        config::session_index(env, user_id)?,
        method,
        &format!("https://index{path}?user={user}"),
        body,
    )
    .await
}

/// An index answer that must be a success.
fn expect_ok(response: ApiResult<Response>) -> ApiResult<Response> {
    let response = response?;
    match response.status_code() {
        200..=299 => Ok(response),
        404 => Err(ApiError::NotFound),
        status => Err(ApiError::Internal(format!(
            "session index answered {status}"
        ))),
    }
}

/// `GET /api/sessions`.
pub async fn list(env: &Env, user_id: &str) -> ApiResult<Response> {
    expect_ok(call(env, user_id, Method::Get, "/list", None).await)
}

/// `GET /api/sessions/watch`.
pub async fn watch(env: &Env, user_id: &str) -> ApiResult<Response> {
    expect_ok(call(env, user_id, Method::Get, "/watch", None).await)
}

/// A new session joins its user's list.
pub async fn add(env: &Env, record: &SessionRecord) -> ApiResult<()> {
    let body = serde_json::to_string(record).expect("records serialize");
    expect_ok(call(env, &record.user_id, Method::Post, "/add", Some(body)).await)?;
    Ok(())
}

/// Renames a session in its user's list; answers its new summary.
pub async fn rename(env: &Env, user_id: &str, id: &str, name: &str) -> ApiResult<Response> {
    let body = serde_json::to_string(&Named {
        id: id.into(),
        name: name.into(),
    })
    .expect("names serialize");
    expect_ok(call(env, user_id, Method::Post, "/rename", Some(body)).await)
}

/// A deleted session leaves its user's list.
pub async fn remove(env: &Env, user_id: &str, id: &str) -> ApiResult<()> {
    let body = serde_json::to_string(&Named {
        id: id.into(),
        name: String::new(),
    })
    .expect("names serialize");
    expect_ok(call(env, user_id, Method::Post, "/remove", Some(body)).await)?;
    Ok(())
}

/// A session's DO reports a transition.
pub async fn update(env: &Env, user_id: &str, update: &SessionUpdate) -> ApiResult<()> {
    let body = serde_json::to_string(update).expect("updates serialize");
    expect_ok(call(env, user_id, Method::Post, "/update", Some(body)).await)?;
    Ok(())
}
