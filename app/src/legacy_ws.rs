//! The legacy WebSocket transport (`/api/sdk/ws`): one socket per prompt, plain events back, no resume.

pub use vf_protocol::legacy::ClientMessage;
use vf_protocol::Event;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What the socket reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketEvent {
    Open,
    Event(Event),
    Closed,
}

/// The URL of the legacy socket of a session, from this page's `ws(s)://host`.
pub fn url(origin: &str, session_id: &str) -> String {
    format!("{origin}/api/sdk/ws?sessionId={session_id}")
}

/// An open legacy socket. Dropping it detaches the handlers and closes the socket.
pub struct LegacySocket {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl LegacySocket {
    /// Opens the socket and sends `query` once it is open.
    pub fn open(
        url: &str,
        query: ClientMessage,
        on_event: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<Self, String> {
        let socket = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
        let on_open = {
            let (socket, on_event) = (socket.clone(), on_event.clone());
            Closure::<dyn FnMut()>::new(move || {
                on_event(SocketEvent::Open);
                if socket.send_with_str(&query.to_json()).is_err() {
                    on_event(SocketEvent::Closed);
                }
            })
        };
        let on_message = {
            let on_event = on_event.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |message: MessageEvent| {
                let Some(text) = message.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<Event>(&text) {
                    Ok(event) => on_event(SocketEvent::Event(event)),
                    Err(e) => {
                        leptos::logging::warn!("skipped a socket message that is not an event: {e}")
                    }
                }
            })
        };
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            on_event(SocketEvent::Closed)
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(LegacySocket {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Asks the agent to stop; the server answers with a terminal event and closes.
    pub fn stop(&self) {
        let _ = self.socket.send_with_str(&ClientMessage::Stop.to_json());
    }
}

impl Drop for LegacySocket {
    fn drop(&mut self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_same_origin() {
        assert_eq!(
            url("wss://vf.example", "abc-1"),
            "wss://vf.example/api/sdk/ws?sessionId=abc-1"
        );
    }
}
