//! A test client of the VaporForge HTTP API: one signed-in user, and NDJSON streams read line by line with the
//! time each line arrived.

use std::time::Instant;

use serde_json::{json, Value};
use vf_protocol::api::SessionRecord;
use vf_protocol::{Envelope, EnvelopeDecoder};

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

/// A line of a stream and when it arrived.
#[derive(Debug, Clone)]
pub struct Line {
    pub envelope: Envelope,
    pub at: Instant,
}

/// An open NDJSON response.
pub struct EventStream {
    response: reqwest::Response,
    decoder: EnvelopeDecoder,
    pending: std::collections::VecDeque<Line>,
    done: bool,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> Self {
        EventStream {
            response,
            decoder: EnvelopeDecoder::default(),
            pending: Default::default(),
            done: false,
        }
    }

    /// The next line, or None at the end of the stream.
    pub async fn next(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.done {
                return None;
            }
            let chunk = self.response.chunk().await.expect("stream reads");
            let at = Instant::now();
            let lines = match chunk {
                Some(bytes) => self.decoder.push(&bytes),
                None => {
                    self.done = true;
                    self.decoder.finish()
                }
            };
            for line in lines {
                let envelope = line.unwrap_or_else(|e| panic!("a stream line: {e}"));
                self.pending.push_back(Line { envelope, at });
            }
        }
    }

    /// Every remaining line, heartbeats left out.
    pub async fn collect(mut self) -> Vec<Line> {
        let mut lines = Vec::new();
        while let Some(line) = self.next().await {
            if !matches!(line.envelope.event, vf_protocol::Event::Heartbeat) {
                lines.push(line);
            }
        }
        lines
    }

    pub fn status(&self) -> u16 {
        self.response.status().as_u16()
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        Client {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            base: base.to_string(),
            cookie: None,
        }
    }

    /// A new user, signed in with a fresh fake Claude token.
    pub async fn signed_in(base: &str) -> Self {
        let mut client = Client::new(base);
        let token = format!("sk-ant-oat01-test-{}", uuid_like());
        let response = client
            .post("/api/auth/login", json!({ "token": token }))
            .await;
        let status = response.status().as_u16();
        if status != 200 {
            panic!(
                "login answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        client.cookie = Some(cookie);
        client
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            builder = builder.header("Cookie", cookie);
        }
        builder
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn create_session(&self) -> SessionRecord {
        let response = self.post("/api/sessions", json!({ "name": "e2e" })).await;
        assert_eq!(response.status().as_u16(), 201, "create session");
        response.json().await.expect("a session record")
    }

    /// `POST /api/v15/chat`, returning the open stream (the status is checked by the caller).
    pub async fn chat(&self, session_id: &str, prompt: &str) -> EventStream {
        EventStream::new(
            self.post(
                "/api/v15/chat",
                json!({ "sessionId": session_id, "prompt": prompt }),
            )
            .await,
        )
    }

    /// `GET /api/v15/sessions/{id}/events?after=N`.
    pub async fn events(&self, session_id: &str, after: u64) -> EventStream {
        EventStream::new(
            self.get(&format!(
                "/api/v15/sessions/{session_id}/events?after={after}"
            ))
            .await,
        )
    }
}

/// A random-enough id for test data.
pub fn uuid_like() -> String {
    use std::io::Read;
    let mut buf = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
