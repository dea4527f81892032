//! Asking the DO for the user's decision on a tool call: a long poll of `GET {VF_APPROVALS_URL}/{approvalId}`.

use std::time::Duration;

use reqwest::StatusCode;
use vf_protocol::api::AgentDecision;
use vf_protocol::backoff::Backoff;
use vf_protocol::{ApprovalScope, DecidedBy};

use crate::error::describe;
use crate::Error;

/// The waits between two failed asks (the Worker or the DO restarting; the pending approval survives in the
/// DO's storage): 250 ms doubling to 5 s, jittered, for as long as the run lasts.
const RETRY: Backoff = Backoff {
    initial_ms: 250,
    max_ms: 5_000,
    max_attempts: u32::MAX,
};
/// One ask's limit: the DO holds a pending ask for about 25 s before it answers 204.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and as whom the agent asks.
#[derive(Debug, Clone)]
pub struct Approvals {
    client: reqwest::Client,
    url: String,
    jwt: String,
}

/// What one ask got.
#[derive(Debug)]
enum Answer {
    Decided(AgentDecision),
    Pending,
    /// The DO does not know the approval or the execution any more (404, 401, another 4xx).
    Over(StatusCode),
    /// Worth asking again after a pause: no connection, a 5xx, a body that is not a decision.
    Retry(String),
}

impl Approvals {
    pub fn new(url: &str, jwt: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder().timeout(ASK_TIMEOUT).build()?;
        Ok(Approvals {
            client,
            url: url.trim_end_matches('/').to_string(),
            jwt: jwt.to_string(),
        })
    }

    /// The decision on `approval_id`, however long the user takes. An execution the DO no longer knows is over:
    /// that is a denial (`by: cancel`), never a wait without end.
    pub async fn decision(&self, approval_id: &str) -> AgentDecision {
        let mut failures = 0;
        loop {
            match self.ask(approval_id).await {
                Answer::Decided(decision) => return decision,
                Answer::Pending => failures = 0,
                Answer::Over(status) => {
                    eprintln!(
                        "vf-agent: approval {approval_id}: the DO answered {status}; denying the tool call"
                    );
                    return over(approval_id);
                }
                Answer::Retry(why) => {
                    failures += 1;
                    let wait = RETRY.delay_ms(failures, fastrand::f64());
                    eprintln!("vf-agent: approval {approval_id}: {why}; asking again in {wait} ms");
                    tokio::time::sleep(Duration::from_millis(wait.into())).await;
                }
            }
        }
    }

    async fn ask(&self, approval_id: &str) -> Answer {
        let response = self
            .client
            .get(format!("{}/{approval_id}", self.url))
            .bearer_auth(&self.jwt)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Answer::Retry(format!("request failed: {}", describe(e))),
        };
        match response.status() {
            StatusCode::OK => match response.bytes().await {
                Ok(body) => match serde_json::from_slice(&body) {
                    Ok(decision) => Answer::Decided(decision),
                    Err(e) => Answer::Retry(format!("not a decision: {e}")),
                },
                Err(e) => Answer::Retry(format!("the decision did not arrive: {}", describe(e))),
            },
            StatusCode::NO_CONTENT => Answer::Pending,
            status if status.is_server_error() => {
                Answer::Retry(format!("the DO answered {status}"))
            }
            status => Answer::Over(status),
        }
    }
}

/// The denial of an approval whose execution is over.
fn over(approval_id: &str) -> AgentDecision {
    AgentDecision {
        approval_id: approval_id.to_string(),
        approved: false,
        scope: ApprovalScope::Once,
        message: None,
        by: DecidedBy::Cancel,
        answers: None,
    }
}
