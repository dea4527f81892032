//! The reconnect state machine of the DO path: when a stream that ended early is resumed, and after how long.

/// What the connection badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionState {
    /// No stream open and none needed.
    #[default]
    Idle,
    /// Opening a stream.
    Connecting,
    /// A stream is open and being read.
    Live,
    /// A stream dropped before its answer ended; attempt `attempt` is scheduled or under way.
    Reconnecting { attempt: u32 },
    /// The browser is offline, or the attempts ran out; waits for `online` or for the tab to become visible.
    Offline,
}

impl ConnectionState {
    /// The value of `data-state`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Live => "live",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Offline => "offline",
        }
    }
}

pub use vf_protocol::backoff::Backoff;

/// How the browser resumes a dropped stream: 0.5 s, doubling to 8 s, 8 tries.
pub const RESUME_BACKOFF: Backoff = Backoff {
    initial_ms: 500,
    max_ms: 8_000,
    max_attempts: 8,
};

/// What the hook should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Wait,
    /// Open `events?after=<last seq>` after this many milliseconds (0: now), replacing any stream still open.
    ResumeIn(u32),
    /// The attempts ran out; tell the user.
    GiveUp,
}

/// The reconnect decisions of one session's streams. It only decides; the hook opens the streams and runs the
/// timers. Resuming is always safe: the resumed stream asks for `after=<last seq>` and the reducer ignores anything it
/// already has, so a needless resume costs one request and shows nothing twice.
#[derive(Debug, Clone)]
pub struct Reconnector {
    backoff: Backoff,
    /// A number in [0, 1) per delay (`Math.random` in the browser), so that tabs that lost the same server at
    /// once do not all come back at once.
    jitter: fn() -> f64,
    state: ConnectionState,
    /// Drops since the last event arrived.
    failures: u32,
    /// A live stream silent for longer than this when the tab becomes visible is presumed dead.
    stale_after_ms: u64,
}

impl Reconnector {
    pub fn new(backoff: Backoff, stale_after_ms: u64, jitter: fn() -> f64) -> Self {
        Reconnector {
            backoff,
            jitter,
            state: ConnectionState::Idle,
            failures: 0,
            stale_after_ms,
        }
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Back to the start (another session, or a transport that never resumes).
    pub fn reset(&mut self) {
        self.state = ConnectionState::Idle;
        self.failures = 0;
    }

    /// A stream is being opened; a resume keeps showing which attempt it is.
    pub fn opening(&mut self) {
        if !matches!(self.state, ConnectionState::Reconnecting { .. }) {
            self.state = ConnectionState::Connecting;
        }
    }

    /// The server answered and the body is being read.
    pub fn opened(&mut self) {
        self.state = ConnectionState::Live;
    }

    /// An event arrived: the path works, so the next drop starts the backoff afresh.
    pub fn progressed(&mut self) {
        self.failures = 0;
        self.state = ConnectionState::Live;
    }

    /// The request was refused outright (4xx): retrying would not help.
    pub fn refused(&mut self) {
        self.reset();
    }

    /// The stream ended, cleanly or not. `unfinished`: an answer is still open (no terminal event yet).
    pub fn closed(&mut self, unfinished: bool, online: bool) -> Decision {
        if !unfinished {
            self.reset();
            return Decision::Wait;
        }
        if !online {
            self.state = ConnectionState::Offline;
            return Decision::Wait;
        }
        self.failures += 1;
        if self.failures > self.backoff.max_attempts {
            self.state = ConnectionState::Offline;
            return Decision::GiveUp;
        }
        self.state = ConnectionState::Reconnecting {
            attempt: self.failures,
        };
        Decision::ResumeIn(self.backoff.delay_ms(self.failures, (self.jitter)()))
    }

    /// The browser lost the network; an open stream will notice on its own.
    pub fn went_offline(&mut self) {
        self.state = ConnectionState::Offline;
    }

    /// The browser is back online: resume at once if an answer is unfinished and no stream is being read.
    pub fn came_online(&mut self, unfinished: bool) -> Decision {
        match self.state {
            ConnectionState::Live | ConnectionState::Connecting => Decision::Wait,
            _ if unfinished => self.resume_now(),
            _ => {
                self.reset();
                Decision::Wait
            }
        }
    }

    /// The tab became visible again. Catches up at once when no stream is open (another device may have run a
    /// turn meanwhile), and replaces a live stream that has been silent too long (a frozen background tab's fetch
    /// can die without an error).
    pub fn became_visible(&mut self, unfinished: bool, silent_for_ms: u64) -> Decision {
        match self.state {
            ConnectionState::Connecting => Decision::Wait,
            ConnectionState::Live if unfinished && silent_for_ms > self.stale_after_ms => {
                self.resume_now()
            }
            ConnectionState::Live => Decision::Wait,
            _ => self.resume_now(),
        }
    }

    fn resume_now(&mut self) -> Decision {
        self.failures = 0;
        self.state = ConnectionState::Connecting;
        Decision::ResumeIn(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Reconnector {
        Reconnector::new(
            Backoff {
                initial_ms: 500,
                max_ms: 8_000,
                max_attempts: 3,
            },
            30_000,
            || 0.0,
        )
    }

    #[test]
    fn a_finished_stream_goes_idle() {
        let mut m = machine();
        m.opening();
        assert_eq!(m.state(), ConnectionState::Connecting);
        m.opened();
        assert_eq!(m.state(), ConnectionState::Live);
        assert_eq!(m.closed(false, true), Decision::Wait);
        assert_eq!(m.state(), ConnectionState::Idle);
    }

    #[test]
    fn an_early_drop_resumes_with_backoff_then_gives_up() {
        let mut m = machine();
        m.opened();
        assert_eq!(m.closed(true, true), Decision::ResumeIn(500));
        assert_eq!(m.state(), ConnectionState::Reconnecting { attempt: 1 });
        m.opening();
        assert_eq!(m.state(), ConnectionState::Reconnecting { attempt: 1 });
        assert_eq!(m.closed(true, true), Decision::ResumeIn(1_000));
        assert_eq!(m.closed(true, true), Decision::ResumeIn(2_000));
        assert_eq!(m.closed(true, true), Decision::GiveUp);
        assert_eq!(m.state(), ConnectionState::Offline);
    }

    #[test]
    fn progress_resets_the_backoff() {
        let mut m = machine();
        assert_eq!(m.closed(true, true), Decision::ResumeIn(500));
        assert_eq!(m.closed(true, true), Decision::ResumeIn(1_000));
        m.opened();
        m.progressed();
        assert_eq!(m.closed(true, true), Decision::ResumeIn(500));
    }

    #[test]
    fn offline_waits_for_online() {
        let mut m = machine();
        m.opened();
        m.went_offline();
        assert_eq!(m.closed(true, false), Decision::Wait);
        assert_eq!(m.state(), ConnectionState::Offline);
        assert_eq!(m.came_online(true), Decision::ResumeIn(0));
        assert_eq!(m.state(), ConnectionState::Connecting);
    }

    #[test]
    fn online_with_nothing_unfinished_just_clears_offline() {
        let mut m = machine();
        m.went_offline();
        assert_eq!(m.came_online(false), Decision::Wait);
        assert_eq!(m.state(), ConnectionState::Idle);
    }

    #[test]
    fn online_does_not_disturb_a_live_stream() {
        let mut m = machine();
        m.opened();
        assert_eq!(m.came_online(true), Decision::Wait);
        assert_eq!(m.state(), ConnectionState::Live);
    }

    #[test]
    fn online_after_giving_up_tries_again() {
        let mut m = machine();
        for _ in 0..3 {
            m.closed(true, true);
        }
        assert_eq!(m.closed(true, true), Decision::GiveUp);
        assert_eq!(m.came_online(true), Decision::ResumeIn(0));
        assert_eq!(m.closed(true, true), Decision::ResumeIn(500));
    }

    #[test]
    fn visible_again_catches_up_or_replaces_a_stale_stream() {
        let mut m = machine();
        // Idle: another device may have run a turn meanwhile.
        assert_eq!(m.became_visible(false, 0), Decision::ResumeIn(0));
        m.opened();
        assert_eq!(m.became_visible(true, 1_000), Decision::Wait);
        assert_eq!(m.became_visible(false, 600_000), Decision::Wait);
        assert_eq!(m.became_visible(true, 31_000), Decision::ResumeIn(0));
        // Given up while hidden: visible starts afresh.
        for _ in 0..4 {
            m.closed(true, true);
        }
        assert_eq!(m.state(), ConnectionState::Offline);
        assert_eq!(m.became_visible(true, 0), Decision::ResumeIn(0));
    }

    #[test]
    fn a_refusal_is_not_retried() {
        let mut m = machine();
        m.opening();
        m.refused();
        assert_eq!(m.state(), ConnectionState::Idle);
    }

    #[test]
    fn states_have_stable_names() {
        assert_eq!(
            ConnectionState::Reconnecting { attempt: 2 }.as_str(),
            "reconnecting"
        );
        assert_eq!(ConnectionState::Live.as_str(), "live");
    }
}
