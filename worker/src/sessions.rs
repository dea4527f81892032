//! Chat sessions: KV records owned by one user. Anyone else asking for a session gets the same 404 as for a
//! session that does not exist, so ids cannot be probed.

use vf_protocol::api::{
    is_valid_id, CreateSessionRequest, RenameRequest, SessionRecord, DEFAULT_SESSION_NAME,
    MAX_SESSION_NAME_CHARS,
};
use worker::{Env, KvStore, Method, Request, RequestInit, Response};

use crate::auth::User;
use crate::config::{self, SESSIONS_KV};
use crate::error::{ApiError, ApiResult};
use crate::http;
use crate::session_index;

fn session_key(id: &str) -> String {
    format!("session:{id}")
}

/// Per-user KV key: the record rides along as metadata, so one prefix listing reads a user's records (what a
/// new `SessionIndex` copies in).
fn index_key(user_id: &str, id: &str) -> String {
    format!("user-session:{user_id}:{id}")
}

/// The sandbox a session's agent runs in: one per session.
pub fn sandbox_id(session_id: &str) -> String {
    format!("sbx-{session_id}")
}

/// `POST /api/sessions`: creates the record, then initialises the session's DO with its owner.
pub async fn create(mut req: Request, env: &Env, user: &User) -> ApiResult<Response> {
    let body: CreateSessionRequest = if req.headers().get("Content-Length")?.as_deref() == Some("0")
    {
        CreateSessionRequest::default()
    } else {
        let bytes = req.bytes().await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            CreateSessionRequest::default()
        } else {
            http::parse_json(&bytes)?
        }
    };
    let name = match body.name.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > MAX_SESSION_NAME_CHARS => {
            return Err(ApiError::BadRequest(format!(
                "name is longer than {MAX_SESSION_NAME_CHARS} characters"
            )))
        }
        Some(n) if !n.is_empty() => n.to_string(),
        _ => DEFAULT_SESSION_NAME.to_string(),
    };
    let id = config::new_id();
    let record = SessionRecord {
        sandbox_id: sandbox_id(&id),
        id,
        user_id: user.id.clone(),
        name,
        created_at: config::now_ms(),
    };
    let stub = config::chat_session(env, &record.id)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        serde_json::to_string(&record)
            .expect("records serialize")
            .into(),
    ));
    let response = stub
        .fetch_with_request(Request::new_with_init("https://do/init", &init)?)
        .await?;
    if response.status_code() != 204 {
        return Err(ApiError::Internal(format!(
            "session DO init answered {}",
            response.status_code()
        )));
    }
    put_record(env, &record).await?;
    session_index::add(env, &record).await?;
    Ok(http::json(201, &record))
}

/// `GET /api/sessions`: the user's sessions with what each is doing, most recently active first (from the
/// user's [`SessionIndex`](crate::session_index)).
pub async fn list(env: &Env, user: &User) -> ApiResult<Response> {
    session_index::list(env, &user.id).await
}

/// `GET /api/sessions/watch`: the list as NDJSON, again after every change.
pub async fn watch(env: &Env, user: &User) -> ApiResult<Response> {
    session_index::watch(env, &user.id).await
}

/// `PATCH /api/sessions/{id}` `{"name"}`: renames the session (KV record and index); answers its summary.
pub async fn rename(mut req: Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let mut record = owned(env, user, id).await?;
    let body: RenameRequest = http::read_json(&mut req).await?;
    record.name = body.validate()?;
    put_record(env, &record).await?;
    session_index::rename(env, &user.id, id, &record.name).await
}

/// The records of `user_id`'s sessions in KV, in no particular order.
pub async fn kv_records(kv: &KvStore, user_id: &str) -> ApiResult<Vec<SessionRecord>> {
    let mut sessions: Vec<SessionRecord> = Vec::new();
    let mut cursor = None;
    loop {
        let mut list = kv.list().prefix(format!("user-session:{user_id}:"));
        if let Some(c) = cursor.take() {
            list = list.cursor(c);
        }
        let page = list.execute().await?;
        sessions.extend(
            page.keys
                .into_iter()
                .filter_map(|k| serde_json::from_value(k.metadata?).ok()),
        );
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
    }
    Ok(sessions)
}

/// Writes the record and its per-user KV key (the record rides along as metadata).
async fn put_record(env: &Env, record: &SessionRecord) -> ApiResult<()> {
    let kv = config::kv(env, SESSIONS_KV)?;
    let json = serde_json::to_string(record).expect("records serialize");
    kv.put(&session_key(&record.id), json)?.execute().await?;
    kv.put(&index_key(&record.user_id, &record.id), "")?
        .metadata(record)?
        .execute()
        .await?;
    Ok(())
}

/// `DELETE /api/sessions/{id}`: stops anything running, erases the transcript, removes the records.
pub async fn delete(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let record = owned(env, user, id).await?;
    let stub = config::chat_session(env, &record.id)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    stub.fetch_with_request(Request::new_with_init("https://do/destroy", &init)?)
        .await?;
    let kv = config::kv(env, SESSIONS_KV)?;
    kv.delete(&index_key(&user.id, id)).await?;
    kv.delete(&session_key(id)).await?;
    session_index::remove(env, &user.id, id).await?;
    Ok(http::no_content())
}

/// The session `id` if it exists and belongs to `user`; 404 otherwise (also for a malformed id).
pub async fn owned(env: &Env, user: &User, id: &str) -> ApiResult<SessionRecord> {
    let record = load(env, id).await?.ok_or(ApiError::NotFound)?;
    if record.user_id != user.id {
        return Err(ApiError::NotFound);
    }
    Ok(record)
}

/// The session record, whoever owns it.
pub async fn load(env: &Env, id: &str) -> ApiResult<Option<SessionRecord>> {
    if !is_valid_id(id) {
        return Ok(None);
    }
    Ok(config::kv(env, SESSIONS_KV)?
        .get(&session_key(id))
        .json::<SessionRecord>()
        .await?)
}
