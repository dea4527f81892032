//! Reads a streamed NDJSON response body as it arrives: `ReadableStream` chunks → `LineFramer` → `Envelope`s.

use leptos::logging::warn;
use vf_protocol::{Envelope, Event, LineFramer};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use crate::api::{ApiError, ApiResult};

/// Bytes in, envelopes out, whatever the chunk boundaries. Heartbeats are dropped here; a line that is not an
/// event (too long, or from a newer server) is logged and skipped, never the end of the stream.
#[derive(Debug, Default)]
pub struct EnvelopeDecoder {
    framer: LineFramer,
}

impl EnvelopeDecoder {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Envelope> {
        let mut out = Vec::new();
        self.framer.push(chunk, |line| decode(line, &mut out));
        out
    }

    /// The stream ended: a last line without its newline still counts.
    pub fn finish(&mut self) -> Vec<Envelope> {
        let mut out = Vec::new();
        self.framer.finish(|line| decode(line, &mut out));
        out
    }
}

fn decode(line: Result<&[u8], vf_protocol::FrameError>, out: &mut Vec<Envelope>) {
    match line.map(serde_json::from_slice::<Envelope>) {
        Ok(Ok(Envelope {
            event: Event::Heartbeat,
            ..
        })) => {}
        Ok(Ok(envelope)) => out.push(envelope),
        Ok(Err(e)) => warn!("skipped a stream line that is not an event: {e}"),
        Err(e) => warn!("skipped a stream line: {e}"),
    }
}

/// Reads `response`'s body to its end, handing each chunk's envelopes to `on_batch` (possibly none: any bytes,
/// heartbeats included, show the stream is alive). `Ok` on a clean end, `Err` when the connection dropped.
pub async fn read(response: &Response, mut on_batch: impl FnMut(Vec<Envelope>)) -> ApiResult<()> {
    let body = response
        .body()
        .ok_or_else(|| ApiError::Network("the response has no body".into()))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut decoder = EnvelopeDecoder::default();
    loop {
        let result = JsFuture::from(reader.read())
            .await
            .map_err(ApiError::from_js)?;
        let field = |name: &str| js_sys::Reflect::get(&result, &JsValue::from_str(name));
        if field("done").ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let chunk: js_sys::Uint8Array = field("value").map_err(ApiError::from_js)?.unchecked_into();
        on_batch(decoder.push(&chunk.to_vec()));
    }
    on_batch(decoder.finish());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_anywhere_decode_whole() {
        let stream = concat!(
            "{\"type\":\"connected\",\"executionId\":\"e1\"}\n",
            "{\"seq\":1,\"executionId\":\"e1\",\"type\":\"user-message\",\"text\":\"hé\"}\r\n",
            "{\"type\":\"heartbeat\"}\n",
            "not json\n",
            "{\"type\":\"from-the-future\"}\n",
            "{\"seq\":2,\"executionId\":\"e1\",\"type\":\"text-delta\",\"text\":\"a\"}"
        )
        .as_bytes();
        for split in 1..stream.len() {
            let mut d = EnvelopeDecoder::default();
            let mut got = d.push(&stream[..split]);
            got.extend(d.push(&stream[split..]));
            got.extend(d.finish());
            let seqs: Vec<Option<u64>> = got.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, [None, Some(1), Some(2)], "split at {split}");
            assert_eq!(
                got[0].event,
                Event::Connected {
                    execution_id: "e1".into()
                }
            );
            assert_eq!(got[1].event, Event::UserMessage { text: "hé".into() });
        }
    }
}
