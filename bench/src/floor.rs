//! The two baselines that need no app: the bare pass-through DO (a second `wrangler dev` serving `bench/relay`)
//! and a direct loopback HTTP server that receives the agent's chunked POST itself.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use tokio::sync::mpsc;
use vf_e2e::stack::{free_port, repo_root, wrangler_dev};

use crate::direct::Workerd;
use crate::measure::{now_us, Recorder};

/// `wrangler dev` of `bench/relay` on a free port, stopped (with its workerd) on drop.
pub struct RelayWorker {
    /// The relay's own workerd (see [`crate::direct`]).
    pub workerd: Workerd,
    child: Child,
    state: PathBuf,
}

impl RelayWorker {
    pub async fn start() -> RelayWorker {
        let root = repo_root();
        let port = free_port();
        let state = std::env::temp_dir().join(format!("vf-bench-relay-{port}"));
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("vf-bench-relay-{port}.log")))
                .expect("log file");
        let child = wrangler_dev(&root.join("bench/relay"), port, &state, log)
            .spawn()
            .expect("wrangler dev (relay) starts");
        let deadline = Instant::now() + Duration::from_secs(90);
        let http = reqwest::Client::new();
        while !http
            .get(format!("http://127.0.0.1:{port}/ping"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "the relay worker did not start in 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let workerd =
            crate::direct::workerd(child.id(), port, "/ping", 200, "vf-bench-relay").await;
        RelayWorker {
            workerd,
            child,
            state,
        }
    }
}

impl Drop for RelayWorker {
    fn drop(&mut self) {
        // SAFETY: signalling the process group we created; no memory is involved.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A loopback HTTP server standing in for the client: each POST body is recorded as it arrives.
pub struct Loopback {
    pub url: String,
    runs: mpsc::UnboundedReceiver<Recorder>,
}

impl Loopback {
    pub async fn start() -> Loopback {
        async fn receive(
            State(runs): State<mpsc::UnboundedSender<Recorder>>,
            body: Body,
        ) -> Json<serde_json::Value> {
            let mut recorder = Recorder::default();
            let mut chunks = body.into_data_stream();
            while let Some(Ok(chunk)) = chunks.next().await {
                recorder.chunk(&chunk, now_us());
            }
            let stored = recorder.lines;
            let _ = runs.send(recorder);
            Json(serde_json::json!({"stored": stored, "terminal": true}))
        }
        let (tx, runs) = mpsc::unbounded_channel();
        let app = Router::new().route("/stream", post(receive)).with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}/stream", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Loopback { url, runs }
    }

    /// The recording of the next POST that ended.
    pub async fn next_run(&mut self) -> Recorder {
        self.runs.recv().await.expect("the server runs")
    }
}
