//! The watchdog's verdict on a running execution: a pure function of the run, what the DO knows of its producer,
//! the clock and the timeouts.
//!
//! The DO's alarm asks it on every tick. An agent that never called back ends with `timeout` once the bridge
//! timeout passed; one whose process is gone ends with `agent-crashed` at once; one whose callback went silent
//! (no line, not even a heartbeat) for a watchdog window ends with `agent-crashed`. A DO instance that knows
//! nothing of the producer (it restarted) gives the agent one window to reconnect. An execution waiting for a
//! person (a pending approval) is never ended as silent while its agent's process runs.

use crate::event::{ErrorCode, Event};

/// The alarm never fires sooner than this after the last look.
pub const MIN_TICK_MS: u64 = 100;

/// The watchdog's timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// No callback within this long after dispatch → `timeout`.
    pub bridge_ms: u64,
    /// A producer silent this long → `agent-crashed`.
    pub watchdog_ms: u64,
    /// Live streams get a heartbeat at least this often (every tick sends one).
    pub heartbeat_ms: u64,
}

impl Timeouts {
    /// When to look next, `wait_ms` from now at the latest: at least once per watchdog window (so an agent that
    /// died before calling back is noticed early rather than at the bridge timeout) and once per heartbeat
    /// interval.
    pub fn tick(&self, wait_ms: u64) -> u64 {
        wait_ms
            .min(self.watchdog_ms)
            .min(self.heartbeat_ms)
            .max(MIN_TICK_MS)
    }
}

/// What the log says of the running execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub started_at_ms: u64,
    /// Whether the agent's callback ever reached the DO.
    pub called_back: bool,
    /// Whether an approval is pending: the execution waits for a person, not for the agent.
    pub awaiting_user: bool,
}

/// What this DO instance knows of the execution's producer (lost when the instance is evicted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    /// Whether a callback connection is open now.
    pub callback_open: bool,
    /// When the producer was last heard from (a chunk, a connection opening or closing).
    pub last_activity_ms: u64,
}

/// What the watchdog decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Look again in this many milliseconds.
    Wait(u64),
    /// This instance knew nothing of the producer: it starts watching now and looks again in a window.
    Adopt(u64),
    /// End the execution with this event; `kill` says whether the agent's process may still be running.
    End { event: Event, kill: bool },
}

impl Run {
    /// Whether the watchdog should ask the sandbox if the agent's process still runs: while no callback is open
    /// (an open callback is the better proof of life), and while the run waits for a person (then the process
    /// is the only proof).
    pub fn needs_process_check(&self, producer: Option<&Producer>) -> bool {
        self.awaiting_user || !producer.is_some_and(|p| p.callback_open)
    }
}

/// The verdict for `run` at `now_ms`. `exited` is how the agent's process ended, when the sandbox says it did
/// (asked only when [`Run::needs_process_check`]).
pub fn verdict(
    run: Run,
    producer: Option<&Producer>,
    exited: Option<&str>,
    now_ms: u64,
    timeouts: Timeouts,
) -> Verdict {
    let callback_open = producer.is_some_and(|p| p.callback_open);
    if let (false, Some(_)) = (callback_open && !run.awaiting_user, exited) {
        return Verdict::End {
            event: Event::error(
                ErrorCode::AgentCrashed,
                "The agent stopped before finishing its answer.",
            ),
            kill: false,
        };
    }
    let Some(producer) = producer else {
        return Verdict::Adopt(timeouts.watchdog_ms);
    };
    if run.awaiting_user {
        return Verdict::Wait(timeouts.watchdog_ms);
    }
    let (deadline, event) = if !run.called_back && !producer.callback_open {
        (
            run.started_at_ms + timeouts.bridge_ms,
            Event::error(
                ErrorCode::Timeout,
                "The agent did not start in time. Try again.",
            ),
        )
    } else {
        (
            producer.last_activity_ms + timeouts.watchdog_ms,
            Event::error(ErrorCode::AgentCrashed, "The agent stopped responding."),
        )
    };
    if now_ms >= deadline {
        Verdict::End { event, kill: true }
    } else {
        Verdict::Wait(deadline - now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        bridge_ms: 300_000,
        watchdog_ms: 60_000,
        heartbeat_ms: 15_000,
    };

    fn run(called_back: bool) -> Run {
        Run {
            started_at_ms: 1_000,
            called_back,
            awaiting_user: false,
        }
    }

    fn producer(callback_open: bool, last_activity_ms: u64) -> Producer {
        Producer {
            callback_open,
            last_activity_ms,
        }
    }

    fn code(v: &Verdict) -> Option<ErrorCode> {
        match v {
            Verdict::End {
                event: Event::Error { code, .. },
                ..
            } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn the_bridge_and_a_silent_callback_wait_for_their_deadline_then_end() {
        // (called back, callback open, last activity, a look before the deadline and the wait it gives, a look
        // after it, the code it ends with)
        let cases = [
            (
                false,
                false,
                1_000,
                (2_000, 299_000),
                301_000,
                ErrorCode::Timeout,
            ),
            (
                true,
                true,
                10_000,
                (30_000, 40_000),
                70_000,
                ErrorCode::AgentCrashed,
            ),
        ];
        for (called_back, open, last, (early, wait), late, expected) in cases {
            let p = producer(open, last);
            assert_eq!(
                verdict(run(called_back), Some(&p), None, early, T),
                Verdict::Wait(wait)
            );
            let end = verdict(run(called_back), Some(&p), None, late, T);
            assert_eq!(code(&end), Some(expected));
            assert!(matches!(end, Verdict::End { kill: true, .. }));
        }
    }

    #[test]
    fn a_closed_callback_is_judged_by_its_last_activity_once_it_called_back() {
        let p = producer(false, 10_000);
        assert_eq!(
            verdict(run(true), Some(&p), None, 20_000, T),
            Verdict::Wait(50_000)
        );
    }

    #[test]
    fn an_exited_process_ends_the_run_at_once_unless_a_callback_is_open() {
        let closed = producer(false, 10_000);
        let end = verdict(run(true), Some(&closed), Some("exit 1"), 10_001, T);
        assert_eq!(code(&end), Some(ErrorCode::AgentCrashed));
        assert!(matches!(end, Verdict::End { kill: false, .. }));
        // Before any callback, and on a fresh instance, too.
        assert!(matches!(
            verdict(run(false), None, Some("exit 1"), 1_500, T),
            Verdict::End { kill: false, .. }
        ));
        // An open callback outranks the process table (the agent may still be sending its last lines).
        let open = producer(true, 10_000);
        assert_eq!(
            verdict(run(true), Some(&open), Some("exit 0"), 10_001, T),
            Verdict::Wait(59_999)
        );
        assert!(!run(true).needs_process_check(Some(&open)));
        assert!(run(true).needs_process_check(Some(&closed)));
        assert!(run(true).needs_process_check(None));
    }

    #[test]
    fn a_run_waiting_for_a_person_is_never_silent_while_its_agent_lives() {
        let waiting = Run {
            awaiting_user: true,
            ..run(true)
        };
        let silent = producer(true, 0);
        assert!(waiting.needs_process_check(Some(&silent)));
        assert_eq!(
            verdict(waiting, Some(&silent), None, 10_000_000, T),
            Verdict::Wait(T.watchdog_ms)
        );
        // Its process gone, it ends like any other.
        let end = verdict(waiting, Some(&silent), Some("killed"), 10_000_000, T);
        assert_eq!(code(&end), Some(ErrorCode::AgentCrashed));
    }

    #[test]
    fn a_fresh_instance_adopts_the_run_for_one_window() {
        assert_eq!(
            verdict(run(true), None, None, 1_000_000, T),
            Verdict::Adopt(60_000)
        );
    }

    #[test]
    fn ticks_are_bounded_by_the_window_the_heartbeat_and_a_floor() {
        assert_eq!(T.tick(1_000_000), 15_000);
        assert_eq!(T.tick(5_000), 5_000);
        assert_eq!(T.tick(0), MIN_TICK_MS);
    }
}
