//! Exponential backoff with jitter, for everything that retries: the browser resuming a stream, the agent
//! reconnecting its callback.

/// `initial_ms`, doubled per failed attempt up to `max_ms`, at most `max_attempts` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial_ms: u32,
    pub max_ms: u32,
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait before attempt `attempt` (1-based). `jitter` (0 to 1, a fresh random number each time) takes up
    /// to half of it off, so clients that lost the same server at once do not all come back at once.
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u32 {
        let doublings = attempt.saturating_sub(1).min(31);
        let full = self
            .initial_ms
            .saturating_mul(1u32 << doublings)
            .min(self.max_ms);
        (f64::from(full) * (1.0 - jitter.clamp(0.0, 1.0) / 2.0)).round() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial_ms: 500,
        max_ms: 8_000,
        max_attempts: 8,
    };

    #[test]
    fn delays_double_up_to_the_cap() {
        let delays: Vec<u32> = (1..=7).map(|a| B.delay_ms(a, 0.0)).collect();
        assert_eq!(delays, [500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(B.delay_ms(1_000, 0.0), 8_000);
    }

    #[test]
    fn jitter_takes_at_most_half_off() {
        assert_eq!(B.delay_ms(5, 1.0), 4_000);
        assert_eq!(B.delay_ms(5, 0.5), 6_000);
        assert_eq!(B.delay_ms(5, 7.0), 4_000, "out-of-range jitter is clamped");
    }
}
