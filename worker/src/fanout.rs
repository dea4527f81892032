//! Live subscribers of a session: every open chat response and resumed stream, fed from one place.
//!
//! Each subscriber is a bounded channel. A subscriber that cannot keep up (its queue is full) or that went away
//! (its receiver was dropped when the client disconnected) is removed on the next publish, without disturbing
//! the others or the execution; a lagging client reconnects with `after=<last seq>` and loses nothing.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Future, Stream};

/// Chunks (not events) a subscriber may have queued: one chunk is one batch of lines.
pub const SUBSCRIBER_QUEUE: usize = 1024;

#[derive(Default)]
pub struct Subscribers {
    senders: RefCell<Vec<mpsc::Sender<Vec<u8>>>>,
}

impl Subscribers {
    /// Registers a new subscriber; it receives every chunk published from now on.
    pub fn subscribe(&self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.senders.borrow_mut().push(tx);
        rx
    }

    /// Sends one chunk of NDJSON lines to every subscriber, dropping the ones that are gone or full.
    pub fn publish(&self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.senders
            .borrow_mut()
            .retain_mut(|tx| tx.try_send(chunk.to_vec()).is_ok());
    }

    /// Ends every live stream (after a terminal event).
    pub fn close_all(&self) {
        self.senders.borrow_mut().clear();
    }
}

/// The heartbeat line.
pub fn heartbeat_line() -> Vec<u8> {
    vf_protocol::Event::Heartbeat.to_line()
}

/// Wraps a stream of chunks so that a heartbeat line goes out whenever it was silent for `interval`. The timer is
/// re-armed only when it fires, never per chunk, so a busy stream pays nothing for it.
pub struct WithHeartbeats<S> {
    inner: S,
    interval: Duration,
    timer: Pin<Box<worker::Delay>>,
    last_data_ms: f64,
}

impl<S> WithHeartbeats<S> {
    pub fn new(inner: S, interval: Duration) -> Self {
        WithHeartbeats {
            inner,
            interval,
            timer: Box::pin(worker::Delay::from(interval)),
            last_data_ms: js_sys::Date::now(),
        }
    }
}

impl<S: Stream<Item = Vec<u8>> + Unpin> Stream for WithHeartbeats<S> {
    type Item = Result<Vec<u8>, worker::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                this.last_data_ms = js_sys::Date::now();
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = js_sys::Date::now();
            let quiet = Duration::from_millis((now - this.last_data_ms).max(0.0) as u64);
            if quiet >= this.interval {
                this.last_data_ms = now;
                this.timer = Box::pin(worker::Delay::from(this.interval));
                return Poll::Ready(Some(Ok(heartbeat_line())));
            }
            this.timer = Box::pin(worker::Delay::from(this.interval - quiet));
        }
        Poll::Pending
    }
}
