//! The legacy agent WebSocket: one socket runs one `vf-agent` in stdout mode and relays its lines as text messages.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use vf_protocol::agent_env::AgentEnv;
use vf_protocol::api::PendingQuery;
use vf_protocol::framer::MAX_LINE_BYTES;
use vf_protocol::legacy::{AgentStart, ClientMessage};
use vf_protocol::{AgentLine, ErrorCode, Event};

use crate::lines::Lines;
use crate::processes::Spec;
use crate::server::App;
use crate::Error;

/// How long a client may take to send its first message.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a relay ended.
enum Ended {
    /// The agent sent its terminal event (and ends on its own), or never started.
    Finished,
    /// The client went away first: the agent must be stopped.
    Abandoned(String),
}

pub(crate) async fn serve(mut socket: WebSocket, app: Arc<App>) {
    let execution_id = uuid::Uuid::new_v4().to_string();
    let query_file = app.log_dir.join(format!("{execution_id}.query.json"));
    let ended = relay(&mut socket, &app, &execution_id, &query_file).await;
    match ended {
        Ok(Ended::Finished) => {}
        Ok(Ended::Abandoned(process)) => {
            app.processes.kill(&process).await;
        }
        Err(e) => {
            let message = match e {
                Error::BadRequest(message) => message,
                internal => {
                    eprintln!("vf-sandbox: legacy agent socket: {internal}");
                    "the agent could not be started".into()
                }
            };
            let _ = send(
                &mut socket,
                Event::error(ErrorCode::DispatchFailed, message).to_line(),
            )
            .await;
        }
    }
    // The agent deletes the query file once read; this only removes one it never got to.
    let _ = tokio::fs::remove_file(&query_file).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn relay(
    socket: &mut WebSocket,
    app: &Arc<App>,
    execution_id: &str,
    query_file: &std::path::Path,
) -> Result<Ended, Error> {
    let Some(start) = first_message(socket).await else {
        let refusal = Event::error(
            ErrorCode::DispatchFailed,
            "the first message must be {\"prompt\": string, …}",
        );
        let _ = send(socket, refusal.to_line()).await;
        return Ok(Ended::Finished);
    };
    let query = PendingQuery {
        prompt: start.prompt,
        session_id: start.session_id.unwrap_or_else(|| execution_id.to_string()),
        execution_id: execution_id.to_string(),
        sdk_session_id: start.sdk_session_id.clone(),
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    tokio::fs::write(
        query_file,
        serde_json::to_vec(&query).expect("queries serialize"),
    )
    .await?;

    let mut env = app.child_env(Some(start.env))?;
    // Stdout mode: whatever the server's or the client's environment says, this agent has no callback.
    env.remove("VF_CALLBACK_URL");
    env.remove("VF_STREAM_JWT");
    let turn = AgentEnv {
        query_file: Some(query_file.to_string_lossy().into_owned()),
        sdk_session_id: start.sdk_session_id,
        model: start.model,
        mode: start.mode.unwrap_or_default(),
        autonomy: start.autonomy,
        ..AgentEnv::default()
    };
    env.extend(turn.to_env());
    let (agent, stdout) = app.processes.start(Spec {
        command: &app.agent_command,
        cwd: app.workspace.root(),
        env: &env,
        capture_stdout: true,
    })?;
    let mut lines = Lines::new(stdout.expect("stdout was captured"), MAX_LINE_BYTES);
    let mut stopping = false;
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    let terminal = serde_json::from_slice::<AgentLine>(&line).is_ok_and(|l| l.event.is_terminal());
                    if send(socket, line).await.is_err() {
                        return Ok(Ended::Abandoned(agent.id));
                    }
                    if terminal {
                        return Ok(Ended::Finished);
                    }
                }
                Some(Err(e)) => eprintln!("vf-sandbox: dropped an agent line: {e}"),
                None => {
                    let event = if stopping {
                        Event::error(ErrorCode::Cancelled, "stopped")
                    } else {
                        Event::error(ErrorCode::AgentCrashed, "the agent exited without finishing its answer")
                    };
                    let _ = send(socket, event.to_line()).await;
                    return Ok(Ended::Finished);
                }
            },
            message = socket.recv(), if !stopping => match message {
                Some(Ok(Message::Text(text))) if is_stop(&text) => {
                    // Keep relaying while the group is stopped, so that the agent's own `cancelled` line arrives.
                    stopping = true;
                    let (app, id) = (app.clone(), agent.id.clone());
                    tokio::spawn(async move { app.processes.kill(&id).await });
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(Ended::Abandoned(agent.id)),
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn first_message(socket: &mut WebSocket) -> Option<AgentStart> {
    let read = async {
        loop {
            match socket.recv().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                _ => return None,
            }
        }
    };
    tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

fn is_stop(text: &str) -> bool {
    matches!(serde_json::from_str(text), Ok(ClientMessage::Stop))
}

async fn send(socket: &mut WebSocket, mut line: Vec<u8>) -> Result<(), axum::Error> {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    let text = String::from_utf8(line)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    socket.send(Message::Text(text.into())).await
}
