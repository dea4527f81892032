//! Tool approvals in the session DO: confirmations become pending approvals, the first decision wins (a person
//! on any tab, a session rule, the timeout, or the end of the execution), and the agent's long-poll gets it.

use std::time::Duration;

use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use vf_protocol::api::{AgentDecision, ApproveRequest, ApproveResponse, RulesResponse};
use vf_protocol::{ApprovalScope, DecidedBy, Event};
use worker::{Request, Response};

use super::Agent;
use crate::approval_log::ApprovalRow;
use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::http;

/// The tool through which Claude asks the user questions; its approval carries the answers.
const ASK_USER_QUESTION: &str = "AskUserQuestion";

/// An approval nobody answers within this is denied (`by: "timeout"`).
pub(super) const APPROVAL_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// How long the agent's poll is held open before it is told "still pending" (204) and asks again: under the
/// idle limits of the proxies on the way.
const POLL_HOLD: Duration = Duration::from_secs(25);

/// What the Worker forwards to `/approve`: the user's decision and who they are.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveForward {
    #[serde(flatten)]
    pub request: ApproveRequest,
    pub user_id: String,
}

/// A denial that nobody typed.
fn denial(row: &ApprovalRow, by: DecidedBy, message: &str) -> AgentDecision {
    AgentDecision {
        approval_id: row.id.clone(),
        approved: false,
        scope: ApprovalScope::Once,
        message: Some(message.into()),
        by,
        answers: None,
    }
}

impl Agent {
    fn approval_timeout_ms(&self) -> u64 {
        config::var_u64(&self.env, "APPROVAL_TIMEOUT_MS", APPROVAL_TIMEOUT_MS)
    }

    /// The confirmations among stored events: each becomes a pending approval, and one that a session rule
    /// covers is allowed at once (`by: "rule"`).
    pub(super) fn note_confirmations(&self, execution_id: &str, events: &[Event]) -> ApiResult<()> {
        for event in events {
            let Event::Confirmation {
                approval_id,
                tool_name,
                ..
            } = event
            else {
                continue;
            };
            self.approvals
                .insert(approval_id, execution_id, tool_name, config::now_ms())?;
            if self.approvals.has_rule(tool_name)? {
                if let Some(row) = self.approvals.get(approval_id)? {
                    let allow = AgentDecision {
                        approval_id: approval_id.clone(),
                        approved: true,
                        scope: ApprovalScope::Session,
                        message: None,
                        by: DecidedBy::Rule,
                        answers: None,
                    };
                    self.decide(&row, allow)?;
                }
            }
        }
        Ok(())
    }

    /// Records `decision` if the approval is still pending: the `confirmation-result` event, a session rule for
    /// "allow for this session", and the agent's waiting poll answered. Returns whether it was still pending.
    fn decide(&self, row: &ApprovalRow, decision: AgentDecision) -> ApiResult<bool> {
        let now = config::now_ms();
        if !self.approvals.decide(&decision, now)? {
            return Ok(false);
        }
        if decision.approved && decision.scope == ApprovalScope::Session {
            self.approvals.add_rule(&row.tool_name, now)?;
        }
        self.publish(
            &row.execution_id,
            &[Event::ConfirmationResult {
                approval_id: decision.approval_id.clone(),
                approved: decision.approved,
                scope: decision.scope,
                message: decision.message.clone(),
                by: decision.by,
                answers: decision.answers.clone(),
            }],
        )?;
        let waiting = self.waiters.borrow_mut().remove(&decision.approval_id);
        for waiter in waiting.into_iter().flatten() {
            let _ = waiter.send(decision.clone());
        }
        Ok(true)
    }

    /// `POST /approve`: a person's decision. 404 for an approval this session does not have, 409 when it is no
    /// longer pending (decided, timed out, or its execution ended).
    pub(super) fn handle_approve(&self, forward: ApproveForward) -> ApiResult<Response> {
        self.check_owner(&forward.user_id)?;
        let request = forward.request;
        let row = self
            .approvals
            .get(&request.approval_id)?
            .ok_or(ApiError::NotFound)?;
        let running = self
            .log
            .running()?
            .is_some_and(|r| r.id == row.execution_id);
        if row.decision().is_some() || !running {
            return Err(ApiError::Conflict(
                "this approval is no longer pending".into(),
            ));
        }
        if request.answers.is_some() && row.tool_name != ASK_USER_QUESTION {
            return Err(ApiError::BadRequest(format!(
                "answers are for Claude's questions, not for a {} call",
                row.tool_name
            )));
        }
        let decision = AgentDecision {
            approval_id: row.id.clone(),
            approved: request.approved,
            scope: request.scope.unwrap_or_default(),
            message: request.message,
            by: DecidedBy::User,
            answers: request.answers,
        };
        if !self.decide(&row, decision)? {
            return Err(ApiError::Conflict(
                "this approval is no longer pending".into(),
            ));
        }
        Ok(http::json(
            200,
            &ApproveResponse {
                approval_id: row.id,
                approved: request.approved,
            },
        ))
    }

    /// `GET /internal/approvals/{id}`: the agent's long-poll for a decision, with its execution token. The
    /// decision at once if there is one; else the request waits for it up to [`POLL_HOLD`], then 204; 404 for an
    /// approval of another execution (and, through the token check, once the execution is over).
    pub(super) async fn handle_decision(&self, req: &Request, id: &str) -> ApiResult<Response> {
        let run = self.callback_execution(req)?;
        // The agent asks as soon as it wrote its confirmation, which may still be on its way in the callback
        // stream: an approval not seen yet counts as pending.
        match self.approvals.get(id)? {
            Some(row) if row.execution_id != run.id => return Err(ApiError::NotFound),
            Some(row) => {
                if let Some(decision) = row.decision() {
                    return Ok(http::json(200, &decision));
                }
            }
            None => {}
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .borrow_mut()
            .entry(id.to_string())
            .or_default()
            .push(sender);
        let decided = futures::future::select(receiver, worker::Delay::from(POLL_HOLD)).await;
        if let futures::future::Either::Left((Ok(decision), _)) = decided {
            return Ok(http::json(200, &decision));
        }
        if let Some(waiting) = self.waiters.borrow_mut().get_mut(id) {
            waiting.retain(|w| !w.is_canceled());
        }
        match self.approvals.get(id)?.and_then(|row| row.decision()) {
            Some(decision) => Ok(http::json(200, &decision)),
            None => Ok(http::no_content()),
        }
    }

    /// Denies every approval of `execution_id` still pending (`by: "cancel"`): the execution is ending.
    pub(super) fn deny_pending(&self, execution_id: &str) -> ApiResult<()> {
        for row in self.approvals.pending(execution_id)? {
            let deny = denial(&row, DecidedBy::Cancel, "The answer was stopped.");
            self.decide(&row, deny)?;
        }
        Ok(())
    }

    /// Denies the approvals of `execution_id` that waited past the approval timeout (`by: "timeout"`). Returns
    /// how long until the next one times out, if any is still pending.
    pub(super) fn expire_approvals(
        &self,
        execution_id: &str,
        now_ms: u64,
    ) -> ApiResult<Option<u64>> {
        let timeout = self.approval_timeout_ms();
        let mut next = None;
        for row in self.approvals.pending(execution_id)? {
            let deadline = row.created_at.max(0) as u64 + timeout;
            if now_ms >= deadline {
                let deny = denial(&row, DecidedBy::Timeout, "Nobody answered in time.");
                self.decide(&row, deny)?;
            } else {
                next = Some(next.map_or(deadline - now_ms, |n: u64| n.min(deadline - now_ms)));
            }
        }
        Ok(next)
    }

    /// `GET /rules`: the session's "allow for this session" rules.
    pub(super) fn handle_rules(&self) -> ApiResult<Response> {
        let rules = RulesResponse {
            rules: self.approvals.rules()?,
        };
        Ok(http::json(200, &rules))
    }

    /// `DELETE /rules[?tool=NAME]`: forgets one rule, or all of them.
    pub(super) fn handle_clear_rules(&self, req: &Request) -> ApiResult<Response> {
        let tool = http::query_param(req, "tool")?;
        self.approvals.clear_rules(tool.as_deref())?;
        Ok(http::no_content())
    }
}
