//! Which transport a browser uses: the DO path (V1.5) or the legacy WebSocket, decided at run time.

use crate::{api, browser};

/// The localStorage key of a browser's remembered transport.
pub const STORAGE_KEY: &str = "vf-transport";

/// How a chat reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// `POST /api/v15/chat` and resumable event streams, persisted by the Durable Object.
    #[default]
    Do,
    /// The legacy WebSocket: nothing persisted, no resume.
    Ws,
}

impl Transport {
    /// The value used in `?transport=`, in localStorage and in `data-transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Do => "do",
            Transport::Ws => "ws",
        }
    }

    /// The short name shown in the connection badge.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Do => "DO",
            Transport::Ws => "WS",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "do" => Some(Transport::Do),
            "ws" => Some(Transport::Ws),
            _ => None,
        }
    }

    /// The transport the server's flag asks for.
    pub fn from_flag(agent_chat: bool) -> Self {
        if agent_chat {
            Transport::Do
        } else {
            Transport::Ws
        }
    }
}

/// What the browser alone decides, before the flag is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The URL names a transport: use it and remember it.
    FromUrl(Transport),
    /// A transport remembered from an earlier `?transport=`.
    Remembered(Transport),
    /// Nothing decided here: ask the flag. `forget` when the URL said `auto`, or the stored value is unreadable.
    AskFlag { forget: bool },
}

/// Decides from the URL's `transport` parameter and the stored value. Precedence: `?transport=do|ws` in the URL
/// (remembered in localStorage), then the remembered choice, then the server's `agentChat` flag; `?transport=auto`
/// forgets the remembered choice, and an unknown URL value is ignored. Switching needs no rebuild.
pub fn choose(url_param: Option<&str>, stored: Option<&str>) -> Choice {
    if let Some(param) = url_param {
        if let Some(transport) = Transport::parse(param) {
            return Choice::FromUrl(transport);
        }
        if param.trim().eq_ignore_ascii_case("auto") {
            return Choice::AskFlag { forget: true };
        }
    }
    match stored {
        Some(value) => match Transport::parse(value) {
            Some(transport) => Choice::Remembered(transport),
            None => Choice::AskFlag { forget: true },
        },
        None => Choice::AskFlag { forget: false },
    }
}

/// Resolves this browser's transport, remembering a URL choice; when the flag cannot be read, the DO path (the
/// default of the flag itself) is used.
pub async fn resolve() -> Transport {
    let url_param = browser::query_param("transport");
    let stored = browser::storage_get(STORAGE_KEY);
    match choose(url_param.as_deref(), stored.as_deref()) {
        Choice::FromUrl(transport) => {
            browser::storage_set(STORAGE_KEY, transport.as_str());
            transport
        }
        Choice::Remembered(transport) => transport,
        Choice::AskFlag { forget } => {
            if forget {
                browser::storage_remove(STORAGE_KEY);
            }
            api::flags()
                .await
                .map(|flags| Transport::from_flag(flags.agent_chat))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_wins_and_is_remembered() {
        assert_eq!(
            choose(Some("ws"), Some("do")),
            Choice::FromUrl(Transport::Ws)
        );
        assert_eq!(choose(Some("DO"), None), Choice::FromUrl(Transport::Do));
    }

    #[test]
    fn a_remembered_choice_beats_the_flag() {
        assert_eq!(choose(None, Some("ws")), Choice::Remembered(Transport::Ws));
        assert_eq!(
            choose(Some("bogus"), Some("ws")),
            Choice::Remembered(Transport::Ws)
        );
    }

    #[test]
    fn otherwise_the_flag_decides() {
        assert_eq!(choose(None, None), Choice::AskFlag { forget: false });
        assert_eq!(choose(Some(""), None), Choice::AskFlag { forget: false });
        assert_eq!(Transport::from_flag(true), Transport::Do);
        assert_eq!(Transport::from_flag(false), Transport::Ws);
    }

    #[test]
    fn auto_and_garbage_forget_the_remembered_choice() {
        assert_eq!(
            choose(Some("auto"), Some("ws")),
            Choice::AskFlag { forget: true }
        );
        assert_eq!(
            choose(None, Some("carrier-pigeon")),
            Choice::AskFlag { forget: true }
        );
    }

    #[test]
    fn names_round_trip() {
        for t in [Transport::Do, Transport::Ws] {
            assert_eq!(Transport::parse(t.as_str()), Some(t));
        }
        assert_eq!(Transport::Ws.label(), "WS");
    }
}
