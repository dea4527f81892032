//! Reads a streamed NDJSON response body as it arrives: `ReadableStream` chunks → `LineFramer` → `Envelope`s.

use leptos::logging::warn;
use vf_protocol::{DecodeError, Envelope, EnvelopeDecoder, Event};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use crate::api::{ApiError, ApiResult};

/// The envelopes among decoded lines: heartbeats are dropped here (any bytes show the stream is alive); a line
/// that is not an event (too long, or from a newer server) is logged and skipped, never the end of the stream.
fn envelopes(lines: Vec<Result<Envelope, DecodeError>>) -> Vec<Envelope> {
    lines
        .into_iter()
        .filter_map(|line| match line {
            Ok(Envelope {
                event: Event::Heartbeat,
                ..
            }) => None,
            Ok(envelope) => Some(envelope),
            Err(e) => {
                warn!("skipped a stream line: {e}");
                None
            }
        })
        .collect()
}

/// Reads `response`'s body to its end, handing each chunk's envelopes to `on_batch` (possibly none: any bytes,
/// heartbeats included, show the stream is alive). `Ok` on a clean end, `Err` when the connection dropped.
pub async fn read(response: &Response, mut on_batch: impl FnMut(Vec<Envelope>)) -> ApiResult<()> {
    let mut decoder = EnvelopeDecoder::default();
    read_chunks(response, |chunk| on_batch(envelopes(decoder.push(chunk)))).await?;
    on_batch(envelopes(decoder.finish()));
    Ok(())
}

/// Reads `response`'s body to its end, handing each chunk as it arrives to `on_chunk`.
pub async fn read_chunks(response: &Response, mut on_chunk: impl FnMut(&[u8])) -> ApiResult<()> {
    let body = response
        .body()
        .ok_or_else(|| ApiError::Network("the response has no body".into()))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let result = JsFuture::from(reader.read())
            .await
            .map_err(ApiError::from_js)?;
        let field = |name: &str| js_sys::Reflect::get(&result, &JsValue::from_str(name));
        if field("done").ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let chunk: js_sys::Uint8Array = field("value").map_err(ApiError::from_js)?.unchecked_into();
        on_chunk(&chunk.to_vec());
    }
    Ok(())
}
