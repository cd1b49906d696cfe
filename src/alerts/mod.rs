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

use crate::format::percent_encode;
use crate::telemetry::Family;

#[cfg(feature = "services")]
pub mod defaults;
#[cfg(feature = "services")]
mod eval;
#[cfg(feature = "services")]
pub mod notify;
#[cfg(feature = "services")]
mod oncall;
#[cfg(feature = "services")]
mod rule;
#[cfg(feature = "services")]
mod service;

#[cfg(feature = "services")]
pub use eval::Evaluator;
#[cfg(feature = "services")]
pub use oncall::{Error as OnCallError, OnCall};
#[cfg(feature = "services")]
pub use rule::{Error, Result, Rule, RuleSpec, parse_duration};
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
    /// The series the rule judges for this instance (none for `up`, which reads target checks).
    pub series: Option<SeriesRef>,
}

/// One collected series: a family and metric of the alert's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRef {
    /// The family.
    pub family: Family,
    /// The metric, such as `hit_rate` or `depth:celery`.
    pub metric: String,
}

impl Alert {
    /// Every label of the instance: `alertname`, `target`, `severity`, then the rule's own
    /// (`metric`). Silences match on these and notifications carry them.
    pub fn label_set(&self) -> Vec<(String, String)> {
        let mut set = vec![
            ("alertname".to_owned(), self.rule.clone()),
            ("target".to_owned(), self.target.clone()),
            ("severity".to_owned(), self.severity.as_str().to_owned()),
        ];
        set.extend(self.labels.iter().cloned());
        set
    }

    /// The instance's identity across evaluations and restarts, such as
    /// `queue_backlog{target="broker",metric="depth:celery"}`.
    pub fn key(&self) -> String {
        let mut key = format!("{}{{target={:?}", self.rule, self.target);
        for (k, v) in &self.labels {
            key.push_str(&format!(",{k}={v:?}"));
        }
        key.push('}');
        key
    }

    /// A short stable hash of [`Alert::key`] (16 hex digits, FNV-1a), Alertmanager's
    /// `fingerprint`.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key())
    }

    /// The console path that charts this instance's series around `at_ms` with the threshold
    /// drawn (none for `up` rules).
    pub fn chart_path(&self, at_ms: u64) -> Option<String> {
        let series = self.series.as_ref()?;
        Some(format!(
            "/alerts/chart?rule={}&target={}&family={}&metric={}&at={at_ms}&threshold={}",
            percent_encode(&self.rule),
            percent_encode(&self.target),
            series.family.as_str(),
            percent_encode(&series.metric),
            self.threshold
        ))
    }
}

/// A short stable hash of an instance's key (16 hex digits, FNV-1a).
pub fn fingerprint(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// One label a silence requires: `name=value`, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// The label's name, such as `alertname` or `target`.
    pub name: String,
    /// The value it must have.
    pub value: String,
}

impl Matcher {
    /// Parses `name=value, name=value`: at least one matcher, names from letters, digits and `_`,
    /// values not empty; the error names the part that is wrong.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<Matcher>, String> {
        let mut out: Vec<Matcher> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("matcher `{part}` is not `label=value`"));
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "matcher `{part}`: a label name is letters, digits and `_`"
                ));
            }
            if value.is_empty() {
                return Err(format!("matcher `{part}`: the value is empty"));
            }
            if out.iter().any(|m| m.name == name) {
                return Err(format!("label `{name}` is matched twice"));
            }
            out.push(Matcher {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        if out.is_empty() {
            return Err(
                "a silence needs at least one matcher, such as `alertname=queue_backlog`".into(),
            );
        }
        Ok(out)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// A silence: alerts whose labels match all its matchers notify nobody and raise no banner
/// until it ends or is expired by hand. They stay listed, marked silenced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its number.
    pub id: i64,
    /// What it silences: every matcher must hold.
    pub matchers: Vec<Matcher>,
    /// Why, as its author wrote.
    pub comment: String,
    /// Who made it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_ms: u64,
    /// When it ends by itself, Unix ms.
    pub ends_ms: u64,
    /// When someone ended it early, and who.
    pub expired: Option<(u64, String)>,
}

impl Silence {
    /// Whether it silences at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        self.expired.is_none() && now_ms < self.ends_ms
    }

    /// Whether every matcher holds for `alert`'s labels.
    pub fn matches(&self, alert: &Alert) -> bool {
        let labels = alert.label_set();
        self.matchers
            .iter()
            .all(|m| labels.iter().any(|(k, v)| *k == m.name && *v == m.value))
    }
}

/// An acknowledgement: someone is on a firing alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// When, Unix ms.
    pub at_ms: u64,
    /// What they wrote.
    pub comment: String,
}

/// One firing episode of an alert instance, from firing to resolved: the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Its number.
    pub id: i64,
    /// The instance ([`Alert::key`]).
    pub key: String,
    /// The rule.
    pub rule: String,
    /// The target.
    pub target: String,
    /// Every label ([`Alert::label_set`]).
    pub labels: Vec<(String, String)>,
    /// The severity.
    pub severity: Severity,
    /// The summary when it started firing.
    pub summary: String,
    /// Where to read what to do.
    pub runbook_url: Option<String>,
    /// The value when it started firing.
    pub value: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// When it started firing, Unix ms.
    pub started_ms: u64,
    /// When it resolved (none while it fires).
    pub ended_ms: Option<u64>,
    /// Who acknowledged it, if anyone.
    pub ack: Option<Ack>,
    /// The console path of its chart at the start.
    pub chart: Option<String>,
}

/// An alert as the on-call page shows it: acknowledged or not, silenced or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnCallAlert {
    /// The instance.
    pub alert: Alert,
    /// Its firing episode's acknowledgement.
    pub ack: Option<Ack>,
    /// The silence that holds it, if any.
    pub silenced_by: Option<i64>,
}

/// What the on-call page shows at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnCallView {
    /// When it was read, Unix ms.
    pub read_at_ms: u64,
    /// Every instance that is not inactive, most urgent first.
    pub alerts: Vec<OnCallAlert>,
    /// The silences in force, and those ended in the last day, newest first.
    pub silences: Vec<Silence>,
}

impl OnCallAlert {
    /// Whether it belongs in the banner: critical, firing and not silenced.
    pub fn pages(&self) -> bool {
        self.alert.severity == Severity::Critical
            && self.alert.state == AlertState::Firing
            && self.silenced_by.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            rule: "queue_backlog".into(),
            target: "broker".into(),
            labels: vec![("metric".into(), "depth:celery".into())],
            state: AlertState::Firing,
            since_ms: 1_000,
            value: Some(1500.0),
            threshold: 1000.0,
            severity: Severity::Warning,
            summary: "deep".into(),
            runbook_url: None,
            reason: None,
            series: Some(SeriesRef {
                family: Family::Queues,
                metric: "depth:celery".into(),
            }),
        }
    }

    #[test]
    fn an_instance_has_a_stable_key_fingerprint_and_chart() {
        let a = alert();
        assert_eq!(
            a.key(),
            "queue_backlog{target=\"broker\",metric=\"depth:celery\"}"
        );
        assert_eq!(a.fingerprint(), alert().fingerprint());
        assert_ne!(
            a.fingerprint(),
            Alert {
                target: "other".into(),
                ..alert()
            }
            .fingerprint()
        );
        assert_eq!(
            a.chart_path(1_000).unwrap(),
            "/alerts/chart?rule=queue_backlog&target=broker&family=queues&metric=depth%3Acelery&at=1000&threshold=1000"
        );
        let up = Alert {
            series: None,
            ..alert()
        };
        assert_eq!(up.chart_path(1_000), None);
    }

    #[test]
    fn matchers_parse_with_the_reason_and_silences_match_every_one() {
        let m = Matcher::parse_list(" alertname=queue_backlog , target=\"broker\" ").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].to_string(), "target=broker");
        for (text, why) in [
            ("", "at least one matcher"),
            ("target", "not `label=value`"),
            ("tar get=x", "letters, digits"),
            ("target=", "value is empty"),
            ("target=a, target=b", "matched twice"),
        ] {
            let e = Matcher::parse_list(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        let silence = |matchers: &str, expired| Silence {
            id: 1,
            matchers: Matcher::parse_list(matchers).unwrap(),
            comment: "c".into(),
            created_by: "otto".into(),
            created_ms: 0,
            ends_ms: 10_000,
            expired,
        };
        assert!(silence("alertname=queue_backlog, metric=depth:celery", None).matches(&alert()));
        assert!(silence("severity=warning", None).matches(&alert()));
        assert!(!silence("alertname=queue_backlog, target=db", None).matches(&alert()));
        assert!(silence("target=broker", None).active(9_999));
        assert!(!silence("target=broker", None).active(10_000));
        assert!(!silence("target=broker", Some((5, "otto".into()))).active(6));
        let paging = OnCallAlert {
            alert: Alert {
                severity: Severity::Critical,
                ..alert()
            },
            ack: None,
            silenced_by: None,
        };
        assert!(paging.pages());
        assert!(
            !OnCallAlert {
                silenced_by: Some(1),
                ..paging.clone()
            }
            .pages()
        );
    }
}
