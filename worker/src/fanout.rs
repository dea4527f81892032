//! Live subscribers of a session: every open chat response and resumed stream, fed from one place.
//!
//! Each subscriber is a byte buffer that its response drains: a publish appends the new lines to every buffer,
//! and the response takes whatever has accumulated in one piece when it next reads. So a client that reads as
//! fast as lines come gets each publish as its own chunk, and one that falls behind for a moment (a burst, a
//! slow network) gets the backlog in a few large chunks instead of many small ones, with no per-chunk cost on
//! the way. A subscriber whose backlog passes [`SUBSCRIBER_BACKLOG_BYTES`] is cut off: its stream delivers what
//! is buffered (whole lines) and ends, and the client resumes with `after=<last seq>` and loses nothing. One
//! whose client went away (its response was dropped) is removed on the next publish. Heartbeats go through
//! `publish` too (the DO's alarm sends them), which is also how a vanished client is noticed.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::Stream;

/// Bytes a subscriber may have waiting before it is cut off: well over any burst a reading client lags by, and
/// small against the DO's 128 MB even with a few dozen watchers.
pub const SUBSCRIBER_BACKLOG_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Backlog {
    bytes: Vec<u8>,
    waker: Option<Waker>,
    closed: bool,
}

impl Backlog {
    fn close(&mut self) {
        self.closed = true;
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// One subscriber's side: a stream of chunks of whole NDJSON lines.
pub struct Subscription {
    backlog: Rc<RefCell<Backlog>>,
}

impl Stream for Subscription {
    type Item = Vec<u8>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let mut backlog = self.backlog.borrow_mut();
        if !backlog.bytes.is_empty() {
            return Poll::Ready(Some(std::mem::take(&mut backlog.bytes)));
        }
        if backlog.closed {
            return Poll::Ready(None);
        }
        backlog.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[derive(Default)]
pub struct Subscribers {
    backlogs: RefCell<Vec<Rc<RefCell<Backlog>>>>,
}

impl Subscribers {
    /// Registers a new subscriber; it receives every chunk published from now on.
    pub fn subscribe(&self) -> Subscription {
        let backlog = Rc::new(RefCell::new(Backlog::default()));
        self.backlogs.borrow_mut().push(backlog.clone());
        Subscription { backlog }
    }

    /// Sends one chunk of NDJSON lines to every subscriber, dropping the ones that are gone or too far behind.
    /// The chunk is copied once per subscriber but the last, which takes it as it is when it has no backlog.
    pub fn publish(&self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        let mut backlogs = self.backlogs.borrow_mut();
        // A subscription dropped by its response leaves this list as the only owner.
        backlogs.retain(|b| Rc::strong_count(b) > 1);
        let mut chunk = Some(chunk);
        let count = backlogs.len();
        let mut index = 0;
        backlogs.retain(|backlog| {
            index += 1;
            let mut backlog = backlog.borrow_mut();
            let bytes = chunk.as_deref().unwrap_or_default();
            if backlog.bytes.len() + bytes.len() > SUBSCRIBER_BACKLOG_BYTES {
                backlog.close();
                return false;
            }
            if index == count && backlog.bytes.is_empty() {
                backlog.bytes = chunk.take().unwrap_or_default();
            } else {
                backlog.bytes.extend_from_slice(bytes);
            }
            backlog.wake();
            true
        });
    }

    /// Whether no subscriber is left (the ones whose response was dropped do not count).
    pub fn is_empty(&self) -> bool {
        let mut backlogs = self.backlogs.borrow_mut();
        backlogs.retain(|b| Rc::strong_count(b) > 1);
        backlogs.is_empty()
    }

    /// Ends every live stream (after a terminal event); each still delivers what it has buffered.
    pub fn close_all(&self) {
        for backlog in self.backlogs.borrow_mut().drain(..) {
            backlog.borrow_mut().close();
        }
    }
}

impl Drop for Subscribers {
    /// A DO instance going away ends its streams rather than leaving them open forever.
    fn drop(&mut self) {
        self.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn drain(subscription: Subscription) -> Vec<u8> {
        futures::executor::block_on(subscription.collect::<Vec<_>>()).concat()
    }

    #[test]
    fn every_subscriber_gets_every_chunk_in_order() {
        let subscribers = Subscribers::default();
        let a = subscribers.subscribe();
        let b = subscribers.subscribe();
        subscribers.publish(b"one\n".to_vec());
        subscribers.publish(b"two\n".to_vec());
        subscribers.close_all();
        for subscription in [a, b] {
            assert_eq!(drain(subscription), b"one\ntwo\n");
        }
    }

    #[test]
    fn a_reading_subscriber_gets_each_publish_as_it_happens() {
        let subscribers = Subscribers::default();
        let mut reading = subscribers.subscribe();
        for i in 0..3 {
            subscribers.publish(format!("{i}\n").into_bytes());
            let chunk = futures::executor::block_on(reading.next());
            assert_eq!(chunk, Some(format!("{i}\n").into_bytes()));
        }
    }

    #[test]
    fn a_backlog_arrives_as_one_chunk() {
        let subscribers = Subscribers::default();
        let mut behind = subscribers.subscribe();
        for i in 0..1000 {
            subscribers.publish(format!("{i}\n").into_bytes());
        }
        let chunk = futures::executor::block_on(behind.next()).unwrap();
        assert_eq!(chunk.iter().filter(|&&b| b == b'\n').count(), 1000);
        assert!(chunk.starts_with(b"0\n1\n") && chunk.ends_with(b"999\n"));
    }

    #[test]
    fn a_gone_subscriber_is_dropped_and_the_others_go_on() {
        let subscribers = Subscribers::default();
        let gone = subscribers.subscribe();
        let stays = subscribers.subscribe();
        drop(gone);
        subscribers.publish(b"x\n".to_vec());
        assert_eq!(subscribers.backlogs.borrow().len(), 1);
        subscribers.close_all();
        assert_eq!(drain(stays), b"x\n");
    }

    #[test]
    fn a_lagging_subscriber_is_cut_off_instead_of_growing_memory() {
        let subscribers = Subscribers::default();
        let lagging = subscribers.subscribe();
        let mut reading = subscribers.subscribe();
        let line = vec![b'x'; 1023]
            .into_iter()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        let lines = 2 * SUBSCRIBER_BACKLOG_BYTES / line.len();
        for _ in 0..lines {
            subscribers.publish(line.clone());
            // One subscriber keeps up.
            assert!(futures::executor::block_on(reading.next()).is_some());
        }
        assert_eq!(
            subscribers.backlogs.borrow().len(),
            1,
            "the lagging one was dropped"
        );
        // It delivers the whole lines it held, then ends, so its client resumes with `after`.
        let held = drain(lagging);
        assert!(held.len() <= SUBSCRIBER_BACKLOG_BYTES, "{}", held.len());
        assert_eq!(held.len() % line.len(), 0);
        assert!(!held.is_empty());
    }

    #[test]
    fn dropping_the_subscribers_ends_the_streams() {
        let subscribers = Subscribers::default();
        let subscription = subscribers.subscribe();
        subscribers.publish(b"last\n".to_vec());
        drop(subscribers);
        assert_eq!(drain(subscription), b"last\n");
    }
}
