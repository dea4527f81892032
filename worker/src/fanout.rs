//! Live subscribers of a session: every open chat response and resumed stream, fed from one place.
//!
//! Each subscriber is a bounded channel. A subscriber that cannot keep up (its queue is full) or that went away
//! (its receiver was dropped when the client disconnected) is removed on the next publish, without disturbing
//! the others or the execution; a lagging client reconnects with `after=<last seq>` and loses nothing.
//! Heartbeats go through `publish` too (the DO's alarm sends them), which is also how a subscriber whose client
//! vanished without a word is noticed and dropped.

use std::cell::RefCell;

use futures::channel::mpsc;

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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn every_subscriber_gets_every_chunk_in_order() {
        let subscribers = Subscribers::default();
        let a = subscribers.subscribe();
        let b = subscribers.subscribe();
        subscribers.publish(b"one\n");
        subscribers.publish(b"two\n");
        subscribers.close_all();
        for rx in [a, b] {
            let got: Vec<Vec<u8>> = futures::executor::block_on(rx.collect());
            assert_eq!(got, vec![b"one\n".to_vec(), b"two\n".to_vec()]);
        }
    }

    #[test]
    fn a_gone_subscriber_is_dropped_and_the_others_go_on() {
        let subscribers = Subscribers::default();
        let gone = subscribers.subscribe();
        let stays = subscribers.subscribe();
        drop(gone);
        subscribers.publish(b"x\n");
        assert_eq!(subscribers.senders.borrow().len(), 1);
        subscribers.close_all();
        assert_eq!(
            futures::executor::block_on(stays.collect::<Vec<_>>()).len(),
            1
        );
    }

    #[test]
    fn a_lagging_subscriber_is_cut_off_instead_of_growing_memory() {
        let subscribers = Subscribers::default();
        let mut lagging = subscribers.subscribe();
        let mut reading = subscribers.subscribe();
        for i in 0..SUBSCRIBER_QUEUE * 2 {
            subscribers.publish(format!("{i}\n").as_bytes());
            // One subscriber keeps up.
            assert!(reading.try_recv().is_ok());
        }
        assert_eq!(
            subscribers.senders.borrow().len(),
            1,
            "the lagging one was dropped"
        );
        let mut queued = 0;
        while lagging.try_recv().is_ok() {
            queued += 1;
        }
        assert!(
            queued <= SUBSCRIBER_QUEUE + 1,
            "its queue stayed bounded: {queued}"
        );
        // Its stream ends, so its client reconnects with `after`.
        assert_eq!(futures::executor::block_on(lagging.next()), None);
    }
}
