//! Waiting on facts: a test polls for the thing it waits for (a ping, a process, a log line, a stored event)
//! until a deadline, instead of sleeping for a guessed time.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it yields a value, and returns it; panics naming `what` after `within`.
pub async fn until<T, F, Fut>(
    what: impl Display,
    within: Duration,
    every: Duration,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(every).await;
    }
}

/// `until` with a condition: polls every 50 ms until `probe` is true.
pub async fn until_true<F, Fut>(what: impl Display, within: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let poll = Duration::from_millis(50);
    until(what, within, poll, || {
        let fact = probe();
        async move { fact.await.then_some(()) }
    })
    .await
}
