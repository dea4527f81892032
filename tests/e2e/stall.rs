//! A callback connection that stalls instead of breaking: every line is still stored exactly once, in order.

use std::time::Duration;

use vf_e2e::proxy::FreezableProxy;
use vf_e2e::wait::until_true;
use vf_e2e::{Client, Stack, StackOptions};
use vf_protocol::Event;

/// Deltas of the stalled answer, and the agent's pace (µs between deltas).
const DELTAS: u64 = 4_000;
const INTERVAL_US: u64 = 1_500;
/// What the agent logs when it gives up on a connection that stopped delivering.
const STALLED: &str = "callback connection lost (callback connection stalled)";
/// Deltas the client sees from the new connection before the frozen one thaws.
const AFTER_RESEND: u64 = 300;
/// What it logs when it resent on a new connection.
const REOPENED: &str = "callback reopened";

/// A stack whose agent calls back through a proxy the test can freeze.
pub struct Stalled {
    pub stack: Stack,
    pub proxy: FreezableProxy,
}

impl Stalled {
    /// The agent's callback goes through the proxy (via `PUBLIC_URL`), the agent is the synthetic one (its
    /// deltas carry their send time, so order and duplicates show), and it abandons a connection the DO has not
    /// heard from for a second. The DO's watchdog window (6 s) is longer than any stall here.
    pub async fn start() -> Stalled {
        let proxy = FreezableProxy::start().await;
        let stack = Stack::start(options(&proxy)).await;
        proxy.set_target(stack.worker_addr());
        Stalled { stack, proxy }
    }
}

fn options(proxy: &FreezableProxy) -> StackOptions {
    StackOptions {
        worker_vars: vec![(
            "PUBLIC_URL".into(),
            format!("http://127.0.0.1:{}", proxy.port),
        )],
        sandbox_env: vec![
            ("VF_SYNTHETIC".into(), format!("{DELTAS}:64:{INTERVAL_US}")),
            ("VF_CALLBACK_STALL_SECS".into(), "1".into()),
        ],
        ..StackOptions::default()
    }
}

/// The agent's callback connection freezes twice during one long answer (open, no bytes either way; new
/// connections work) until the agent gives up on it and resends on a new one; when it thaws, the bytes still
/// in flight on the abandoned connection reach the DO after the resend. Every delta is stored once, in order,
/// and the answer ends with one `done`.
pub async fn a_stalled_callback_stores_every_line_once(stalled: &Stalled) {
    let Stalled { stack, proxy } = stalled;
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await;
    let mut stream = user.chat(&session.id, "a long answer").await;
    assert_eq!(stream.status(), 200);
    let mut deltas = 0u64;
    let mut next_delta = async || loop {
        match stream
            .next()
            .await
            .expect("the answer goes on")
            .envelope
            .event
        {
            Event::TextDelta { .. } => return,
            Event::Done { .. } | Event::Error { .. } => panic!("the answer ended early"),
            _ => {}
        }
    };
    for (freeze_at, stalls) in [(DELTAS / 5, 1), (DELTAS / 2, 2)] {
        while deltas < freeze_at {
            next_delta().await;
            deltas += 1;
        }
        proxy.freeze();
        // Frozen until the agent has given up on its connection (longer than its stall window by construction)
        // and resent on a new one ...
        until_true(
            "the agent resending on a new connection",
            Duration::from_secs(30),
            || {
                let logs = stack.agent_logs();
                let resent = logs.matches(STALLED).count() >= stalls
                    && logs.matches(REOPENED).count() >= stalls;
                async move { resent }
            },
        )
        .await;
        // ... and the DO stored what the new one brought, so that what the frozen one holds arrives late.
        for _ in 0..AFTER_RESEND {
            next_delta().await;
            deltas += 1;
        }
        proxy.thaw();
    }
    let lines = stream.collect().await;
    let terminals: Vec<&Event> = lines
        .iter()
        .map(|l| &l.envelope.event)
        .filter(|e| e.is_terminal())
        .collect();
    assert!(
        matches!(terminals.as_slice(), [Event::Done { .. }]),
        "one done: {terminals:?}"
    );

    let stored = user.events(&session.id, 0).await.collect().await;
    let stamps: Vec<u64> = stored
        .iter()
        .filter_map(|l| match &l.envelope.event {
            Event::TextDelta { text } => text.split_whitespace().next()?.parse().ok(),
            _ => None,
        })
        .collect();
    let doubled = stamps.windows(2).filter(|w| w[0] >= w[1]).count();
    assert_eq!(doubled, 0, "every delta once and in order");
    assert_eq!(stamps.len() as u64, DELTAS, "every delta stored");
    let seqs: Vec<u64> = stored.iter().filter_map(|l| l.envelope.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let logs = stack.agent_logs();
    println!(
        "    {} stalls survived; {} resends",
        logs.matches(STALLED).count(),
        logs.matches(REOPENED).count()
    );
}
