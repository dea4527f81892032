//! What every measurement shares: one wall clock on both sides, a recorder of stamped lines, percentiles.

use std::time::{SystemTime, UNIX_EPOCH};

use vf_protocol::LineFramer;

/// The wall clock in µs since the Unix epoch: the synthetic agent stamps its deltas with the same clock.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The send time a synthetic agent put at the start of a text delta's text (any wire form: agent line, stored
/// line, WebSocket message); None for every other line.
pub fn delta_stamp(line: &[u8]) -> Option<u64> {
    find(line, b"\"type\":\"text-delta\"")?;
    let start = find(line, b"\"text\":\"")? + b"\"text\":\"".len();
    let digits = line[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&line[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

fn kind_is(line: &[u8], kind: &str) -> bool {
    find(line, format!("\"type\":\"{kind}\"").as_bytes()).is_some()
}

/// What one reader saw of one synthetic run.
#[derive(Default)]
pub struct Recorder {
    framer: LineFramer,
    /// Client read time − agent stamp, per text delta, µs.
    pub latencies: Vec<u64>,
    /// The first delta's stamp and the last delta's arrival.
    pub first_stamp: Option<u64>,
    pub last_arrival: u64,
    /// When the first agent event (`session-init`) arrived.
    pub session_init_at: Option<u64>,
    /// When the first line of any kind arrived.
    pub first_line_at: Option<u64>,
    pub lines: u64,
    pub terminal: bool,
    /// CPU time the Worker's workerd spent during the run, µs (0: no workerd on this path).
    pub workerd_cpu_us: u64,
}

impl Recorder {
    /// A chunk of NDJSON read at `at`.
    pub fn chunk(&mut self, bytes: &[u8], at: u64) {
        let mut lines = Vec::new();
        self.framer
            .push(bytes, |line| lines.extend(line.ok().map(<[u8]>::to_vec)));
        for line in lines {
            self.line(&line, at);
        }
    }

    /// One line read at `at` (a WebSocket message is one line).
    pub fn line(&mut self, line: &[u8], at: u64) {
        self.lines += 1;
        self.first_line_at.get_or_insert(at);
        if let Some(stamp) = delta_stamp(line) {
            self.first_stamp.get_or_insert(stamp);
            self.latencies.push(at.saturating_sub(stamp));
            self.last_arrival = at;
        } else if kind_is(line, "session-init") {
            self.session_init_at.get_or_insert(at);
        } else if kind_is(line, "done") || kind_is(line, "error") {
            self.terminal = true;
        }
    }

    /// The latency of the first delta, µs.
    pub fn first_latency(&self) -> u64 {
        *self.latencies.first().expect("the run had deltas")
    }

    /// The workerd's CPU time per delta, µs.
    pub fn cpu_per_event(&self) -> f64 {
        self.workerd_cpu_us as f64 / self.latencies.len().max(1) as f64
    }

    /// Deltas per second from the first delta's send to the last delta's arrival.
    pub fn rate(&self) -> f64 {
        let span = self.last_arrival - self.first_stamp.expect("the run had deltas");
        self.latencies.len() as f64 / (span.max(1) as f64 / 1e6)
    }
}

/// The `p`th percentile (0–100, nearest rank) of unsorted samples.
pub fn percentile(samples: &[u64], p: f64) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// µs as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_read_from_every_wire_form() {
        let agent = br#"{"aseq":2,"type":"text-delta","text":"1795298308941246 xxxx"}"#;
        let stored =
            br#"{"seq":9,"executionId":"e","type":"text-delta","text":"1795298308941246 xx"}"#;
        assert_eq!(delta_stamp(agent), Some(1_795_298_308_941_246));
        assert_eq!(delta_stamp(stored), Some(1_795_298_308_941_246));
        assert_eq!(
            delta_stamp(br#"{"type":"user-message","text":"1 x"}"#),
            None
        );
        assert_eq!(
            delta_stamp(br#"{"type":"text-delta","text":"hello"}"#),
            None
        );
    }

    #[test]
    fn a_recorder_frames_chunks_and_measures_each_delta() {
        let mut r = Recorder::default();
        r.chunk(
            b"{\"type\":\"session-init\",\"sessionId\":\"s\"}\n{\"type\":\"text-",
            100,
        );
        r.chunk(
            b"delta\",\"text\":\"90 x\"}\n{\"type\":\"text-delta\",\"text\":\"95 x\"}\n",
            120,
        );
        r.line(br#"{"type":"done"}"#, 130);
        assert_eq!(r.latencies, vec![30, 25]);
        assert_eq!(r.session_init_at, Some(100));
        assert_eq!(r.first_line_at, Some(100));
        assert_eq!((r.lines, r.terminal, r.first_latency()), (4, true, 30));
        assert!((r.rate() - 2.0 / 30e-6).abs() < 1.0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&samples, 50.0), 50);
        assert_eq!(percentile(&samples, 99.0), 99);
        assert_eq!(percentile(&samples, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
