//! Reading the Worker's configuration: secrets, variables, bindings, the clock and fresh ids.

use worker::{Env, KvStore, ObjectNamespace, Stub};

use crate::error::{ApiError, ApiResult};

pub const AUTH_KV: &str = "AUTH_KV";
pub const SESSIONS_KV: &str = "SESSIONS_KV";
pub const CHAT_SESSIONS: &str = "CHAT_SESSIONS";
/// The `SessionIndex` namespace: one object per user.
pub const SESSION_INDEX: &str = "SESSION_INDEX";
/// The `SandboxContainer` namespace (production; unused while `SANDBOX_URL` is set).
pub const SANDBOX: &str = "SANDBOX";

/// A secret (from `.dev.vars` locally, `wrangler secret put` in production). Missing or empty is a deployment
/// error, logged by name only.
pub fn secret(env: &Env, name: &str) -> ApiResult<String> {
    let value = env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .map_err(|_| ApiError::Internal(format!("secret {name} is not configured")))?;
    if value.is_empty() {
        return Err(ApiError::Internal(format!("secret {name} is empty")));
    }
    Ok(value)
}

/// An optional plain variable (`[vars]` in wrangler.toml, or `--var` on `wrangler dev`).
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
}

/// A numeric variable with a default.
pub fn var_u64(env: &Env, name: &str, default: u64) -> u64 {
    var(env, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn kv(env: &Env, name: &str) -> ApiResult<KvStore> {
    Ok(env.kv(name)?)
}

/// The `ChatSessionAgent` of one session.
pub fn chat_session(env: &Env, session_id: &str) -> ApiResult<Stub> {
    let namespace: ObjectNamespace = env.durable_object(CHAT_SESSIONS)?;
    Ok(namespace.id_from_name(session_id)?.get_stub()?)
}

/// The `SessionIndex` of one user.
pub fn session_index(env: &Env, user_id: &str) -> ApiResult<Stub> {
    let namespace: ObjectNamespace = env.durable_object(SESSION_INDEX)?;
    Ok(namespace.id_from_name(user_id)?.get_stub()?)
}

/// The `SandboxContainer` of one sandbox.
pub fn sandbox_container(env: &Env, sandbox_id: &str) -> ApiResult<Stub> {
    let namespace: ObjectNamespace = env.durable_object(SANDBOX)?;
    Ok(namespace.id_from_name(sandbox_id)?.get_stub()?)
}

/// Milliseconds since the epoch. `SystemTime::now()` panics inside workerd, so the clock is JavaScript's.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// A fresh random id (UUID v4, from the platform's CSPRNG).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use toml::{Table, Value};

    use super::{AUTH_KV, CHAT_SESSIONS, SANDBOX, SESSIONS_KV, SESSION_INDEX};

    /// The array of tables at `path` (`key` or `table.key`) in `config`, each entry as its `fields`' `name=value`.
    fn entries(config: &Table, path: &str, fields: &[&str]) -> BTreeSet<String> {
        let parent = match path.split_once('.') {
            Some((table, _)) => config.get(table).and_then(Value::as_table),
            None => Some(config),
        };
        let key = path.rsplit('.').next().unwrap();
        parent
            .and_then(|t| t.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| {
                let pairs = fields
                    .iter()
                    .map(|f| format!("{f}={}", item[*f].as_str().unwrap()));
                pairs.collect::<Vec<_>>().join(" ")
            })
            .collect()
    }

    /// wrangler.toml declares what this code reads, in every environment (wrangler does not inherit bindings,
    /// containers or vars into `[env.*]`), and every Durable Object class has its SQLite migration (a dry run
    /// does not check that; the upload would fail).
    #[test]
    fn wrangler_toml_binds_what_the_code_reads_in_every_environment() {
        let config: Table = include_str!("../../wrangler.toml").parse().unwrap();
        let objects = BTreeSet::from([
            format!("name={CHAT_SESSIONS} class_name=ChatSessionAgent"),
            format!("name={SANDBOX} class_name=SandboxContainer"),
            format!("name={SESSION_INDEX} class_name=SessionIndex"),
        ]);
        let namespaces = BTreeSet::from([
            format!("binding={AUTH_KV}"),
            format!("binding={SESSIONS_KV}"),
        ]);
        let containers =
            BTreeSet::from(["class_name=SandboxContainer image=./Dockerfile".to_string()]);
        let mut environments = vec![("top level", &config)];
        for (name, env) in config["env"].as_table().expect("[env.preview]") {
            environments.push((name.as_str(), env.as_table().unwrap()));
        }
        for (name, env) in environments {
            let bound = entries(env, "durable_objects.bindings", &["name", "class_name"]);
            assert_eq!(bound, objects, "{name}: durable_objects");
            assert_eq!(
                entries(env, "kv_namespaces", &["binding"]),
                namespaces,
                "{name}: kv_namespaces"
            );
            let images = entries(env, "containers", &["class_name", "image"]);
            assert_eq!(images, containers, "{name}: containers");
            assert!(env["vars"].get("AGENT_COMMAND").is_some(), "{name}: vars");
        }
        let sqlite: BTreeSet<&str> = config["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m.get("new_sqlite_classes").and_then(Value::as_array))
            .flatten()
            .map(|class| class.as_str().unwrap())
            .collect();
        assert_eq!(
            sqlite,
            BTreeSet::from(["ChatSessionAgent", "SandboxContainer", "SessionIndex"])
        );
    }
}
