//! Where `vf-agent`'s lines go: one long-lived chunked POST to the callback, or stdout.
//!
//! Both get the same lines, numbered by the same [`Output`].

use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use futures::StreamExt as _;
use tokio::time::Instant;
use vf_protocol::api::CallbackReceipt;
use vf_protocol::{AgentLine, Event};

use crate::Error;

/// Lines in flight to the callback before `write` waits: enough to ride out a slow moment, bounded so that a
/// stuck callback slows the agent down instead of growing memory.
const CALLBACK_QUEUE: usize = 256;

pub enum Sink {
    Stdout(tokio::io::Stdout),
    Callback(Callback),
}

/// A connection that lasted this long worked, whatever happens to it next.
const STABLE_CONNECTION: Duration = Duration::from_secs(5);
/// Lines kept for resending after a reconnect; past this the agent stops journaling and cannot resume.
const MAX_JOURNAL_BYTES: usize = 256 * 1024 * 1024;

/// One long-lived chunked POST per connection. The request runs in its own task; its body is whatever the channel
/// yields: a line leaves as soon as it is written, as its own chunk, and lines that queued up while the connection
/// was busy (a burst) leave together, as one chunk. The DO pays per chunk (a read, a transaction), not per line.
///
/// Every numbered line is also kept in a journal. When the connection breaks, the agent opens a new POST and
/// resends the journal from the start: the DO drops every line whose `aseq` it already stored, so nothing is lost
/// and nothing is stored twice, even when the DO restarted in between.
pub struct Callback {
    url: String,
    jwt: String,
    client: reqwest::Client,
    body: mpsc::Sender<Bytes>,
    /// The current request; taken once its outcome has been read.
    response: Option<JoinHandle<reqwest::Result<reqwest::Response>>>,
    journal: Vec<Bytes>,
    journal_bytes: usize,
    /// How long a broken connection is retried before the agent gives up.
    reconnect_window: Duration,
    /// When the current connection was opened, and since when the callback has been failing (None: it works).
    opened_at: Instant,
    lost_since: Option<Instant>,
}

impl Callback {
    fn open(&mut self) {
        let (body, response) = post(&self.client, &self.url, &self.jwt);
        self.body = body;
        self.response = Some(response);
        self.opened_at = Instant::now();
    }

    async fn write(&mut self, line: Bytes, numbered: bool) -> Result<(), Error> {
        if numbered && self.journal_bytes + line.len() <= MAX_JOURNAL_BYTES {
            self.journal_bytes += line.len();
            self.journal.push(line.clone());
        }
        if self.body.send(line).await.is_ok() {
            return Ok(());
        }
        // The receiver is gone: the request ended. Why decides whether to resume.
        match self.outcome().await? {
            Ok(response) => Err(final_answer(&response)),
            Err(e) => self.resume(e).await,
        }
    }

    /// Ends the body and waits for the receipt, resuming first if the connection broke on the way.
    async fn finish(mut self) -> Result<(), Error> {
        loop {
            self.body = mpsc::channel(1).0;
            match self.outcome().await? {
                Ok(response) if response.status().is_success() => {
                    let status = response.status();
                    let body = response.bytes().await.unwrap_or_default();
                    match serde_json::from_slice::<CallbackReceipt>(&body) {
                        Ok(receipt) => eprintln!(
                            "vf-agent: callback stored {} lines (terminal: {})",
                            receipt.stored, receipt.terminal
                        ),
                        Err(_) => {
                            eprintln!("vf-agent: callback answered {status} without a receipt")
                        }
                    }
                    return Ok(());
                }
                Ok(response) => return Err(Error::CallbackStatus(response.status())),
                Err(e) => self.resume(e).await?,
            }
        }
    }

    /// The current request's end: an HTTP answer, or the transport error that broke it.
    async fn outcome(&mut self) -> Result<reqwest::Result<reqwest::Response>, Error> {
        let response = self.response.take().ok_or(Error::CallbackClosed)?;
        Ok(response.await.map_err(std::io::Error::other)?)
    }

    /// Reopens the callback after a transport failure and resends the journal, with backoff, for up to
    /// `reconnect_window`. An HTTP answer on the way (the DO ended the execution, or refused the token) is final.
    async fn resume(&mut self, error: reqwest::Error) -> Result<(), Error> {
        // A connection that held for a while counts as having worked: the window starts again. Lines queued
        // into a request prove nothing (they wait in the channel), so time is the only evidence there is.
        if self.opened_at.elapsed() > STABLE_CONNECTION {
            self.lost_since = None;
        }
        let lost_since = *self.lost_since.get_or_insert_with(Instant::now);
        let mut delay = Duration::from_millis(250);
        let mut error = Error::from(error);
        loop {
            eprintln!("vf-agent: callback connection lost ({error}); reconnecting");
            if lost_since.elapsed() + delay > self.reconnect_window {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(4));
            self.open();
            let mut resent = 0;
            for line in &self.journal {
                if self.body.send(line.clone()).await.is_err() {
                    break;
                }
                resent += 1;
            }
            if resent == self.journal.len() {
                eprintln!("vf-agent: callback reopened; resent {resent} lines");
                return Ok(());
            }
            match self.outcome().await? {
                Ok(response) => return Err(final_answer(&response)),
                Err(e) => error = Error::from(e),
            }
        }
    }
}

/// An HTTP answer that arrived while lines were still being written: the execution is over for the DO.
fn final_answer(response: &reqwest::Response) -> Error {
    if response.status().is_success() {
        Error::CallbackClosed
    } else {
        Error::CallbackStatus(response.status())
    }
}

fn post(
    client: &reqwest::Client,
    url: &str,
    jwt: &str,
) -> (
    mpsc::Sender<Bytes>,
    JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (body, lines) = mpsc::channel::<Bytes>(CALLBACK_QUEUE);
    let stream = tokio_stream::wrappers::ReceiverStream::new(lines)
        .ready_chunks(CALLBACK_QUEUE)
        .map(|mut ready| match ready.len() {
            1 => Ok::<_, std::io::Error>(ready.pop().unwrap_or_default()),
            _ => Ok(Bytes::from(ready.concat())),
        });
    let request = client
        .post(url)
        .bearer_auth(jwt)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(stream));
    (body, tokio::spawn(request.send()))
}

impl Sink {
    pub fn stdout() -> Self {
        Sink::Stdout(tokio::io::stdout())
    }

    /// Opens the POST to `url`; `jwt` goes in the Authorization header and nowhere else.
    pub fn callback(url: &str, jwt: &str, reconnect_window: Duration) -> Result<Self, Error> {
        let client = reqwest::Client::builder().build()?;
        let (body, response) = post(&client, url, jwt);
        Ok(Sink::Callback(Callback {
            url: url.to_string(),
            jwt: jwt.to_string(),
            client,
            body,
            response: Some(response),
            journal: Vec::new(),
            journal_bytes: 0,
            reconnect_window,
            opened_at: Instant::now(),
            lost_since: None,
        }))
    }

    async fn write(&mut self, line: Vec<u8>, numbered: bool) -> Result<(), Error> {
        match self {
            Sink::Stdout(stdout) => {
                stdout.write_all(&line).await?;
                stdout.flush().await?;
                Ok(())
            }
            Sink::Callback(callback) => callback.write(line.into(), numbered).await,
        }
    }

    /// Ends the output: for the callback, ends the body and waits for the receipt; a non-2xx answer is an error.
    async fn close(self) -> Result<(), Error> {
        match self {
            Sink::Stdout(mut stdout) => Ok(stdout.flush().await?),
            Sink::Callback(callback) => callback.finish().await,
        }
    }
}

/// The agent's output: numbers events (`aseq` 1, 2, 3…; heartbeats carry none) and lets exactly one terminal
/// event through: after `done` or `error`, nothing more is written.
pub struct Output {
    sink: Sink,
    aseq: u64,
    finished: bool,
    last_write: Instant,
}

impl Output {
    pub fn new(sink: Sink) -> Self {
        Output {
            sink,
            aseq: 0,
            finished: false,
            last_write: Instant::now(),
        }
    }

    pub async fn emit(&mut self, event: Event) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        let aseq = if matches!(event, Event::Heartbeat) {
            None
        } else {
            self.aseq += 1;
            Some(self.aseq)
        };
        self.finished = event.is_terminal();
        self.last_write = Instant::now();
        self.sink
            .write(AgentLine { aseq, event }.to_line(), aseq.is_some())
            .await
    }

    /// Whether the terminal event has been written.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// When the last line left: heartbeats fill silences, measured from here.
    pub fn last_write(&self) -> Instant {
        self.last_write
    }

    pub async fn close(self) -> Result<(), Error> {
        self.sink.close().await
    }
}
