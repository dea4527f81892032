//! Reading a streamed NDJSON response: byte chunks in, [`Envelope`]s out, whatever the chunk boundaries. The app
//! and the test client read every chat and events stream through it.

use crate::event::Envelope;
use crate::framer::{FrameError, LineFramer};

/// How much of an undecodable line an error quotes.
const QUOTED_BYTES: usize = 120;

/// A line of the stream that is not an envelope (too long, or from a newer server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("not an event ({error}): {start}")]
    NotAnEvent { error: String, start: String },
}

/// The decoder of one stream.
#[derive(Debug, Default)]
pub struct EnvelopeDecoder {
    framer: LineFramer,
}

impl EnvelopeDecoder {
    /// Feeds one chunk; returns the lines it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<Envelope, DecodeError>> {
        let mut out = Vec::new();
        self.framer.push(chunk, |line| out.push(decode(line)));
        out
    }

    /// The stream ended: a last line without its newline still counts.
    pub fn finish(&mut self) -> Vec<Result<Envelope, DecodeError>> {
        let mut out = Vec::new();
        self.framer.finish(|line| out.push(decode(line)));
        out
    }
}

fn decode(line: Result<&[u8], FrameError>) -> Result<Envelope, DecodeError> {
    let bytes = line?;
    serde_json::from_slice(bytes).map_err(|e| DecodeError::NotAnEvent {
        error: e.to_string(),
        start: String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_BYTES)]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn lines_split_anywhere_decode_whole() {
        let stream = concat!(
            "{\"type\":\"connected\",\"executionId\":\"e1\"}\n",
            "{\"seq\":1,\"executionId\":\"e1\",\"type\":\"user-message\",\"text\":\"hé\"}\r\n",
            "{\"type\":\"heartbeat\"}\n",
            "not json\n",
            "{\"seq\":2,\"executionId\":\"e1\",\"type\":\"text-delta\",\"text\":\"a\"}"
        )
        .as_bytes();
        for split in 1..stream.len() {
            let mut d = EnvelopeDecoder::default();
            let mut got = d.push(&stream[..split]);
            got.extend(d.push(&stream[split..]));
            got.extend(d.finish());
            let events: Vec<Option<&Event>> = got
                .iter()
                .map(|e| e.as_ref().ok().map(|e| &e.event))
                .collect();
            assert_eq!(
                events,
                [
                    Some(&Event::Connected {
                        execution_id: "e1".into()
                    }),
                    Some(&Event::UserMessage { text: "hé".into() }),
                    Some(&Event::Heartbeat),
                    None,
                    Some(&Event::TextDelta { text: "a".into() }),
                ],
                "split at {split}"
            );
            assert!(
                matches!(&got[3], Err(DecodeError::NotAnEvent { start, .. }) if start == "not json")
            );
            assert_eq!(got[4].as_ref().unwrap().seq, Some(2));
        }
    }
}
