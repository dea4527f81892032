//! A test client of the VaporForge HTTP API: one signed-in user, and NDJSON streams read line by line with the
//! time each line arrived.

use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use serde_json::{json, Value};
use vf_protocol::api::{SessionRecord, CLAUDE_TOKEN_PREFIX};
use vf_protocol::{Envelope, EnvelopeDecoder};

use crate::wait::until;

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
        self.try_next().await.expect("stream reads")
    }

    /// The next line, None at the end of the stream, or the error that broke the connection (the Worker was
    /// killed).
    pub async fn try_next(&mut self) -> Result<Option<Line>, reqwest::Error> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Ok(Some(line));
            }
            if self.done {
                return Ok(None);
            }
            let chunk = self.response.chunk().await?;
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
        Client::login(base).await.client
    }

    /// A new user's login, with what it handed out.
    pub async fn login(base: &str) -> Login {
        let token = format!("{CLAUDE_TOKEN_PREFIX}test-{}", uuid_like());
        Client::login_with(base, &token).await
    }

    /// A login with `claude_token` (a second login of the same user when the token was used before). Checks that
    /// the answer does not echo the token.
    pub async fn login_with(base: &str, claude_token: &str) -> Login {
        let mut client = Client::new(base);
        let response = client
            .post("/api/auth/login", json!({ "token": claude_token }))
            .await;
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "login answered {status}: {body}");
        assert!(
            !body.contains(claude_token),
            "the login answer echoes the Claude token: {body}"
        );
        let pair = set_cookie
            .split(';')
            .next()
            .expect("a session cookie")
            .to_string();
        let session_token = pair
            .strip_prefix("vf_session=")
            .unwrap_or_else(|| panic!("the vf_session cookie: {set_cookie}"))
            .to_string();
        client.cookie = Some(pair);
        Login {
            client,
            claude_token: claude_token.to_string(),
            set_cookie,
            session_token,
        }
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

    pub async fn patch(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .expect("PATCH")
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

    /// A whole turn: `chat`, which must answer 200, read to its end, which must be a terminal event.
    pub async fn turn(&self, session_id: &str, prompt: &str) -> Vec<Line> {
        let stream = self.chat(session_id, prompt).await;
        assert_eq!(stream.status(), 200, "chat {prompt:?}");
        let lines = stream.collect().await;
        assert!(
            lines.last().is_some_and(|l| l.envelope.event.is_terminal()),
            "the turn {prompt:?} ends with a terminal event: {:?}",
            lines.last()
        );
        lines
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

    /// The whole stored log of a session, heartbeats left out.
    pub async fn stored(&self, session_id: &str) -> Vec<Line> {
        self.events(session_id, 0).await.collect().await
    }

    /// The whole stored log, each event serialized, for before/after comparisons.
    pub async fn snapshot(&self, session_id: &str) -> Vec<String> {
        self.stored(session_id)
            .await
            .iter()
            .map(|l| serde_json::to_string(&l.envelope).expect("an envelope serializes"))
            .collect()
    }

    /// Waits until the session's log ends with a terminal event; returns the whole log.
    pub async fn wait_for_terminal(&self, session_id: &str) -> Vec<Line> {
        until(
            "a terminal event in the stored log",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || async {
                let lines = self.stored(session_id).await;
                let ended = lines.last().is_some_and(|l| l.envelope.event.is_terminal());
                ended.then_some(lines)
            },
        )
        .await
    }

    /// `POST /api/v15/sessions/{id}/cancel`, which must answer 200.
    pub async fn cancel(&self, session_id: &str) {
        let response = self
            .post(&format!("/api/v15/sessions/{session_id}/cancel"), json!({}))
            .await;
        assert_eq!(response.status().as_u16(), 200, "cancel");
    }
}

/// A signed-in user with what the login handed out: the Claude token and the raw cookie.
pub struct Login {
    pub client: Client,
    pub claude_token: String,
    /// The `Set-Cookie` header of the login.
    pub set_cookie: String,
    /// The session token (the cookie's value).
    pub session_token: String,
}

/// A header value from any bytes (non-ASCII included, as a hostile client would send them).
pub fn raw_header(value: &str) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes()).expect("no control characters")
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
