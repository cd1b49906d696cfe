//! The evaluator: one instance per rule and matching target (and item, for a per-item rule),
//! each with its state machine, judged from the snapshot, target statuses and rings it is handed.
//! It never queries a target.

use std::collections::HashMap;
use std::time::Duration;

use super::rule::{Aggregation, Metric, Query};
use super::{Alert, AlertState, Rule, SeriesRef};
use crate::telemetry::{Health, Point, Reading, Rings, Snapshot};
use crate::{TargetState, TargetStatus};

/// How long a resolved instance is shown before it reads inactive.
pub const RESOLVED_SHOWN: Duration = Duration::from_secs(15 * 60);

/// Where an instance is, with what each state needs to move on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Inactive,
    Pending {
        since: u64,
    },
    Firing {
        since: u64,
        /// When the condition last held (for `keep_firing_for`).
        held: u64,
    },
    Resolved {
        since: u64,
    },
    /// `firing`: since when it was firing before the data went, so it resumes (or resolves).
    NoData {
        since: u64,
        firing: Option<u64>,
    },
    Error {
        since: u64,
        firing: Option<u64>,
    },
}

/// What one evaluation found.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// A figure, and whether the condition holds.
    Figure { value: f64, holds: bool },
    /// The target's figures are current but hold none of this metric in the window (a hit rate
    /// without lookups, a share of an unset `maxmemory`): the condition does not hold.
    Absent,
    /// Nothing to judge, and why.
    NoData(String),
    /// Collecting failed, and why.
    Error(String),
}

impl Phase {
    fn state(self) -> AlertState {
        match self {
            Phase::Inactive => AlertState::Inactive,
            Phase::Pending { .. } => AlertState::Pending,
            Phase::Firing { .. } => AlertState::Firing,
            Phase::Resolved { .. } => AlertState::Resolved,
            Phase::NoData { .. } => AlertState::NoData,
            Phase::Error { .. } => AlertState::Error,
        }
    }

    fn since(self) -> u64 {
        match self {
            Phase::Inactive => 0,
            Phase::Pending { since }
            | Phase::Firing { since, .. }
            | Phase::Resolved { since }
            | Phase::NoData { since, .. }
            | Phase::Error { since, .. } => since,
        }
    }

    /// Since when it has been firing, counting a gap without data or with errors.
    fn firing(self) -> Option<u64> {
        match self {
            Phase::Firing { since, .. } => Some(since),
            Phase::NoData { firing, .. } | Phase::Error { firing, .. } => firing,
            _ => None,
        }
    }

    /// The next phase after `outcome` at `now`.
    fn step(self, outcome: &Outcome, now: u64, rule: &Rule) -> Phase {
        let ms = |d: Duration| d.as_millis() as u64;
        match outcome {
            Outcome::Figure { holds: true, .. } => match self {
                Phase::Pending { since } if now.saturating_sub(since) >= ms(rule.pending_for) => {
                    Phase::Firing {
                        since: now,
                        held: now,
                    }
                }
                Phase::Pending { .. } => self,
                _ => match self.firing() {
                    Some(since) => Phase::Firing { since, held: now },
                    None if rule.pending_for.is_zero() => Phase::Firing {
                        since: now,
                        held: now,
                    },
                    None => Phase::Pending { since: now },
                },
            },
            Outcome::Figure { holds: false, .. } | Outcome::Absent => match self {
                Phase::Firing { held, .. }
                    if now.saturating_sub(held) < ms(rule.keep_firing_for) =>
                {
                    self
                }
                Phase::Resolved { since } if now.saturating_sub(since) < ms(RESOLVED_SHOWN) => self,
                _ if self.firing().is_some() => Phase::Resolved { since: now },
                _ => Phase::Inactive,
            },
            Outcome::NoData(_) => match self {
                Phase::NoData { .. } => self,
                _ => Phase::NoData {
                    since: now,
                    firing: self.firing(),
                },
            },
            Outcome::Error(_) => match self {
                Phase::Error { .. } => self,
                _ => Phase::Error {
                    since: now,
                    firing: self.firing(),
                },
            },
        }
    }
}

/// One rule's instance on one target and metric.
#[derive(Debug)]
struct Instance {
    phase: Phase,
    /// The evaluation that last saw its target and metric (instances not seen are dropped).
    seen: u64,
}

/// Judges every rule on every snapshot it is handed, keeping each instance's state between calls.
pub struct Evaluator {
    rules: Vec<Rule>,
    /// Per rule: instances by target, then by metric.
    instances: Vec<HashMap<String, HashMap<String, Instance>>>,
    round: u64,
    /// How many alerts the last evaluation returned (the next one's first guess).
    shown: usize,
    key: String,
}

impl Evaluator {
    /// An evaluator of `rules`, every instance inactive.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            instances: rules.iter().map(|_| HashMap::new()).collect(),
            rules,
            round: 0,
            shown: 0,
            key: String::new(),
        }
    }

    /// The rules it judges.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Judges every rule at `now_ms` from the latest `snapshot`, target `statuses` and `rings`,
    /// and returns every instance that is not inactive: firing, pending, error, no data, resolved,
    /// then by severity (most urgent first), then in rule order and snapshot order.
    pub fn evaluate(
        &mut self,
        now_ms: u64,
        snapshot: &Snapshot,
        statuses: &[TargetStatus],
        rings: &Rings,
    ) -> Vec<Alert> {
        self.round += 1;
        let round = self.round;
        let status_of = |target: &str| statuses.iter().find(|s| s.name == target);
        // The status of each reading's target, looked up once per evaluation.
        let reading_status: Vec<Option<&TargetStatus>> = snapshot
            .readings
            .iter()
            .map(|r| status_of(&r.target))
            .collect();
        let mut alerts = Vec::with_capacity(self.shown);
        for (rule, instances) in self.rules.iter().zip(&mut self.instances) {
            let wanted =
                |target: &str| rule.targets.is_empty() || rule.targets.iter().any(|t| t == target);
            let mut judge = |target: &str, metric: &str, outcome: Outcome| {
                let by_metric = match instances.get_mut(target) {
                    Some(m) => m,
                    None => instances.entry(target.to_owned()).or_default(),
                };
                let instance = match by_metric.get_mut(metric) {
                    Some(i) => i,
                    None => by_metric.entry(metric.to_owned()).or_insert(Instance {
                        phase: Phase::Inactive,
                        seen: round,
                    }),
                };
                instance.seen = round;
                let before = instance.phase;
                let after = before.step(&outcome, now_ms, rule);
                instance.phase = after;
                if before.state() != after.state() {
                    log(rule, target, metric, after.state(), &outcome);
                }
                if after != Phase::Inactive {
                    alerts.push(alert(rule, target, metric, after, outcome));
                }
            };
            match &rule.query {
                Query::Up => {
                    for status in statuses.iter().filter(|s| wanted(&s.name)) {
                        let outcome = match status.state {
                            TargetState::Up => figure(rule, 1.0),
                            TargetState::Down => figure(rule, 0.0),
                            TargetState::Unknown => Outcome::NoData("not checked yet".into()),
                        };
                        judge(&status.name, "up", outcome);
                    }
                }
                Query::Series {
                    family,
                    metric,
                    aggregation,
                    window,
                } => {
                    let since = now_ms.saturating_sub(window.as_millis() as u64);
                    for (reading, status) in snapshot.readings.iter().zip(&reading_status) {
                        if reading.family != *family || !wanted(&reading.target) {
                            continue;
                        }
                        let mut one = |name: &str| {
                            let outcome = match unjudgeable(reading, *status) {
                                Some(outcome) => outcome,
                                // The newest figure is the reading's own: one the target no
                                // longer reports (a `maxmemory` unset since) is absent now,
                                // whatever the window still holds.
                                None if *aggregation == Aggregation::Last
                                    && !reading.values.iter().any(|(n, _)| n == name) =>
                                {
                                    Outcome::Absent
                                }
                                None => {
                                    // The series key, without formatting: this runs per instance.
                                    self.key.clear();
                                    for part in
                                        [reading.target.as_str(), "/", family.as_str(), "/", name]
                                    {
                                        self.key.push_str(part);
                                    }
                                    let points = rings.get(&self.key).map(|r| r.iter_since(since));
                                    match points.and_then(|p| aggregate(p, *aggregation)) {
                                        Some(value) if value.is_finite() => figure(rule, value),
                                        Some(value) => {
                                            Outcome::Error(format!("{name} evaluated to {value}"))
                                        }
                                        // The collector stopped delivering: no data.
                                        None if reading.at_ms < since => Outcome::NoData(format!(
                                            "nothing collected in the last {}s",
                                            window.as_secs()
                                        )),
                                        None => Outcome::Absent,
                                    }
                                }
                            };
                            judge(&reading.target, name, outcome);
                        };
                        match metric {
                            Metric::Exact(name) => one(name),
                            Metric::Prefix(prefix) => {
                                for (name, _) in &reading.values {
                                    if name.starts_with(prefix) {
                                        one(name);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            instances.retain(|_, by_metric| {
                by_metric.retain(|_, i| i.seen == round);
                !by_metric.is_empty()
            });
        }
        // Stable: within a state and severity, rules stay in their order and targets in theirs.
        alerts.sort_by_key(|a| (rank(a.state), std::cmp::Reverse(a.severity)));
        self.shown = alerts.len();
        alerts
    }
}

fn figure(rule: &Rule, value: f64) -> Outcome {
    Outcome::Figure {
        value,
        holds: rule.op.holds(value, rule.threshold),
    }
}

/// Why a reading cannot be judged: its target is down (no data, never healthy), it was not
/// collected yet, or its collection failed while the target answers (error). A reading whose
/// collector stopped delivering reads no data once its window holds nothing.
fn unjudgeable(reading: &Reading, status: Option<&TargetStatus>) -> Option<Outcome> {
    if let Some(s) = status.filter(|s| s.state == TargetState::Down) {
        let why = s.error.as_deref().unwrap_or("no answer");
        return Some(Outcome::NoData(format!("target down: {why}")));
    }
    match &reading.health {
        Health::Ok => None,
        Health::Pending => Some(Outcome::NoData("not collected yet".into())),
        Health::Stale { reason } | Health::Down { reason } => Some(Outcome::Error(reason.clone())),
    }
}

/// The window's `points` (oldest first) as one figure; `None` without enough points.
fn aggregate<'a>(
    mut points: impl DoubleEndedIterator<Item = &'a Point>,
    aggregation: Aggregation,
) -> Option<f64> {
    match aggregation {
        Aggregation::Last => points.next_back().map(|p| p.1),
        Aggregation::Avg => {
            let (n, sum) = points.fold((0u32, 0.0), |(n, s), p| (n + 1, s + p.1));
            (n > 0).then(|| sum / f64::from(n))
        }
        Aggregation::Min => points.map(|p| p.1).reduce(f64::min),
        Aggregation::Max => points.map(|p| p.1).reduce(f64::max),
        Aggregation::Increase | Aggregation::Rate => {
            let first = *points.next()?;
            let (mut previous, mut grew) = (first, 0.0);
            for p in points {
                // A counter that went down was reset: it counted up from zero since.
                grew += if p.1 >= previous.1 {
                    p.1 - previous.1
                } else {
                    p.1
                };
                previous = *p;
            }
            let span_ms = previous.0.checked_sub(first.0).filter(|s| *s > 0)?;
            Some(match aggregation {
                Aggregation::Rate => grew * 1000.0 / span_ms as f64,
                _ => grew,
            })
        }
    }
}

fn alert(rule: &Rule, target: &str, metric: &str, phase: Phase, outcome: Outcome) -> Alert {
    let (value, reason) = match outcome {
        Outcome::Figure { value, .. } => (Some(value), None),
        Outcome::Absent => (None, None),
        Outcome::NoData(why) | Outcome::Error(why) => (None, Some(why)),
    };
    let labels = match &rule.query {
        Query::Series {
            metric: Metric::Prefix(_),
            ..
        } => vec![("metric".to_owned(), metric.to_owned())],
        _ => Vec::new(),
    };
    Alert {
        rule: rule.name.clone(),
        target: target.to_owned(),
        labels,
        state: phase.state(),
        since_ms: phase.since(),
        value,
        threshold: rule.threshold,
        severity: rule.severity,
        summary: rule.summary(target, metric, value),
        runbook_url: rule.runbook_url.clone(),
        reason,
        series: match &rule.query {
            Query::Series { family, .. } => Some(SeriesRef {
                family: *family,
                metric: metric.to_owned(),
            }),
            Query::Up => None,
        },
    }
}

/// The order states are listed in: what needs a person first.
fn rank(state: AlertState) -> u8 {
    match state {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Error => 2,
        AlertState::NoData => 3,
        AlertState::Resolved => 4,
        AlertState::Inactive => 5,
    }
}

/// Logs a change of state: firing as a warning, resolved and what cannot be judged as
/// information (every target reads no data until its first round), the rest for debugging.
fn log(rule: &Rule, target: &str, metric: &str, state: AlertState, outcome: &Outcome) {
    let name = rule.name();
    match (state, outcome) {
        (AlertState::Firing, Outcome::Figure { value, .. }) => {
            tracing::warn!(
                rule = name,
                target_name = target,
                metric,
                value,
                "alert firing"
            )
        }
        (_, Outcome::NoData(why) | Outcome::Error(why)) => tracing::info!(
            rule = name,
            target_name = target,
            metric,
            state = state.as_str(),
            "alert cannot be judged: {why}"
        ),
        (AlertState::Resolved, _) => {
            tracing::info!(rule = name, target_name = target, metric, "alert resolved")
        }
        _ => tracing::debug!(
            rule = name,
            target_name = target,
            metric,
            state = state.as_str(),
            "alert"
        ),
    }
}

#[cfg(test)]
mod tests;
