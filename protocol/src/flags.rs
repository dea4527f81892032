//! The `agentChat` flag: which transport a user's browser uses (the DO path or the legacy WebSocket).
//!
//! Precedence: the kill switch beats everything, then a per-user override, then the rollout percent applied to
//! the user's stable bucket. The browser's own `?transport=` override is applied client side, on top.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The stored flag configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagConfig {
    /// Share of users (0–100) on the DO path.
    pub rollout_percent: u8,
    /// Sends everyone to the legacy path, whatever the percent.
    #[serde(default)]
    pub kill: bool,
    /// userId → forced value.
    #[serde(default)]
    pub overrides: BTreeMap<String, bool>,
}

impl Default for FlagConfig {
    /// V1.5 is the point of this stack: everyone is on the DO path until an operator says otherwise.
    fn default() -> Self {
        FlagConfig {
            rollout_percent: 100,
            kill: false,
            overrides: BTreeMap::new(),
        }
    }
}

/// Why a user got the value they got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagSource {
    Rollout,
    Override,
    Kill,
}

/// `GET /api/flags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagsResponse {
    pub agent_chat: bool,
    pub source: FlagSource,
    pub rollout_percent: u8,
    pub kill: bool,
}

/// `PUT /api/admin/flags`: each field present is changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagUpdate {
    #[serde(default)]
    pub rollout_percent: Option<u8>,
    #[serde(default)]
    pub kill: Option<bool>,
    /// userId → Some(value) to force, None to remove the override.
    #[serde(default)]
    pub overrides: BTreeMap<String, Option<bool>>,
}

impl FlagConfig {
    /// Applies an admin update; refuses a percent over 100.
    pub fn apply(&mut self, update: FlagUpdate) -> Result<(), String> {
        if let Some(p) = update.rollout_percent {
            if p > 100 {
                return Err(format!("rolloutPercent must be 0–100, got {p}"));
            }
            self.rollout_percent = p;
        }
        if let Some(kill) = update.kill {
            self.kill = kill;
        }
        for (user, value) in update.overrides {
            match value {
                Some(v) => self.overrides.insert(user, v),
                None => self.overrides.remove(&user),
            };
        }
        Ok(())
    }

    /// The flag for one user.
    pub fn evaluate(&self, user_id: &str) -> FlagsResponse {
        let (agent_chat, source) = if self.kill {
            (false, FlagSource::Kill)
        } else if let Some(&forced) = self.overrides.get(user_id) {
            (forced, FlagSource::Override)
        } else {
            (bucket(user_id) < self.rollout_percent, FlagSource::Rollout)
        };
        FlagsResponse {
            agent_chat,
            source,
            rollout_percent: self.rollout_percent,
            kill: self.kill,
        }
    }
}

/// A user's stable bucket in 0..100: the same user always lands in the same bucket, so raising the percent only
/// ever adds users to the DO path.
pub fn bucket(user_id: &str) -> u8 {
    let digest = Sha256::digest(user_id.as_bytes());
    (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("user-a"), bucket("user-a"));
        let mut seen = [0u32; 10];
        for i in 0..10_000 {
            seen[bucket(&format!("user-{i}")) as usize / 10] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn rollout_is_monotonic() {
        let users: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
        let mut cfg = FlagConfig::default();
        let mut previous = 0;
        for p in [0, 10, 50, 90, 100] {
            cfg.rollout_percent = p;
            let on: Vec<bool> = users.iter().map(|u| cfg.evaluate(u).agent_chat).collect();
            let count = on.iter().filter(|&&b| b).count();
            assert!(count >= previous);
            previous = count;
        }
        assert_eq!(previous, users.len());
        cfg.rollout_percent = 0;
        assert!(users.iter().all(|u| !cfg.evaluate(u).agent_chat));
    }

    #[test]
    fn kill_beats_override_beats_rollout() {
        let mut cfg = FlagConfig {
            rollout_percent: 0,
            ..FlagConfig::default()
        };
        cfg.apply(FlagUpdate {
            overrides: [("alice".to_string(), Some(true))].into(),
            ..FlagUpdate::default()
        })
        .unwrap();
        assert_eq!(cfg.evaluate("alice").source, FlagSource::Override);
        assert!(cfg.evaluate("alice").agent_chat);
        assert_eq!(cfg.evaluate("bob").source, FlagSource::Rollout);
        cfg.apply(FlagUpdate {
            kill: Some(true),
            ..FlagUpdate::default()
        })
        .unwrap();
        let alice = cfg.evaluate("alice");
        assert!(!alice.agent_chat);
        assert_eq!(alice.source, FlagSource::Kill);
    }

    #[test]
    fn percent_over_100_is_refused_and_changes_nothing() {
        let mut cfg = FlagConfig::default();
        assert!(cfg
            .apply(FlagUpdate {
                rollout_percent: Some(101),
                ..FlagUpdate::default()
            })
            .is_err());
        assert_eq!(cfg, FlagConfig::default());
    }
}
