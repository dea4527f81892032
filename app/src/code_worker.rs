//! Highlighted code for the page, from the highlighting worker (`bin/vf-highlighter.rs`), started when the first
//! code block needs it. A block shows plain until its answer comes, then the text that holds it renders again.

use std::cell::RefCell;
use std::collections::HashMap;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::markdown::escape_into;

/// Where trunk puts the worker's loader (`data-type="worker"` in app/index.html).
const WORKER_URL: &str = "/vf-highlighter_loader.js";
/// Answers kept; past this, they are all dropped (a streaming block asks again for each version of itself).
const MAX_ANSWERS: usize = 512;

/// A code block: its language and its code.
type Key = (String, String);

/// The worker and the handler of its answers, which must live as long as it.
struct Running {
    worker: web_sys::Worker,
    _on_message: Closure<dyn Fn(web_sys::MessageEvent)>,
    /// Requests made before the worker said it is ready (it would lose them).
    queued: Option<Vec<js_sys::Array>>,
}

#[derive(Default)]
struct CodeWorker {
    /// Started on the first request.
    worker: Option<Running>,
    /// The worker could not start or broke: code stays plain.
    failed: bool,
    answers: HashMap<Key, String>,
    /// Requests sent and not answered yet, by id.
    asked: HashMap<u32, Key>,
    next_id: u32,
    /// Blocks the text being rendered now showed plain; see `notify_when_answered`.
    misses: Vec<Key>,
    /// Texts to render again when a block's answer comes.
    waiting: Vec<(Key, Trigger)>,
}

thread_local! {
    static CODE_WORKER: RefCell<CodeWorker> = RefCell::default();
}

/// Writes `code` highlighted if the worker has answered for it; plain otherwise, asking the worker.
pub fn write(code: &str, language: &str, out: &mut String) {
    if language.is_empty() {
        return escape_into(out, code);
    }
    CODE_WORKER.with_borrow_mut(|state| {
        let key = (language.to_string(), code.to_string());
        if let Some(html) = state.answers.get(&key) {
            return out.push_str(html);
        }
        escape_into(out, code);
        if state.failed {
            return;
        }
        if !state.asked.values().any(|asked| asked == &key) {
            state.ask(&key);
        }
        state.misses.push(key);
    });
}

/// `trigger` is notified when a block that the last render showed plain gets its highlighting.
pub fn notify_when_answered(trigger: Trigger) {
    CODE_WORKER.with_borrow_mut(|state| {
        let misses = std::mem::take(&mut state.misses);
        state
            .waiting
            .extend(misses.into_iter().map(|key| (key, trigger)));
    });
}

impl CodeWorker {
    fn ask(&mut self, key: &Key) {
        if self.worker.is_none() {
            match start() {
                Some(worker) => self.worker = Some(worker),
                None => {
                    self.failed = true;
                    return;
                }
            }
        }
        let Some(running) = &mut self.worker else {
            return;
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let request = js_sys::Array::of3(
            &JsValue::from(id),
            &JsValue::from_str(&key.0),
            &JsValue::from_str(&key.1),
        );
        match &mut running.queued {
            Some(queued) => queued.push(request),
            None if running.worker.post_message(&request).is_ok() => {}
            None => return,
        }
        self.asked.insert(id, key.clone());
    }
}

/// Starts the worker, with the handler of its answers.
fn start() -> Option<Running> {
    let worker = web_sys::Worker::new(WORKER_URL).ok()?;
    let on_message = Closure::<dyn Fn(web_sys::MessageEvent)>::new(answered);
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let on_error = Closure::<dyn Fn(web_sys::Event)>::new(|_| {
        CODE_WORKER.with_borrow_mut(|state| {
            state.failed = true;
            state.waiting.clear();
        });
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // Once is enough: a broken worker stays broken, so this handler is needed at most once, for the page's life.
    on_error.forget();
    Some(Running {
        worker,
        _on_message: on_message,
        queued: Some(Vec::new()),
    })
}

/// A worker's message: `[]` when it is ready (the requests made meanwhile go), else an answer `[id, html]`, which
/// is kept while the texts waiting for it render again.
fn answered(event: web_sys::MessageEvent) {
    let answer = js_sys::Array::from(&event.data());
    if answer.length() == 0 {
        return CODE_WORKER.with_borrow_mut(|state| {
            if let Some(running) = &mut state.worker {
                for request in running.queued.take().into_iter().flatten() {
                    let _ = running.worker.post_message(&request);
                }
            }
        });
    }
    let (Some(id), Some(html)) = (answer.get(0).as_f64(), answer.get(1).as_string()) else {
        return;
    };
    let ready = CODE_WORKER.with_borrow_mut(|state| {
        let key = state.asked.remove(&(id as u32))?;
        let (ready, still_waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiting)
            .into_iter()
            .partition(|(waiting_for, _)| *waiting_for == key);
        state.waiting = still_waiting;
        if state.answers.len() >= MAX_ANSWERS {
            state.answers.clear();
        }
        state.answers.insert(key, html);
        Some(ready)
    });
    // Notified outside the borrow: a render that runs at once may ask for more.
    for (_, trigger) in ready.into_iter().flatten() {
        trigger.notify();
    }
}
