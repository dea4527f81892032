//! Our side of a run's stdin: the prompt, our control requests, and the answers to the CLI's permission requests.

use std::collections::HashMap;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use vf_protocol::api::AgentDecision;
use vf_protocol::Event;

use super::approvals::Approvals;
use super::control::{self, Asked, Incoming};
use super::translate::cap_input;

/// A decision that arrived: the CLI's request id, what Claude asked to run, the decision.
pub type Decided = (String, Asked, AgentDecision);

/// Writes the CLI's stdin from its own task (a prompt larger than the pipe buffer must not deadlock against our
/// reads of its stdout), and keeps the approvals being waited for.
pub struct Controller {
    /// Lines for stdin, in order; `None` once stdin is closed.
    stdin: Option<mpsc::UnboundedSender<String>>,
    /// Set when the CLI speaks the control protocol.
    approvals: Option<Approvals>,
    requests_sent: u64,
    waits: JoinSet<Decided>,
    /// The waits by the CLI's request id, for `control_cancel_request`.
    pending: HashMap<String, AbortHandle>,
    /// The permission mode an approved plan switches the CLI to: the turn's autonomy in agent mode.
    mode_after_plan: &'static str,
}

impl Controller {
    /// Without approvals: the prompt as plain text, then stdin closes (plain `-p`). With them: the SDK's
    /// `initialize` request, the prompt as a stream-json user message, and stdin stays open for our answers.
    pub fn start(
        stdin: ChildStdin,
        prompt: &str,
        approvals: Option<Approvals>,
        mode_after_plan: &'static str,
    ) -> Self {
        let (lines, mut queue) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(line) = queue.recv().await {
                // A CLI that exits without reading is reported through its exit, not through a broken pipe here.
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let mut controller = Controller {
            stdin: Some(lines),
            approvals,
            requests_sent: 0,
            waits: JoinSet::new(),
            pending: HashMap::new(),
            mode_after_plan,
        };
        if controller.approvals.is_some() {
            controller.request(control::initialize());
            controller.send(control::user_message(prompt));
        } else {
            controller.send(prompt.to_string());
            controller.stdin = None;
        }
        controller
    }

    fn send(&self, line: String) {
        if let Some(stdin) = &self.stdin {
            let _ = stdin.send(line);
        }
    }

    fn request(&mut self, body: Value) {
        self.requests_sent += 1;
        self.send(control::request(
            &format!("vf-{}", self.requests_sent),
            body,
        ));
    }

    /// Handles a control line of the CLI; a permission request becomes a `confirmation` event (the decision is
    /// asked for meanwhile, see [`Controller::next_decision`]).
    pub fn incoming(&mut self, message: Incoming) -> Option<Event> {
        match message {
            Incoming::Request {
                request_id,
                request,
            } => match (control::permission(&request), self.approvals.clone()) {
                (Some(permission), Some(approvals)) => {
                    return Some(self.ask(approvals, request_id, permission))
                }
                (Some(_), None) => self.send(control::error(
                    &request_id,
                    "tool approvals are not available in this run",
                )),
                (None, _) => {
                    let subtype = request["subtype"].as_str().unwrap_or("unnamed");
                    eprintln!("vf-agent: refused the CLI's {subtype:?} control request");
                    self.send(control::error(
                        &request_id,
                        &format!("vf-agent does not serve {subtype:?} requests"),
                    ));
                }
            },
            Incoming::Response {
                request_id,
                error: Some(error),
            } => eprintln!("vf-agent: the CLI refused our request {request_id}: {error}"),
            Incoming::Response { error: None, .. } => {}
            Incoming::Cancel { request_id } => {
                if let Some(wait) = self.pending.remove(&request_id) {
                    wait.abort();
                }
            }
        }
        None
    }

    fn ask(
        &mut self,
        approvals: Approvals,
        request_id: String,
        permission: control::Permission,
    ) -> Event {
        let approval_id = uuid::Uuid::new_v4().to_string();
        let asked = Asked {
            tool_name: permission.tool_name,
            input: permission.input,
        };
        let event = Event::Confirmation {
            approval_id: approval_id.clone(),
            tool_name: asked.tool_name.clone(),
            input: cap_input(asked.input.clone()),
            tool_use_id: permission.tool_use_id,
            suggestions: permission.permission_suggestions.filter(|s| !s.is_null()),
        };
        let id = request_id.clone();
        let wait = self.waits.spawn(async move {
            let decision = approvals.decision(&approval_id).await;
            (id, asked, decision)
        });
        self.pending.insert(request_id, wait);
        event
    }

    /// Whether a decision is being waited for (then the CLI's silence is the user's, not a hang).
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next decision to arrive; `None` when none is awaited. Cancel-safe, for a `select!` loop.
    pub async fn next_decision(&mut self) -> Option<Decided> {
        while let Some(joined) = self.waits.join_next().await {
            // A wait that was aborted (the CLI cancelled its request) has nothing to answer.
            if let Ok(decided) = joined {
                return Some(decided);
            }
        }
        None
    }

    /// Gives the CLI the decision.
    pub fn answer(&mut self, (request_id, asked, decision): Decided) {
        if self.pending.remove(&request_id).is_some() {
            self.send(control::decision_response(
                &request_id,
                &decision,
                &asked,
                self.mode_after_plan,
            ));
        }
    }

    /// The run is being stopped: asks the CLI to interrupt its turn (it then saves its transcript and exits once
    /// its input ends), ends its input and stops waiting for decisions. Whether the CLI was asked.
    pub fn stop(&mut self) -> bool {
        let asked = self.stdin.is_some() && self.approvals.is_some();
        if asked {
            self.request(control::interrupt());
        }
        self.stdin = None;
        self.waits.abort_all();
        self.pending.clear();
        asked
    }
}
