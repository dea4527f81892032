//! workerd's V8 inspector (which `wrangler dev` starts on a loopback port): a full collection and the JS heap's
//! size in use, so the bench and the soak can tell what a collection frees from what stays.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::process;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The V8 heap of one Worker's isolate, through its inspector.
pub struct Inspector {
    url: String,
    socket: Option<Socket>,
    next_id: u64,
    /// workerd handles the inspector's commands when the isolate runs: a request to `wake` makes it run.
    http: reqwest::Client,
    wake: String,
}

impl Inspector {
    /// Finds the isolate named `worker` (the `name` in its wrangler.toml) among the inspector targets on the
    /// listening ports of the workerd processes `pids`; `wake` is a URL the Worker answers (any answer).
    pub async fn find(pids: &[u32], wake: &str, worker: &str) -> Inspector {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("an HTTP client");
        for port in pids.iter().flat_map(|&pid| process::listening_ports(pid)) {
            let Ok(response) = http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            else {
                continue;
            };
            let Ok(targets) = response.json::<Vec<Value>>().await else {
                continue;
            };
            let url = targets.iter().find_map(|target| {
                let title = target["title"].as_str()?;
                (title == worker || title.ends_with(&format!(":{worker}")))
                    .then(|| target["webSocketDebuggerUrl"].as_str())
                    .flatten()
            });
            if let Some(url) = url {
                return Inspector {
                    url: url.to_string(),
                    socket: None,
                    next_id: 0,
                    http,
                    wake: wake.to_string(),
                };
            }
        }
        panic!("no inspector target named {worker} on workerd {pids:?}");
    }

    /// Sends one command and returns its result. workerd takes one inspector session per isolate and wrangler
    /// holds one too, so a session may be closed under us: the command is sent again on a new one.
    async fn call(&mut self, method: &str) -> Value {
        for _ in 0..20 {
            if let Some(result) = self.try_call(method).await {
                return result;
            }
            self.socket = None;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("{method}: the inspector kept closing");
    }

    /// One attempt of [`Inspector::call`]; None when the session closed first.
    async fn try_call(&mut self, method: &str) -> Option<Value> {
        if self.socket.is_none() {
            self.socket = Some(tokio_tungstenite::connect_async(&self.url).await.ok()?.0);
        }
        let socket = self.socket.as_mut()?;
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": {} });
        socket
            .send(Message::Text(command.to_string().into()))
            .await
            .ok()?;
        loop {
            let message = tokio::select! {
                message = socket.next() => message,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    let _ = self.http.get(&self.wake).send().await;
                    continue;
                }
            };
            let Message::Text(text) = message?.ok()? else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap_or_default();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return Some(reply["result"].clone());
            }
        }
    }

    /// A full collection of the isolate's heap.
    pub async fn collect_garbage(&mut self) {
        self.call("HeapProfiler.collectGarbage").await;
    }

    /// Bytes of the JS heap in use (live objects and garbage not yet collected).
    pub async fn heap_used(&mut self) -> u64 {
        let usage = self.call("Runtime.getHeapUsage").await;
        usage["usedSize"].as_f64().unwrap_or_default() as u64
    }
}
