//! The measured paths. Each run drives a synthetic `vf-agent` (`VF_SYNTHETIC`) through one path and records
//! every line the reader gets, with its read time.

use std::cell::RefCell;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vf_e2e::{Client, Stack};

use crate::direct::Workerd;
use crate::floor::{Loopback, RelayWorker};
use crate::measure::{now_us, Recorder};

/// One replay as the client saw it: µs from the request to its first and last byte, and the lines it got.
pub struct Replay {
    pub first_byte_us: u64,
    pub last_byte_us: u64,
    pub lines: u64,
}

pub struct Bench {
    pub stack: Stack,
    /// The app's own workerd (see [`crate::direct`]): every request of the bench goes there.
    pub app: Workerd,
    pub user: Client,
    pub relay: RelayWorker,
    pub loopback: Loopback,
    /// The `VF_SYNTHETIC` vf-sandbox currently runs with.
    synthetic: RefCell<String>,
}

impl Bench {
    pub async fn new(stack: Stack, relay: RelayWorker) -> Bench {
        let public_port = stack
            .base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the stack's base has a port");
        let pgid = stack.wrangler_pid().expect("wrangler dev runs");
        let app = crate::direct::workerd(pgid, public_port, "/api/me", 401, "error").await;
        let user = Client::signed_in(&app.base).await;
        Bench {
            stack,
            app,
            user,
            relay,
            loopback: Loopback::start().await,
            synthetic: RefCell::new(String::new()),
        }
    }

    pub async fn session(&self) -> String {
        self.user.create_session().await.id
    }

    fn cookie(&self) -> &str {
        self.user.cookie.as_deref().expect("signed in")
    }

    /// Restarts vf-sandbox with `VF_SYNTHETIC=spec` (it hands `VF_*` to every agent) unless it already runs so.
    pub async fn synthetic(&self, spec: &str) {
        if *self.synthetic.borrow() == spec {
            return;
        }
        self.stack.stop_sandbox();
        self.stack.start_sandbox_with(&[("VF_SYNTHETIC", spec)]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .user
            .http
            .get(format!("{}/api/ping", self.stack.sandbox_url))
            .header("X-Sandbox-Token", &self.stack.secrets.sandbox)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "vf-sandbox did not restart");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        *self.synthetic.borrow_mut() = spec.to_string();
    }

    /// (a) The DO path: `POST /api/v15/chat`, the agent's callback through the Worker into the DO, stored, fanned
    /// out to the chat response. Also returns when the request was sent.
    pub async fn do_path(&self, session: &str, spec: &str) -> (u64, Recorder) {
        self.synthetic(spec).await;
        let cpu = self.app.cpu_us();
        let sent = now_us();
        let mut response = self
            .user
            .http
            .post(format!("{}/api/v15/chat", self.app.base))
            .header("Cookie", self.cookie())
            .json(&json!({ "sessionId": session, "prompt": "bench" }))
            .send()
            .await
            .expect("POST /api/v15/chat");
        assert_eq!(response.status().as_u16(), 200, "chat");
        let mut recorder = Recorder::default();
        while let Some(chunk) = response.chunk().await.expect("the chat stream reads") {
            recorder.chunk(&chunk, now_us());
        }
        assert!(
            recorder.terminal,
            "the chat stream ended without done after {} lines ({spec})",
            recorder.lines
        );
        recorder.workerd_cpu_us = self.app.cpu_us() - cpu;
        (sent, recorder)
    }

    /// (b) The legacy path: browser WebSocket → Worker → vf-sandbox's agent socket → vf-agent on stdout.
    pub async fn legacy_path(&self, session: &str, spec: &str) -> Recorder {
        self.synthetic(spec).await;
        let url = format!(
            "{}/api/sdk/ws?sessionId={session}",
            self.app.base.replacen("http", "ws", 1)
        );
        let cpu = self.app.cpu_us();
        let mut request = url.into_client_request().expect("a WebSocket URL");
        request.headers_mut().insert(
            "Cookie",
            self.cookie().parse().expect("a cookie header value"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the legacy WebSocket opens");
        socket
            .send(Message::Text(r#"{"type":"query","prompt":"bench"}"#.into()))
            .await
            .expect("the query is sent");
        let mut recorder = Recorder::default();
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    recorder.line(text.as_bytes(), now_us());
                    if recorder.terminal {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(recorder.terminal, "the legacy socket ended without done");
        recorder.workerd_cpu_us = self.app.cpu_us() - cpu;
        recorder
    }

    /// Runs the release `vf-agent` directly, in synthetic callback mode, posting to `url`.
    async fn agent(&self, url: &str, spec: &str) {
        let status = tokio::process::Command::new(self.stack.bin_dir().join("vf-agent"))
            .env("VF_CALLBACK_URL", url)
            .env("VF_STREAM_JWT", "bench")
            .env("VF_SYNTHETIC", spec)
            .env_remove("VF_QUERY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .expect("vf-agent runs");
        assert!(status.success(), "vf-agent failed against {url}");
    }

    /// (c) The platform floor: the agent's POST through a Worker into a bare DO that pipes it, unparsed, to a
    /// consumer's streaming GET through the same Worker. (c′) with `stored`: the DO commits each chunk (one
    /// INSERT) before its bytes may leave.
    pub async fn floor_path(&self, spec: &str, stored: bool) -> Recorder {
        let channel = vf_e2e::client::uuid_like();
        let cpu = self.relay.workerd.cpu_us();
        let mut response = self
            .user
            .http
            .get(format!("{}/consume?ch={channel}", self.relay.workerd.base))
            .send()
            .await
            .expect("GET /consume");
        assert_eq!(response.status().as_u16(), 200, "consume");
        let store = if stored { "&store=1" } else { "" };
        let url = format!("{}/produce?ch={channel}{store}", self.relay.workerd.base);
        let producer = self.agent(&url, spec);
        let consumer = async {
            let mut recorder = Recorder::default();
            while let Some(chunk) = response.chunk().await.expect("the relay stream reads") {
                recorder.chunk(&chunk, now_us());
            }
            recorder
        };
        let ((), mut recorder) = tokio::join!(producer, consumer);
        assert!(recorder.terminal, "the relay stream ended without done");
        recorder.workerd_cpu_us = self.relay.workerd.cpu_us() - cpu;
        recorder
    }

    /// (d) No platform at all: the agent's POST straight into the bench's own loopback server.
    pub async fn loopback_path(&mut self, spec: &str) -> Recorder {
        let url = self.loopback.url.clone();
        self.agent(&url, spec).await;
        let recorder = self.loopback.next_run().await;
        assert!(recorder.terminal, "the loopback POST ended without done");
        recorder
    }

    /// `GET /api/v15/sessions/{id}/events?after=N` to its end.
    pub async fn replay(&self, session: &str, after: u64) -> Replay {
        let sent = now_us();
        let mut response = self
            .user
            .http
            .get(format!(
                "{}/api/v15/sessions/{session}/events?after={after}",
                self.app.base
            ))
            .header("Cookie", self.cookie())
            .send()
            .await
            .expect("GET events");
        assert_eq!(response.status().as_u16(), 200, "events");
        let mut replay = Replay {
            first_byte_us: 0,
            last_byte_us: 0,
            lines: 0,
        };
        while let Some(chunk) = response.chunk().await.expect("the replay reads") {
            if replay.lines == 0 {
                replay.first_byte_us = now_us() - sent;
            }
            replay.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        replay.last_byte_us = now_us() - sent;
        replay
    }
}
