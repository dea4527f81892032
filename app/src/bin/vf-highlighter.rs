//! The code-highlighting web worker: says `[]` when it is ready, then answers each `[id, language, code]` with
//! `[id, html]`.
//!
//! A worker of its own, so the lexers stay out of the page's wasm: the page starts it when the first code block
//! needs highlighting (`code_worker.rs`).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

fn main() {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let reply = scope.clone();
    let on_message =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let request = js_sys::Array::from(&event.data());
            let language = request.get(1).as_string().unwrap_or_default();
            let code = request.get(2).as_string().unwrap_or_default();
            let mut html = String::new();
            vf_app::highlight::write(&code, &language, &mut html);
            // A page that went away cannot be answered; nothing else can fail here.
            let _ = reply.post_message(&js_sys::Array::of2(&request.get(0), &html.into()));
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    // Messages that came before the handler was set are lost: the page waits for this one before it asks.
    let _ = scope.post_message(&js_sys::Array::new());
}
