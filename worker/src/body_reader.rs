//! The callback body reader: a burst is taken in a few large reads, a lone line at once (workerd BYOB reads).

use wasm_bindgen::{JsCast, JsValue};
use worker::Request;

/// The callback body, read so that a burst is stored in a few large transactions and a lone line at once.
///
/// Each transaction costs a commit (the runtime writes and syncs the pages it touched), so the DO should store
/// as many lines per turn as have arrived, but never wait for lines that have not. Every read races a zero
/// timer: a read whose bytes were already there completes first. When the first read of a batch loses, the body
/// has paused, and whatever comes next goes out alone, at once: it is what a watching client waits for. When it
/// wins, a burst is on, and the batch takes every read that wins after it, up to a limit that starts small after
/// each pause and doubles while batches fill; the first read to lose stays pending for the next batch. Reads use
/// a BYOB reader: the default one hands out at most 4 KB.
pub struct BodyReader {
    reader: JsValue,
    read: js_sys::Function,
    /// The buffer for the next read (each read gives it back), the read in flight, and whether the body ended.
    buffer: Option<js_sys::ArrayBuffer>,
    pending: Option<wasm_bindgen_futures::JsFuture>,
    ended: bool,
    limit: usize,
}

impl BodyReader {
    const READ_BYTES: u32 = 64 * 1024;
    const MIN_BATCH: usize = 16 * 1024;
    const MAX_BATCH: usize = 1024 * 1024;

    pub fn new(req: &Request) -> worker::Result<Self> {
        let body: JsValue = req.inner().body().map_or(JsValue::NULL, Into::into);
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"mode".into(), &"byob".into())?;
        let get_reader: js_sys::Function =
            js_sys::Reflect::get(&body, &"getReader".into())?.dyn_into()?;
        let reader = get_reader.call1(&body, &options)?;
        let read = js_sys::Reflect::get(&reader, &"read".into())?.dyn_into()?;
        Ok(BodyReader {
            reader,
            read,
            buffer: None,
            pending: None,
            ended: false,
            limit: Self::MIN_BATCH,
        })
    }

    /// Whether a burst is on (the last batches filled up).
    pub fn backlogged(&self) -> bool {
        self.limit > Self::MIN_BATCH
    }

    /// Everything of the body that has arrived (at least one read's worth, at most about the batch limit);
    /// None at its end.
    pub async fn next(&mut self) -> Option<worker::Result<Vec<u8>>> {
        match self.batch().await {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => None,
            Err(e) => {
                self.ended = true;
                Some(Err(e.into()))
            }
        }
    }

    /// Reads the rest of the body and drops it; returns how many bytes that was. A request's body must be read
    /// to its end before the DO answers: workerd fails the request stream of an answer sent earlier ("Can't
    /// read from request stream after response has been sent"), which also broke the Worker's next request.
    pub async fn drain(&mut self) -> worker::Result<usize> {
        let mut dropped = 0;
        while let Some(bytes) = self.next().await {
            dropped += bytes?.len();
        }
        Ok(dropped)
    }

    async fn batch(&mut self) -> Result<Option<Vec<u8>>, JsValue> {
        if self.ended {
            return Ok(None);
        }
        let mut read = match self.pending.take() {
            Some(read) => read,
            None => self.start_read()?,
        };
        let first = match futures::future::select(&mut read, at_once()).await {
            futures::future::Either::Left((first, _)) => first?,
            futures::future::Either::Right(_) => {
                self.limit = Self::MIN_BATCH;
                return self.finish_read(read.await?);
            }
        };
        let Some(mut bytes) = self.finish_read(first)? else {
            return Ok(None);
        };
        while bytes.len() < self.limit {
            let mut read = self.start_read()?;
            match futures::future::select(&mut read, at_once()).await {
                futures::future::Either::Left((more, _)) => match self.finish_read(more?)? {
                    Some(more) => bytes.extend_from_slice(&more),
                    None => return Ok(Some(bytes)),
                },
                futures::future::Either::Right(_) => {
                    self.pending = Some(read);
                    return Ok(Some(bytes));
                }
            }
        }
        self.limit = (self.limit * 2).min(Self::MAX_BATCH);
        Ok(Some(bytes))
    }

    fn start_read(&mut self) -> Result<wasm_bindgen_futures::JsFuture, JsValue> {
        let buffer = self
            .buffer
            .take()
            .unwrap_or_else(|| js_sys::ArrayBuffer::new(Self::READ_BYTES));
        let view = js_sys::Uint8Array::new(&buffer);
        let read: js_sys::Promise = self.read.call1(&self.reader, &view)?.dyn_into()?;
        Ok(read.into())
    }

    /// The bytes of a finished read (None: the body ended); takes the buffer back for the next read.
    fn finish_read(&mut self, result: JsValue) -> Result<Option<Vec<u8>>, JsValue> {
        if js_sys::Reflect::get(&result, &"done".into())?.is_truthy() {
            self.ended = true;
            return Ok(None);
        }
        let filled: js_sys::Uint8Array =
            js_sys::Reflect::get(&result, &"value".into())?.dyn_into()?;
        self.buffer = Some(filled.buffer());
        Ok(Some(filled.to_vec()))
    }
}

/// A timer that fires once the runtime has run everything already due: a read that loses the race to it was
/// waiting for bytes that had not arrived.
pub fn at_once() -> worker::Delay {
    worker::Delay::from(std::time::Duration::ZERO)
}
