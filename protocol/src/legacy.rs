//! The legacy WebSocket path's messages (kept for rollback behind the flag): the browser's, which the Worker
//! relays, and the one that starts an agent on the sandbox's agent socket. Events come back as plain event lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{Autonomy, SessionMode};

/// What a client sends on a legacy socket: the browser to the Worker, and the Worker's `stop` to the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    Query {
        prompt: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<SessionMode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        autonomy: Option<Autonomy>,
    },
    Stop,
}

/// The first message on the sandbox's agent socket: the turn to run and the agent's environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStart {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SessionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autonomy: Option<Autonomy>,
    /// Variables for the agent (the Claude token), on top of the sandbox's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl ClientMessage {
    /// This message as the JSON text of one WebSocket message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_on_the_wire() {
        let query = ClientMessage::Query {
            prompt: "hi".into(),
            model: None,
            mode: Some(SessionMode::Plan),
            autonomy: None,
        };
        assert_eq!(
            query.to_json(),
            r#"{"type":"query","prompt":"hi","mode":"plan"}"#
        );
        assert_eq!(ClientMessage::Stop.to_json(), r#"{"type":"stop"}"#);
        let read: ClientMessage =
            serde_json::from_str(r#"{"type":"query","prompt":"p","autonomy":"standard"}"#).unwrap();
        assert!(matches!(
            read,
            ClientMessage::Query {
                autonomy: Some(Autonomy::Standard),
                ..
            }
        ));
    }

    #[test]
    fn an_agent_start_needs_only_a_prompt() {
        let start: AgentStart = serde_json::from_str(r#"{"prompt":"p"}"#).unwrap();
        assert_eq!(start.prompt, "p");
        assert!(start.env.is_empty());
        let json = serde_json::to_value(AgentStart {
            sdk_session_id: Some("6f1".into()),
            ..start
        })
        .unwrap();
        assert_eq!(json["sdkSessionId"], "6f1");
    }
}
