//! What the CLI says about its own progress (`system` lines, `rate_limit_event`) → the live `status` event.
//!
//! Shapes as the Agent SDKs type them (`SDKAPIRetryMessage`, `SDKStatusMessage`, `SDKTask*Message`,
//! `SDKRateLimitEvent`). Hook lines and compaction boundaries are noise to a reader; a subtype this version does
//! not know is counted as skipped.

use serde::Deserialize;
use vf_protocol::{Event, StatusKind};

/// A `system` line, as much of it as we use (the fields of every subtype we read, all optional but `subtype`).
#[derive(Deserialize)]
pub(super) struct SystemLine {
    pub subtype: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// `api_retry`.
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    retry_delay_ms: Option<u64>,
    #[serde(default)]
    error_status: Option<u16>,
    #[serde(default)]
    error: Option<String>,
    /// `status`: `compacting`, `requesting` or null; `task_notification`: `completed`, `failed` or `stopped`.
    #[serde(default)]
    status: Option<String>,
    /// `task_*`.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    last_tool_name: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

/// What a `system` line means to a reader.
pub(super) enum Said {
    Status(Event),
    /// Known and of no interest (hooks, the compaction boundary, "requesting"…).
    Noise,
    /// A subtype this version does not know.
    Unknown,
}

fn status(kind: StatusKind, message: String) -> Said {
    Said::Status(Event::Status {
        kind,
        message,
        attempt: None,
        retry_in_ms: None,
    })
}

impl SystemLine {
    /// The `status` event of this line (not for `init`, which the translator reads itself).
    pub fn status(self) -> Said {
        match self.subtype.as_str() {
            "api_retry" => Said::Status(Event::Status {
                kind: StatusKind::ApiRetry,
                message: self.retry_message(),
                attempt: self.attempt,
                retry_in_ms: self.retry_delay_ms,
            }),
            "status" => match self.status.as_deref() {
                Some("compacting") => status(
                    StatusKind::Compacting,
                    "Compacting the conversation…".into(),
                ),
                _ => Said::Noise,
            },
            "task_started" => status(
                StatusKind::Task,
                format!("Subagent started: {}", self.description.unwrap_or_default()),
            ),
            "task_progress" => {
                let mut message = format!("Subagent: {}", self.description.unwrap_or_default());
                if let Some(tool) = self.last_tool_name {
                    message.push_str(&format!(" ({tool})"));
                }
                status(StatusKind::Task, message)
            }
            "task_notification" => {
                let outcome = self.status.unwrap_or_else(|| "ended".into());
                let mut message = format!("Subagent {outcome}");
                if let Some(summary) = self.summary.filter(|s| !s.trim().is_empty()) {
                    message.push_str(&format!(": {summary}"));
                }
                status(StatusKind::Task, message)
            }
            "compact_boundary"
            | "task_updated"
            | "hook_started"
            | "hook_progress"
            | "hook_response"
            | "control_request_progress" => Said::Noise,
            _ => Said::Unknown,
        }
    }

    /// "The API is overloaded: retry 3 of 10 in 16 s".
    fn retry_message(&self) -> String {
        let cause = match (self.error.as_deref(), self.error_status) {
            (Some("overloaded"), _) => "The API is overloaded".to_string(),
            (Some("rate_limit"), _) => "The API is rate limiting".to_string(),
            (Some("authentication_failed"), _) => "The API refused the credentials".to_string(),
            (_, Some(code)) => format!("The API answered {code}"),
            (_, None) => "The API is unreachable".to_string(),
        };
        let mut message = cause;
        if let Some(attempt) = self.attempt {
            message.push_str(&format!(": retry {attempt}"));
            if let Some(max) = self.max_retries {
                message.push_str(&format!(" of {max}"));
            }
            if let Some(ms) = self.retry_delay_ms {
                message.push_str(&format!(" in {}", seconds(ms)));
            }
        }
        message
    }
}

/// `ms` as a reader wants it: "800 ms", "16 s", "2 min 5 s".
fn seconds(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{} s", (ms + 500) / 1000),
        _ => {
            let s = (ms + 500) / 1000;
            format!("{} min {} s", s / 60, s % 60)
        }
    }
}

/// `rate_limit_event.rate_limit_info`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RateLimitInfo {
    status: String,
    #[serde(default)]
    resets_at: Option<u64>,
    #[serde(default)]
    rate_limit_type: Option<String>,
    #[serde(default)]
    utilization: Option<f64>,
}

impl RateLimitInfo {
    /// A status when the user should know (nearing or past the limit); none while within it.
    pub fn status(self) -> Option<Event> {
        let window = match self.rate_limit_type.as_deref() {
            Some("five_hour") => " (5-hour window)",
            Some("seven_day") | Some("seven_day_opus") | Some("seven_day_sonnet") => " (weekly)",
            Some("overage") => " (extra usage)",
            _ => "",
        };
        let mut message = match self.status.as_str() {
            "allowed_warning" => format!("Nearing the usage limit{window}"),
            "rejected" => format!("Usage limit reached{window}"),
            _ => return None,
        };
        if let Some(used) = self.utilization.filter(|u| (0.0..=1.0).contains(u)) {
            message.push_str(&format!(", {} % used", (used * 100.0).round() as u32));
        }
        if let Some(at) = self.resets_at {
            message.push_str(&format!(
                "; resets at {:02}:{:02} UTC",
                at / 3600 % 24,
                at / 60 % 60
            ));
        }
        Some(Event::Status {
            kind: StatusKind::RateLimit,
            message,
            attempt: None,
            retry_in_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn said(line: serde_json::Value) -> Option<(StatusKind, String, Option<u32>, Option<u64>)> {
        match serde_json::from_value::<SystemLine>(line).unwrap().status() {
            Said::Status(Event::Status {
                kind,
                message,
                attempt,
                retry_in_ms,
            }) => Some((kind, message, attempt, retry_in_ms)),
            _ => None,
        }
    }

    #[test]
    fn api_retries_say_why_which_attempt_and_when() {
        let line = json!({"type": "system", "subtype": "api_retry", "attempt": 3, "max_retries": 10,
            "retry_delay_ms": 16_000, "error_status": null, "error": "unknown",
            "uuid": "00000000-0000-4000-8000-000000000001", "session_id": "s"});
        assert_eq!(
            said(line),
            Some((
                StatusKind::ApiRetry,
                "The API is unreachable: retry 3 of 10 in 16 s".into(),
                Some(3),
                Some(16_000)
            ))
        );
        let line = json!({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
            "retry_delay_ms": 500, "error_status": 529, "error": "overloaded"});
        assert_eq!(
            said(line).unwrap().1,
            "The API is overloaded: retry 1 of 10 in 500 ms"
        );
        let line = json!({"type": "system", "subtype": "api_retry", "attempt": 2, "max_retries": 10,
            "retry_delay_ms": 125_000, "error_status": 500, "error": "server_error"});
        assert_eq!(
            said(line).unwrap().1,
            "The API answered 500: retry 2 of 10 in 2 min 5 s"
        );
    }

    #[test]
    fn compacting_and_tasks_are_shown_hooks_are_not() {
        let compacting = json!({"type": "system", "subtype": "status", "status": "compacting"});
        assert_eq!(said(compacting).unwrap().1, "Compacting the conversation…");
        assert!(said(json!({"type": "system", "subtype": "status", "status": null})).is_none());
        let progress = json!({"type": "system", "subtype": "task_progress", "task_id": "t",
            "description": "Find the config", "last_tool_name": "Grep",
            "usage": {"total_tokens": 1, "tool_uses": 1, "duration_ms": 5}});
        assert_eq!(
            said(progress).unwrap(),
            (
                StatusKind::Task,
                "Subagent: Find the config (Grep)".into(),
                None,
                None
            )
        );
        let ended = json!({"type": "system", "subtype": "task_notification", "task_id": "t",
            "status": "completed", "output_file": "/tmp/x", "summary": "Found it"});
        assert_eq!(said(ended).unwrap().1, "Subagent completed: Found it");
        for noise in [
            "hook_started",
            "hook_response",
            "compact_boundary",
            "task_updated",
        ] {
            let line: SystemLine =
                serde_json::from_value(json!({"type": "system", "subtype": noise})).unwrap();
            assert!(matches!(line.status(), Said::Noise), "{noise}");
        }
        let line: SystemLine =
            serde_json::from_value(json!({"type": "system", "subtype": "brand_new"})).unwrap();
        assert!(matches!(line.status(), Said::Unknown));
    }

    #[test]
    fn rate_limits_speak_only_near_or_past_the_limit() {
        let info = |value: serde_json::Value| {
            serde_json::from_value::<RateLimitInfo>(value)
                .unwrap()
                .status()
        };
        assert_eq!(
            info(json!({"status": "allowed", "rateLimitType": "five_hour"})),
            None
        );
        let warning = info(
            json!({"status": "allowed_warning", "rateLimitType": "five_hour",
            "utilization": 0.853, "resetsAt": 1_764_547_200u64 + 3_600 * 14 + 60 * 30}),
        );
        assert!(
            matches!(warning, Some(Event::Status { kind: StatusKind::RateLimit, message, .. })
            if message == "Nearing the usage limit (5-hour window), 85 % used; resets at 14:30 UTC")
        );
        let rejected = info(json!({"status": "rejected", "rateLimitType": "seven_day"}));
        assert!(matches!(rejected, Some(Event::Status { message, .. })
            if message == "Usage limit reached (weekly)"));
    }
}
