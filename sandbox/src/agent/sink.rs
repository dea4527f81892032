//! Where `vf-agent`'s lines go: one long-lived chunked POST to the callback, or stdout.
//!
//! Both get the same lines, numbered by the same [`Output`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use vf_protocol::api::{CallbackReceipt, StreamMark};
use vf_protocol::backoff::Backoff;
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
/// Unacknowledged lines kept for resending; when the journal is full the agent asks the DO what it stored and
/// drops that, and only if the DO is that far behind does it stop journaling (and can then no longer resume).
const MAX_JOURNAL_BYTES: usize = 64 * 1024 * 1024;
/// The waits between two reconnection attempts: 250 ms doubling to 4 s, jittered; the attempts are bounded by
/// the reconnect window, not by a count.
const RETRY: Backoff = Backoff {
    initial_ms: 250,
    max_ms: 4_000,
    max_attempts: u32::MAX,
};

/// The numbered lines the DO has not acknowledged yet, for resending after a reconnect.
#[derive(Debug, Default)]
pub struct Journal {
    lines: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The highest `aseq` written.
    written: u64,
    /// The first line that did not fit (every later one is missing too): past it the journal cannot resume.
    overflow_at: Option<u64>,
}

impl Journal {
    /// Keeps line `aseq`; false (and nothing kept, now or later) when it does not fit under `max_bytes`.
    fn push(&mut self, aseq: u64, line: Bytes, max_bytes: usize) -> bool {
        self.written = self.written.max(aseq);
        if self.overflow_at.is_some() || self.bytes + line.len() > max_bytes {
            self.overflow_at.get_or_insert(aseq);
            return false;
        }
        self.bytes += line.len();
        self.lines.push_back((aseq, line));
        true
    }

    /// The DO stored every line up to `mark`: they are dropped. Once it has every line written, an overflow
    /// no longer matters.
    fn ack(&mut self, mark: u64) {
        while let Some((aseq, line)) = self.lines.front() {
            if *aseq > mark {
                break;
            }
            self.bytes -= line.len();
            self.lines.pop_front();
        }
        if mark >= self.written {
            self.overflow_at = None;
        }
    }

    /// The lines to resend after the DO's `mark`, or None when some of them are no longer kept.
    fn resend_after(&mut self, mark: u64) -> Option<Vec<Bytes>> {
        self.ack(mark);
        let complete = self.overflow_at.is_none()
            && self.lines.front().is_none_or(|(aseq, _)| *aseq == mark + 1);
        complete.then(|| self.lines.iter().map(|(_, line)| line.clone()).collect())
    }

    /// Whether a line of `len` bytes fits.
    fn has_room(&self, len: usize, max_bytes: usize) -> bool {
        self.bytes + len <= max_bytes
    }
}

/// One long-lived chunked POST per connection. The request runs in its own task; its body is whatever the channel
/// yields: a line leaves as soon as it is written, as its own chunk, and lines that queued up while the connection
/// was busy (a burst) leave together, as one chunk. The DO pays per chunk (a read, a transaction), not per line.
///
/// Every numbered line is also kept in a [`Journal`] until the DO acknowledges it. The agent asks the DO for its
/// mark (`GET` on the same URL, [`StreamMark`]) every half stall window while it writes: that trims the journal
/// and tells whether the connection still delivers. A connection whose lines stopped arriving (the DO heard
/// nothing for a stall window, or a write or a mark request hung that long) is abandoned like a broken one:
/// the agent drops it, reads the mark, opens a new POST and resends only what the DO lacks. The DO stores each
/// line once whatever arrives late on the abandoned connection (see `vf_protocol::ingest`), so nothing is lost
/// and nothing is stored twice, even when the DO restarted in between. At most one connection sends at a time.
pub struct Callback {
    url: String,
    jwt: String,
    client: reqwest::Client,
    body: mpsc::Sender<Bytes>,
    /// The current request; taken once its outcome has been read.
    response: Option<JoinHandle<reqwest::Result<reqwest::Response>>>,
    journal: Journal,
    /// How long a broken connection is retried before the agent gives up.
    reconnect_window: Duration,
    /// How long the DO may go without hearing from a connection that writes before it counts as stalled.
    stall_after: Duration,
    /// When the current connection was opened, and since when the callback has been failing (None: it works).
    opened_at: Instant,
    lost_since: Option<Instant>,
    /// The mark request in flight, and when the last one started.
    probe: Option<JoinHandle<Result<StreamMark, Error>>>,
    probe_started: Instant,
}

impl Callback {
    fn open(&mut self) {
        if let Some(old) = self.response.take() {
            // Never two connections sending at once: whatever the old one still holds is the DO's to drop.
            old.abort();
        }
        let (body, response) = post(&self.client, &self.url, &self.jwt);
        self.body = body;
        self.response = Some(response);
        self.opened_at = Instant::now();
    }

    async fn write(&mut self, line: Bytes, aseq: Option<u64>) -> Result<(), Error> {
        if let Some(aseq) = aseq {
            if !self.journal.has_room(line.len(), MAX_JOURNAL_BYTES) {
                // Full: what the DO already has makes room.
                if let Ok(Ok(mark)) = timeout(self.stall_after, self.mark()).await {
                    self.journal.ack(mark.last_aseq);
                }
            }
            self.journal.push(aseq, line.clone(), MAX_JOURNAL_BYTES);
        }
        if let Some(reason) = self.check_progress().await {
            return self.reconnect(reason).await;
        }
        match timeout(self.stall_after, self.body.send(line)).await {
            Ok(Ok(())) => Ok(()),
            // The receiver is gone: the request ended. Why decides whether to resume.
            Ok(Err(_)) => match self.outcome().await? {
                Ok(response) if response.status() == reqwest::StatusCode::CONFLICT => {
                    self.resume(Error::CallbackStatus(response.status())).await
                }
                Ok(response) => Err(final_answer(&response)),
                Err(e) => self.resume(e.into()).await,
            },
            Err(_) => self.reconnect(Error::CallbackStalled).await,
        }
    }

    /// Reads the finished mark request, if any, and starts the next one when it is due. Returns why the
    /// connection counts as stalled, if it does.
    async fn check_progress(&mut self) -> Option<Error> {
        let due = self.probe_started.elapsed() >= self.stall_after / 2;
        match self.probe.take() {
            Some(probe) if probe.is_finished() => {
                if let Ok(Ok(mark)) = probe.await {
                    self.journal.ack(mark.last_aseq);
                    let idle = Duration::from_millis(mark.idle_ms);
                    if idle > self.stall_after && self.opened_at.elapsed() > self.stall_after {
                        return Some(Error::CallbackStalled);
                    }
                }
            }
            Some(probe) if self.probe_started.elapsed() > self.stall_after => {
                probe.abort();
                return Some(Error::CallbackStalled);
            }
            Some(probe) => {
                self.probe = Some(probe);
                return None;
            }
            None => {}
        }
        // Asked even when every line is acknowledged: a stalled connection also holds back the heartbeats.
        if due {
            self.probe_started = Instant::now();
            let (client, url, jwt) = (self.client.clone(), self.url.clone(), self.jwt.clone());
            self.probe = Some(tokio::spawn(async move { mark(&client, &url, &jwt).await }));
        }
        None
    }

    /// Ends the body and waits for the receipt, resuming first if the connection broke or stalled on the way.
    async fn finish(mut self) -> Result<(), Error> {
        loop {
            self.body = mpsc::channel(1).0;
            let Some(response) = self.response.as_mut() else {
                return Err(Error::CallbackClosed);
            };
            let outcome = match timeout(self.stall_after, response).await {
                Ok(outcome) => {
                    self.response = None;
                    outcome.map_err(std::io::Error::other)?
                }
                Err(_) => {
                    // No answer yet: the DO may still be storing a burst, or the connection stalled.
                    match timeout(self.stall_after, self.mark()).await {
                        Ok(Ok(mark)) if mark.last_aseq >= self.journal.written => {
                            eprintln!(
                                "vf-agent: the DO has every line; not waiting for its receipt"
                            );
                            return Ok(());
                        }
                        Ok(Ok(mark)) if Duration::from_millis(mark.idle_ms) < self.stall_after => {
                            continue
                        }
                        Ok(Err(e @ Error::CallbackStatus(_))) => return Err(e),
                        _ => {
                            self.resume(Error::CallbackStalled).await?;
                            continue;
                        }
                    }
                }
            };
            match outcome {
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
                Ok(response) if response.status() == reqwest::StatusCode::CONFLICT => {
                    self.resume(Error::CallbackStatus(response.status()))
                        .await?
                }
                Ok(response) => return Err(Error::CallbackStatus(response.status())),
                Err(e) => self.resume(e.into()).await?,
            }
        }
    }

    /// The current request's end: an HTTP answer, or the transport error that broke it.
    async fn outcome(&mut self) -> Result<reqwest::Result<reqwest::Response>, Error> {
        let response = self.response.take().ok_or(Error::CallbackClosed)?;
        Ok(response.await.map_err(std::io::Error::other)?)
    }

    /// What the DO has stored of this execution.
    async fn mark(&self) -> Result<StreamMark, Error> {
        mark(&self.client, &self.url, &self.jwt).await
    }

    /// Drops a stalled connection and resumes on a new one.
    async fn reconnect(&mut self, reason: Error) -> Result<(), Error> {
        if let Some(old) = self.response.take() {
            old.abort();
        }
        self.resume(reason).await
    }

    /// Reopens the callback after a failure and resends what the DO lacks, with jittered backoff, for up to
    /// `reconnect_window`. An HTTP refusal on the way (the execution ended, the token was refused) is final.
    async fn resume(&mut self, mut error: Error) -> Result<(), Error> {
        // A connection that held for a while counts as having worked: the window starts again. Lines queued
        // into a request prove nothing (they wait in the channel), so time is the only evidence there is.
        if self.opened_at.elapsed() > STABLE_CONNECTION {
            self.lost_since = None;
        }
        let lost_since = *self.lost_since.get_or_insert_with(Instant::now);
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
        let mut attempt = 0;
        loop {
            eprintln!("vf-agent: callback connection lost ({error}); reconnecting");
            attempt += 1;
            let delay = Duration::from_millis(RETRY.delay_ms(attempt, fastrand::f64()).into());
            if lost_since.elapsed() + delay > self.reconnect_window {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
            let mark = match timeout(self.stall_after, self.mark()).await {
                Ok(Ok(mark)) => mark,
                Ok(Err(e @ Error::CallbackStatus(_))) => return Err(e),
                Ok(Err(e)) => {
                    error = e;
                    continue;
                }
                Err(_) => {
                    error = Error::CallbackStalled;
                    continue;
                }
            };
            let Some(lines) = self.journal.resend_after(mark.last_aseq) else {
                return Err(Error::JournalIncomplete(mark.last_aseq));
            };
            self.open();
            let mut resent = 0;
            for line in &lines {
                if self.body.send(line.clone()).await.is_err() {
                    break;
                }
                resent += 1;
            }
            if resent == lines.len() {
                eprintln!(
                    "vf-agent: callback reopened after aseq {}; resent {resent} lines",
                    mark.last_aseq
                );
                self.probe_started = Instant::now();
                return Ok(());
            }
            match self.outcome().await? {
                Ok(response) if response.status() == reqwest::StatusCode::CONFLICT => {
                    error = Error::CallbackStatus(response.status())
                }
                Ok(response) => return Err(final_answer(&response)),
                Err(e) => error = e.into(),
            }
        }
    }
}

/// `GET` on the callback URL with the execution token: the DO's [`StreamMark`]. A 4xx is final (the execution
/// is over, or the token is refused): [`Error::CallbackStatus`].
async fn mark(client: &reqwest::Client, url: &str, jwt: &str) -> Result<StreamMark, Error> {
    let response = client.get(url).bearer_auth(jwt).send().await?;
    let status = response.status();
    if status.is_client_error() {
        return Err(Error::CallbackStatus(status));
    }
    if !status.is_success() {
        return Err(Error::Callback(format!(
            "the mark request answered {status}"
        )));
    }
    let body = response.bytes().await?;
    serde_json::from_slice(&body).map_err(|e| Error::Callback(format!("not a stream mark: {e}")))
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
    pub fn callback(
        url: &str,
        jwt: &str,
        reconnect_window: Duration,
        stall_after: Duration,
    ) -> Result<Self, Error> {
        let client = reqwest::Client::builder().build()?;
        let (body, response) = post(&client, url, jwt);
        Ok(Sink::Callback(Callback {
            url: url.to_string(),
            jwt: jwt.to_string(),
            client,
            body,
            response: Some(response),
            journal: Journal::default(),
            reconnect_window,
            stall_after,
            opened_at: Instant::now(),
            lost_since: None,
            probe: None,
            probe_started: Instant::now(),
        }))
    }

    async fn write(&mut self, line: Vec<u8>, aseq: Option<u64>) -> Result<(), Error> {
        match self {
            Sink::Stdout(stdout) => {
                stdout.write_all(&line).await?;
                stdout.flush().await?;
                Ok(())
            }
            Sink::Callback(callback) => callback.write(line.into(), aseq).await,
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
            .write(AgentLine { aseq, event }.to_line(), aseq)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64) -> Bytes {
        Bytes::from(format!("line {n}\n"))
    }

    #[test]
    fn acknowledged_lines_leave_the_journal() {
        let mut journal = Journal::default();
        for n in 1..=5 {
            assert!(journal.push(n, line(n), 1024));
        }
        journal.ack(3);
        assert_eq!(journal.resend_after(3), Some(vec![line(4), line(5)]));
        journal.ack(5);
        assert_eq!((journal.lines.len(), journal.bytes), (0, 0));
        assert_eq!(journal.resend_after(5), Some(vec![]));
    }

    #[test]
    fn a_mark_behind_what_was_acknowledged_resends_only_what_is_kept() {
        let mut journal = Journal::default();
        for n in 1..=4 {
            journal.push(n, line(n), 1024);
        }
        journal.ack(2);
        // A mark can never go back (the DO's is durable), but if it did, lines already dropped are missing.
        assert_eq!(journal.resend_after(1), None);
        assert_eq!(journal.resend_after(2), Some(vec![line(3), line(4)]));
    }

    #[test]
    fn an_overflowed_journal_says_it_cannot_resume_until_the_do_has_everything() {
        let mut journal = Journal::default();
        let size = line(1).len();
        assert!(journal.push(1, line(1), size * 2));
        assert!(journal.push(2, line(2), size * 2));
        assert!(!journal.push(3, line(3), size * 2));
        // Once full, nothing more is kept, even if room appears: the lines after the first missing one would
        // leave a gap.
        journal.ack(1);
        assert!(!journal.push(4, line(4), size * 2));
        assert_eq!(journal.resend_after(1), None);
        // The DO got everything over the live connection: the journal is whole again.
        journal.ack(4);
        assert!(journal.push(5, line(5), size * 2));
        assert_eq!(journal.resend_after(4), Some(vec![line(5)]));
    }
}
