//! The outbox: prompts not yet accepted by the server, kept in localStorage per session so that a prompt typed
//! offline (or while the Worker restarts) survives a reload and is sent when the connection returns, once: each
//! carries the idempotency key its every attempt sends.

use serde::{Deserialize, Serialize};
use vf_protocol::api::{ChatRequest, TurnOptions};

use crate::browser;

/// A prompt waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub key: String,
    pub prompt: String,
    #[serde(default)]
    pub turn: TurnOptions,
}

impl Pending {
    /// The request of one attempt: queued behind a running answer when `busy`.
    pub fn request(&self, session_id: &str, busy: bool) -> ChatRequest {
        ChatRequest {
            session_id: session_id.to_string(),
            prompt: self.prompt.clone(),
            turn: self.turn.clone(),
            queue: busy,
            idempotency_key: Some(self.key.clone()),
        }
    }
}

/// One session's outbox, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    pub entries: Vec<Pending>,
}

fn storage_key(session_id: &str) -> String {
    format!("vf-outbox:{session_id}")
}

impl Outbox {
    /// The outbox as stored (empty if none, or unreadable).
    pub fn load(session_id: &str) -> Outbox {
        let entries = browser::storage_get(&storage_key(session_id))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        Outbox { entries }
    }

    pub fn save(&self, session_id: &str) {
        let key = storage_key(session_id);
        if self.entries.is_empty() {
            browser::storage_remove(&key);
        } else {
            let json = serde_json::to_string(&self.entries).expect("the outbox serializes");
            browser::storage_set(&key, &json);
        }
    }

    /// Adds a prompt with a fresh key.
    pub fn push(&mut self, key: String, prompt: String, turn: TurnOptions) {
        self.entries.push(Pending { key, prompt, turn });
    }

    /// Removes the entry with `key`; returns it.
    pub fn remove(&mut self, key: &str) -> Option<Pending> {
        let index = self.entries.iter().position(|p| p.key == key)?;
        Some(self.entries.remove(index))
    }

    pub fn first(&self) -> Option<&Pending> {
        self.entries.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_order_and_their_key_through_every_attempt() {
        let mut outbox = Outbox::default();
        outbox.push("k1".into(), "one".into(), TurnOptions::default());
        outbox.push("k2".into(), "two".into(), TurnOptions::default());
        let first = outbox.first().unwrap();
        let a = first.request("s", false);
        let b = first.request("s", true);
        assert_eq!(a.idempotency_key, b.idempotency_key);
        assert!(b.queue && !a.queue);
        assert_eq!(outbox.remove("k1").unwrap().prompt, "one");
        assert_eq!(outbox.first().unwrap().key, "k2");
        assert_eq!(outbox.remove("nope"), None);
        let json = serde_json::to_string(&outbox.entries).unwrap();
        let back: Vec<Pending> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, outbox.entries);
    }
}
