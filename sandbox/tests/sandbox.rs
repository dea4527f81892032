//! Tests of the `vf-sandbox` control server through `run()` on a loopback port, with real processes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{parse_line, scratch, terminal, write_query, AGENT, FAKE_CLAUDE};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vf_protocol::{AgentLine, ErrorCode, Event};
use vf_sandbox::Config;

const TOKEN: &str = "test-token-0b5e";

struct Sandbox {
    addr: std::net::SocketAddr,
    dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    http: reqwest::Client,
}

impl Sandbox {
    /// A server whose legacy agent command records its pid (`agent.pid`) and then becomes `agent_command`.
    async fn start_with(agent_command: &str) -> Sandbox {
        let dir = scratch("server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base_env = BTreeMap::from([
            ("PATH".to_string(), std::env::var("PATH").unwrap()),
            ("VF_CLAUDE_BIN".to_string(), FAKE_CLAUDE.to_string()),
            ("VF_FAKE_DELAY_MS".to_string(), "0".to_string()),
        ]);
        let config = Config {
            token: TOKEN.into(),
            workspace: dir.join("ws"),
            log_dir: dir.join("logs"),
            agent_command: format!(
                "echo $$ > '{}'; exec {agent_command}",
                dir.join("agent.pid").display()
            ),
            base_env,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(vf_sandbox::run(listener, config, async {
            let _ = stopped.await;
        }));
        let sandbox = Sandbox {
            addr,
            dir,
            stop: Some(stop),
            served,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        // Once it answers, `run` has set up the workspace and the log directory.
        assert_eq!(
            sandbox.call(Method::GET, "/api/ping", None).await.0,
            StatusCode::OK
        );
        sandbox
    }

    async fn start() -> Sandbox {
        Sandbox::start_with(&format!("'{AGENT}'")).await
    }

    fn workspace(&self) -> PathBuf {
        self.dir.join("ws").canonicalize().unwrap()
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.header("X-Sandbox-Token", token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{status} {path}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, value)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            Some(TOKEN),
        )
        .await
    }

    async fn start_process(&self, command: &str) -> (String, i32) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/process/start",
                Some(json!({"command": command})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["pid"].as_i64().unwrap() as i32,
        )
    }

    async fn wait_exit(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self
                .call(Method::GET, &format!("/api/process/{id}"), None)
                .await;
            assert_eq!(status, StatusCode::OK);
            if body["status"] != "running" {
                return body;
            }
            assert!(Instant::now() < deadline, "process {id} still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ws(
        &self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let mut request = format!("ws://{}/api/agent/ws", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("X-Sandbox-Token", TOKEN.parse().unwrap());
        tokio_tungstenite::connect_async(request).await.unwrap().0
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.served.await.unwrap().unwrap();
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

/// Reads a pid that a test command wrote into a file, waiting for it to appear.
async fn read_pid(path: &Path) -> i32 {
    for _ in 0..500 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid in {}", path.display());
}

/// Whether a process is gone (or a zombie waiting for its reaper, which is dead all the same).
fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

async fn assert_gone_soon(pid: i32) {
    for _ in 0..300 {
        if is_gone(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("process {pid} is still alive");
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let sandbox = Sandbox::start().await;
    let routes = [
        (Method::GET, "/api/ping", None),
        (
            Method::POST,
            "/api/write",
            Some(r#"{"path":"a","content":"b"}"#),
        ),
        (
            Method::POST,
            "/api/process/start",
            Some(r#"{"command":"true"}"#),
        ),
        (Method::GET, "/api/process", None),
        (Method::GET, "/api/process/x", None),
        (Method::DELETE, "/api/process/x", None),
        (Method::GET, "/api/agent/ws", None),
        (Method::GET, "/api/nowhere", None),
    ];
    for (method, path, body) in routes {
        for token in [None, Some("wrong"), Some(""), Some("test-token-0b5")] {
            let (status, error) = sandbox.call_with(method.clone(), path, body, token).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert!(error["error"].is_string());
        }
    }
    assert!(
        !sandbox.workspace().join("a").exists(),
        "nothing ran without the token"
    );
    assert_eq!(
        sandbox.call(Method::GET, "/api/ping", None).await,
        (StatusCode::OK, json!({"ok": true}))
    );
    let (status, _) = sandbox.call(Method::GET, "/api/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The WebSocket handshake is refused too.
    let request = format!("ws://{}/api/agent/ws", sandbox.addr)
        .into_client_request()
        .unwrap();
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    sandbox.stop().await;
}

#[tokio::test]
async fn write_stays_inside_the_workspace() {
    let sandbox = Sandbox::start().await;
    let root = sandbox.workspace();
    let (status, body) = sandbox
        .call(
            Method::POST,
            "/api/write",
            Some(json!({"path": "deep/er/a.txt", "content": "hello"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["path"], root.join("deep/er/a.txt").to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(root.join("deep/er/a.txt")).unwrap(),
        "hello"
    );
    let inside = root.join("b.txt");
    let (status, _) = sandbox
        .call(
            Method::POST,
            "/api/write",
            Some(json!({"path": inside, "content": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    std::os::unix::fs::symlink(&sandbox.dir, root.join("escape")).unwrap();
    for path in ["../x", "/etc/passwd", "a/../../x", "escape/x", "", "deep"] {
        let (status, body) = sandbox
            .call(
                Method::POST,
                "/api/write",
                Some(json!({"path": path, "content": "pwned"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path:?}: {body}");
        assert!(body["error"].is_string());
    }
    assert!(!sandbox.dir.join("x").exists());
    // Bodies well past axum's 2 MB default are files too; past the 32 MiB limit, an honest 413.
    let big = "y".repeat(3 * 1024 * 1024);
    let (status, _) = sandbox
        .call(
            Method::POST,
            "/api/write",
            Some(json!({"path": "big", "content": big})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let huge = "z".repeat(33 * 1024 * 1024);
    let (status, body) = sandbox
        .call(
            Method::POST,
            "/api/write",
            Some(json!({"path": "huge", "content": huge})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    for bad in ["not json", r#"{"path":"a"}"#, r#"{"path":1,"content":"c"}"#] {
        let (status, body) = sandbox
            .call_with(Method::POST, "/api/write", Some(bad), Some(TOKEN))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn processes_run_in_the_workspace_with_a_small_environment() {
    let sandbox = Sandbox::start().await;
    let (status, body) = sandbox
        .call(
            Method::POST,
            "/api/process/start",
            Some(json!({"command": "pwd; env | sort; echo oops >&2; exit 3", "env": {"EXTRA": "1", "PATH": "/bin:/usr/bin"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap();
    let pid = body["pid"].as_u64().unwrap();
    let done = sandbox.wait_exit(id).await;
    assert_eq!(
        done,
        json!({"id": id, "pid": pid, "status": "exited", "exitCode": 3})
    );
    let (status, listed) = sandbox.call(Method::GET, "/api/process", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, json!([done]));
    let log = std::fs::read_to_string(sandbox.dir.join(format!("logs/{id}.log"))).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some(sandbox.workspace().to_str().unwrap()));
    let names: Vec<&str> = lines
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    // What sh adds on its own (PWD, SHLVL, _) is fine; nothing of the server's own environment is.
    let ours: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(n))
        .collect();
    assert_eq!(
        ours,
        ["EXTRA", "PATH", "VF_CLAUDE_BIN", "VF_FAKE_DELAY_MS"],
        "{log}"
    );
    assert!(
        log.contains("PATH=/bin:/usr/bin") && log.ends_with("oops\n"),
        "{log}"
    );

    std::fs::create_dir(sandbox.workspace().join("sub")).unwrap();
    let (status, body) = sandbox
        .call(
            Method::POST,
            "/api/process/start",
            Some(json!({"command": "pwd", "cwd": "sub"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = body["id"].as_str().unwrap();
    sandbox.wait_exit(id).await;
    let log = std::fs::read_to_string(sandbox.dir.join(format!("logs/{id}.log"))).unwrap();
    assert_eq!(
        log.trim(),
        sandbox.workspace().join("sub").to_str().unwrap()
    );

    for bad in [
        json!({"command": ""}),
        json!({"env": {}}),
        json!({"command": "pwd", "cwd": "/"}),
        json!({"command": "pwd", "cwd": "nope"}),
        json!({"command": "true", "env": {"A=B": "c"}}),
    ] {
        let (status, body) = sandbox
            .call(Method::POST, "/api/process/start", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = sandbox.call(method, "/api/process/unknown", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn delete_stops_the_whole_group_even_when_it_ignores_sigterm() {
    let sandbox = Sandbox::start().await;
    let pid_file = sandbox.workspace().join("grandchild.pid");
    let (id, pid) = sandbox
        .start_process("trap '' TERM; sleep 300 & echo $! > grandchild.pid; wait")
        .await;
    let grandchild = read_pid(&pid_file).await;
    assert!(!is_gone(grandchild));
    let asked = Instant::now();
    let (status, body) = sandbox
        .call(Method::DELETE, &format!("/api/process/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "SIGKILL only after the grace period"
    );
    assert_eq!(
        body,
        json!({"id": id, "pid": pid, "status": "killed", "exitCode": null})
    );
    assert_gone_soon(grandchild).await;
    assert_gone_soon(pid).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn delete_reaches_a_grandchild_whose_parent_already_exited() {
    let sandbox = Sandbox::start().await;
    let (id, _) = sandbox
        .start_process("sleep 300 & echo $! > orphan.pid")
        .await;
    let orphan = read_pid(&sandbox.workspace().join("orphan.pid")).await;
    let exited = sandbox.wait_exit(&id).await;
    assert_eq!(exited["status"], "exited");
    assert!(!is_gone(orphan), "the grandchild outlives its parent");
    let asked = Instant::now();
    let (status, body) = sandbox
        .call(Method::DELETE, &format!("/api/process/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "sleep dies on SIGTERM"
    );
    assert_eq!(
        body["status"], "exited",
        "the process itself had exited on its own"
    );
    assert_gone_soon(orphan).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn shutdown_stops_running_processes() {
    let sandbox = Sandbox::start().await;
    let (_, pid) = sandbox.start_process("sleep 300").await;
    assert!(!is_gone(pid));
    sandbox.stop().await;
    assert_gone_soon(pid).await;
}

async fn collect_ws(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<AgentLine> {
    let mut lines = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .unwrap()
    {
        match message.unwrap() {
            Message::Text(text) => lines.push(parse_line(text.as_bytes())),
            Message::Close(_) => break,
            _ => {}
        }
    }
    lines
}

#[tokio::test]
async fn the_legacy_socket_relays_a_session_to_its_end() {
    let sandbox = Sandbox::start().await;
    let mut socket = sandbox.ws().await;
    let start = json!({"prompt": "[fixture:tool] hi", "model": "claude-opus-4-1", "autonomy": "standard", "env": {"VF_FAKE_ARGS_LOG": "args.jsonl"}});
    socket
        .send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let lines = collect_ws(&mut socket).await;
    assert!(matches!(terminal(&lines), Event::Done { .. }), "{lines:?}");
    assert!(lines.iter().any(|l| matches!(
        &l.event,
        Event::ToolResult {
            is_error: Some(true),
            ..
        }
    )));
    let args = std::fs::read_to_string(sandbox.workspace().join("args.jsonl")).unwrap();
    assert!(
        args.contains(r#""--model","claude-opus-4-1","--permission-mode","acceptEdits""#),
        "{args}"
    );
    // The pending-query file was consumed.
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.dir.join("logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".query.json"))
        .collect();
    assert!(leftovers.is_empty());
    sandbox.stop().await;
}

#[tokio::test]
async fn stop_and_disconnect_end_the_agent() {
    let sandbox = Sandbox::start().await;
    let hang = json!({"prompt": "[fixture:hang] hi"}).to_string();

    let mut socket = sandbox.ws().await;
    socket
        .send(Message::Text(hang.clone().into()))
        .await
        .unwrap();
    let first = socket.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("session-init"));
    let agent = read_pid(&sandbox.dir.join("agent.pid")).await;
    socket
        .send(Message::Text(r#"{"type":"stop"}"#.into()))
        .await
        .unwrap();
    let mut lines = vec![parse_line(first.to_text().unwrap().as_bytes())];
    lines.extend(collect_ws(&mut socket).await);
    assert_eq!(
        terminal(&lines),
        &Event::error(ErrorCode::Cancelled, "stopped"),
        "the agent's own cancelled line is relayed"
    );
    assert_gone_soon(agent).await;

    std::fs::remove_file(sandbox.dir.join("agent.pid")).unwrap();
    let mut socket = sandbox.ws().await;
    socket.send(Message::Text(hang.into())).await.unwrap();
    socket.next().await.unwrap().unwrap();
    let agent = read_pid(&sandbox.dir.join("agent.pid")).await;
    drop(socket);
    assert_gone_soon(agent).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn an_agent_that_dies_without_a_terminal_event_is_reported() {
    let sandbox = Sandbox::start_with(
        r#"sh -c 'echo "{\"aseq\":1,\"type\":\"text-delta\",\"text\":\"x\"}"; exit 3'"#,
    )
    .await;
    let mut socket = sandbox.ws().await;
    socket
        .send(Message::Text(json!({"prompt": "hi"}).to_string().into()))
        .await
        .unwrap();
    let lines = collect_ws(&mut socket).await;
    // The relay's own error line is a plain event: it has no place in the agent's numbering.
    assert!(
        matches!(
            &lines[..],
            [
                AgentLine {
                    aseq: Some(1),
                    event: Event::TextDelta { .. }
                },
                AgentLine {
                    aseq: None,
                    event: Event::Error {
                        code: ErrorCode::AgentCrashed,
                        ..
                    }
                }
            ]
        ),
        "{lines:?}"
    );

    let mut socket = sandbox.ws().await;
    socket
        .send(Message::Text("not a start message".into()))
        .await
        .unwrap();
    let lines = collect_ws(&mut socket).await;
    assert!(matches!(
        &lines[..],
        [AgentLine {
            event: Event::Error {
                code: ErrorCode::DispatchFailed,
                ..
            },
            ..
        }]
    ));
    sandbox.stop().await;
}

#[test]
fn query_files_written_by_tests_parse_like_the_do_writes_them() {
    let dir = scratch("query-shape");
    write_query(&dir.join("q.json"), "p");
    let value: Value = serde_json::from_slice(&std::fs::read(dir.join("q.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(value["executionId"], "e-1");
}
