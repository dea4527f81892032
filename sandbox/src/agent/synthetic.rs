//! The synthetic agent of `make bench`: `VF_SYNTHETIC=N:SIZE:INTERVAL_US[:PAUSE_US]` skips the CLI and emits N
//! text deltas.
//!
//! The run is `session-init`, a pause of PAUSE_US (default 0: the model's time to its first token, during which a
//! real agent's callback connection is already open), N `text-delta`s whose text is SIZE bytes and starts with
//! the send time in unix microseconds (taken immediately before the delta goes to [`Output::emit`]), INTERVAL_US
//! apart, then `done`. It goes through the same [`Output`] and sink (callback or stdout) as a real turn, so what
//! the bench measures is the real path.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{sleep_until, Instant};
use vf_protocol::{ErrorCode, Event};

use super::sink::Output;
use super::StopSignals;
use crate::Error;

/// What `VF_SYNTHETIC` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synthetic {
    /// How many text deltas.
    pub events: u64,
    /// Bytes of each delta's text (at least the stamp).
    pub size: usize,
    /// Time between two deltas; zero writes them back to back.
    pub interval: Duration,
    /// Time between `session-init` and the first delta.
    pub pause: Duration,
}

impl FromStr for Synthetic {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.trim().split(':').collect();
        let (events, size, interval, pause) = match parts.as_slice() {
            [events, size, interval] => (events, size, interval, &"0"),
            [events, size, interval, pause] => (events, size, interval, pause),
            _ => return Err(format!("{value:?} is not N:SIZE:INTERVAL_US[:PAUSE_US]")),
        };
        let number = |name: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} in {value:?} is not a non-negative integer"))
        };
        Ok(Synthetic {
            events: number("N", events)?,
            size: usize::try_from(number("SIZE", size)?).map_err(|e| e.to_string())?,
            interval: Duration::from_micros(number("INTERVAL_US", interval)?),
            pause: Duration::from_micros(number("PAUSE_US", pause)?),
        })
    }
}

/// The wall clock in microseconds since the Unix epoch: the bench reads the same clock on the other side.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A delta's text: the stamp, a space, then padding up to `size` bytes.
fn delta_text(stamp: u64, size: usize) -> String {
    let mut text = String::with_capacity(size.max(24));
    let _ = write!(text, "{stamp} ");
    let padding = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', padding));
    text
}

/// Emits the synthetic run; a stop signal ends it as `cancelled`, like a real turn.
pub(super) async fn drive(
    spec: Synthetic,
    output: &mut Output,
    stop: &mut StopSignals,
) -> Result<(), Error> {
    output
        .emit(Event::SessionInit {
            session_id: "synthetic".into(),
            model: Some("synthetic".into()),
            tools: None,
        })
        .await?;
    let started = Instant::now() + spec.pause;
    for i in 0..spec.events {
        let due = started + spec.interval * u32::try_from(i).unwrap_or(u32::MAX);
        let pause = async {
            if due > Instant::now() {
                sleep_until(due).await;
            }
        };
        tokio::select! {
            biased;
            _ = stop.recv() => return output.emit(Event::error(ErrorCode::Cancelled, "stopped")).await,
            _ = pause => {}
        }
        let text = delta_text(unix_micros(), spec.size);
        output.emit(Event::TextDelta { text }).await?;
    }
    output
        .emit(Event::Done {
            session_id: Some("synthetic".into()),
            full_text: None,
            usage: None,
            cost_usd: None,
            duration_ms: Some(started.elapsed().as_millis() as u64),
            cancelled: None,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_n_size_interval() {
        assert_eq!(
            "10000:200:0".parse(),
            Ok(Synthetic {
                events: 10_000,
                size: 200,
                interval: Duration::ZERO,
                pause: Duration::ZERO,
            })
        );
        let spec: Synthetic = " 3:4096:1500:100000 ".parse().unwrap();
        assert_eq!(spec.interval, Duration::from_micros(1500));
        assert_eq!(spec.pause, Duration::from_millis(100));
        for bad in [
            "",
            "10",
            "10:200",
            "10:200:0:1:2",
            "1:1:1:x",
            "x:200:0",
            "10:-1:0",
            "10:200:1.5",
        ] {
            assert!(bad.parse::<Synthetic>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_delta_is_its_stamp_padded_to_size() {
        let text = delta_text(1_700_000_000_123_456, 200);
        assert_eq!(text.len(), 200);
        assert!(text.starts_with("1700000000123456 xx"));
        // Smaller than the stamp: the stamp is kept whole.
        assert_eq!(delta_text(1_700_000_000_123_456, 4), "1700000000123456 ");
    }
}
