//! Alerts: rules over the collected series, judged on every telemetry snapshot.
//!
//! Each rule gives one instance per matching target (and per item, for a rule over a per-queue or
//! per-worker metric). An instance is inactive until its condition holds, pending while it holds
//! for less than the rule's `for`, then firing; it stays firing for `keep_firing_for` after the
//! condition clears (so a flapping figure does not page twice), then reads resolved for a while.
//! An instance that cannot be judged is never healthy: no data (the target is down, the series
//! stopped) or error (the collection failed while the target answers).
//!
//! The types here are shared with the browser; the rules, the defaults, the evaluator and the
//! service that runs it sit behind the `services` feature.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(feature = "services")]
pub mod defaults;
#[cfg(feature = "services")]
mod eval;
#[cfg(feature = "services")]
mod rule;
#[cfg(feature = "services")]
mod service;

#[cfg(feature = "services")]
pub use eval::Evaluator;
#[cfg(feature = "services")]
pub use rule::{Error, Result, Rule, RuleSpec};
#[cfg(feature = "services")]
pub use service::Alerts;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// Every severity, least urgent first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// The name in configs and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown severity `{s}`: use info, warning or critical"))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an alert instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, for less than the rule's `for` so far.
    Pending,
    /// The condition has held for `for` (or cleared less than `keep_firing_for` ago).
    Firing,
    /// It was firing and has cleared; shown for a while, then inactive.
    Resolved,
    /// The rule cannot be judged: the target is down or the series stopped.
    NoData,
    /// The rule cannot be judged: collecting the series failed while the target answers.
    Error,
}

impl AlertState {
    /// The name in URLs and the label shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
            AlertState::NoData => "no_data",
            AlertState::Error => "error",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instance of a rule as pages and notifications show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// The target the instance watches (`host` for the console's machine).
    pub target: String,
    /// What else tells this instance from the rule's others: `metric` (the concrete metric of a
    /// per-item rule, such as `depth:celery`).
    pub labels: Vec<(String, String)>,
    /// Where it is.
    pub state: AlertState,
    /// Since when it has been in this state, Unix ms.
    pub since_ms: u64,
    /// The figure last compared with the threshold (none without data).
    pub value: Option<f64>,
    /// The threshold of the rule.
    pub threshold: f64,
    /// How urgent.
    pub severity: Severity,
    /// The rule's summary with this instance's target, metric and value filled in.
    pub summary: String,
    /// Where to read what to do.
    pub runbook_url: Option<String>,
    /// Why there is no data or what failed (no data and error only).
    pub reason: Option<String>,
}
