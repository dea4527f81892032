//! Where `vf-agent`'s lines go: one long-lived chunked POST to the callback, or stdout.
//!
//! Both get the same lines, numbered by the same [`Output`].

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;
use vf_protocol::api::CallbackReceipt;
use vf_protocol::{AgentLine, Event};

use crate::Error;

/// Lines in flight to the callback before `write` waits: enough to ride out a slow moment, bounded so that a
/// stuck callback slows the agent down instead of growing memory.
const CALLBACK_QUEUE: usize = 256;

pub enum Sink {
    Stdout(tokio::io::Stdout),
    /// The request runs in its own task from the start; its body is whatever the channel yields, one chunk per
    /// line, so each line leaves as soon as it is written.
    Callback {
        body: mpsc::Sender<Bytes>,
        response: JoinHandle<reqwest::Result<reqwest::Response>>,
    },
}

impl Sink {
    pub fn stdout() -> Self {
        Sink::Stdout(tokio::io::stdout())
    }

    /// Opens the POST to `url`; `jwt` goes in the Authorization header and nowhere else.
    pub fn callback(url: &str, jwt: &str) -> Result<Self, Error> {
        let (body, lines) = mpsc::channel::<Bytes>(CALLBACK_QUEUE);
        let stream =
            tokio_stream::wrappers::ReceiverStream::new(lines).map(Ok::<_, std::io::Error>);
        let request = reqwest::Client::builder()
            .build()?
            .post(url)
            .bearer_auth(jwt)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(reqwest::Body::wrap_stream(stream));
        Ok(Sink::Callback {
            body,
            response: tokio::spawn(request.send()),
        })
    }

    async fn write(&mut self, line: Vec<u8>) -> Result<(), Error> {
        match self {
            Sink::Stdout(stdout) => {
                stdout.write_all(&line).await?;
                stdout.flush().await?;
            }
            // The receiver only goes away when the request has ended; `close` reports why.
            Sink::Callback { body, .. } => body
                .send(line.into())
                .await
                .map_err(|_| Error::CallbackClosed)?,
        }
        Ok(())
    }

    /// Ends the output: for the callback, ends the body and waits for the receipt; a non-2xx answer is an error.
    async fn close(self) -> Result<(), Error> {
        match self {
            Sink::Stdout(mut stdout) => Ok(stdout.flush().await?),
            Sink::Callback { body, response } => {
                drop(body);
                let response = response.await.map_err(std::io::Error::other)??;
                let status = response.status();
                if !status.is_success() {
                    return Err(Error::CallbackStatus(status));
                }
                let body = response.bytes().await.unwrap_or_default();
                match serde_json::from_slice::<CallbackReceipt>(&body) {
                    Ok(receipt) => eprintln!(
                        "vf-agent: callback stored {} lines (terminal: {})",
                        receipt.stored, receipt.terminal
                    ),
                    Err(_) => eprintln!("vf-agent: callback answered {status} without a receipt"),
                }
                Ok(())
            }
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
        self.sink.write(AgentLine { aseq, event }.to_line()).await
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
