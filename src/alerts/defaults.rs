//! The rules that run out of the box, over the metrics the collectors publish. A rule in
//! `[[alerts.rules]]` with one of these names replaces it; `alerts.disable` switches one off and
//! `alerts.defaults = false` all of them.

use super::{Rule, RuleSpec};

/// A default rule as written.
struct Preset {
    name: &'static str,
    expr: &'static str,
    pending_for: &'static str,
    keep_firing_for: &'static str,
    severity: &'static str,
    summary: &'static str,
    runbook_url: &'static str,
}

const DEFAULTS: [Preset; 12] = [
    Preset {
        name: "cache_hit_rate_low",
        expr: "avg(redis/hit_rate[1m]) < 80",
        pending_for: "5m",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "Redis {target}: {value} % of lookups hit, under {threshold} %",
        runbook_url: "/cache",
    },
    Preset {
        name: "query_p95_high",
        expr: "avg(statements/p95_ms[1m]) > 200",
        pending_for: "5m",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "PostgreSQL {target}: statement p95 {value} ms, over {threshold} ms",
        runbook_url: "/queries",
    },
    Preset {
        name: "queue_backlog",
        expr: "queues/depth:* > 1000",
        pending_for: "5m",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "Broker {target}: {metric} holds {value} messages, over {threshold}",
        runbook_url: "/queues",
    },
    Preset {
        name: "host_memory_high",
        expr: "avg(host/memory_pct[1m]) > 80",
        pending_for: "10m",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "Console host: memory {value} % in use, over {threshold} %",
        runbook_url: "/resources",
    },
    Preset {
        name: "host_cpu_high",
        expr: "avg(host/cpu_pct[1m]) > 70",
        pending_for: "10m",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "Console host: CPU {value} % busy, over {threshold} %",
        runbook_url: "/resources",
    },
    Preset {
        name: "host_disk_full",
        expr: "host/disk_pct > 90",
        pending_for: "0s",
        keep_firing_for: "0s",
        severity: "critical",
        summary: "Console host: data disk {value} % full, over {threshold} %",
        runbook_url: "/resources",
    },
    Preset {
        name: "redis_memory_high",
        expr: "redis/memory_of_max_pct > 90",
        pending_for: "0s",
        keep_firing_for: "2m",
        severity: "warning",
        summary: "Redis {target}: memory at {value} % of maxmemory, over {threshold} %",
        runbook_url: "/cache",
    },
    Preset {
        name: "redis_evictions",
        expr: "max(redis/evictions_per_sec[5m]) > 0",
        pending_for: "0s",
        keep_firing_for: "0s",
        severity: "warning",
        summary: "Redis {target}: evicting keys, up to {value} a second in the last 5 minutes",
        runbook_url: "/cache",
    },
    Preset {
        name: "redis_rejected_connections",
        expr: "max(redis/rejected_per_sec[5m]) > 0",
        pending_for: "0s",
        keep_firing_for: "0s",
        severity: "warning",
        summary: "Redis {target}: rejecting connections, up to {value} a second in the last 5 minutes",
        runbook_url: "/cache",
    },
    Preset {
        name: "target_down",
        expr: "up < 1",
        pending_for: "1m",
        keep_firing_for: "1m",
        severity: "critical",
        summary: "{target} does not answer its checks",
        runbook_url: "/",
    },
    Preset {
        name: "xid_wraparound_margin_low",
        expr: "database/xid_margin_pct < 50",
        pending_for: "0s",
        keep_firing_for: "0s",
        severity: "warning",
        summary: "PostgreSQL {target}: {value} % of transaction IDs left before wraparound, under {threshold} %",
        runbook_url: "/tables",
    },
    Preset {
        name: "invalid_indexes",
        expr: "database/invalid_indexes > 0",
        pending_for: "0s",
        keep_firing_for: "0s",
        severity: "warning",
        summary: "PostgreSQL {target}: {value} invalid indexes",
        runbook_url: "/queries",
    },
];

/// The names of the default rules.
pub fn names() -> impl Iterator<Item = &'static str> {
    DEFAULTS.iter().map(|d| d.name)
}

/// Every default rule as written, to adjust (a test shortening `for`) before [`Rule::parse`].
pub fn specs() -> Vec<RuleSpec> {
    DEFAULTS.iter().map(spec).collect()
}

/// Every default rule, checked.
pub fn rules() -> Vec<Rule> {
    DEFAULTS
        .iter()
        .map(|d| Rule::parse(spec(d)).expect("the default rules are checked by their tests"))
        .collect()
}

fn spec(d: &Preset) -> RuleSpec {
    RuleSpec {
        name: d.name.into(),
        expr: d.expr.into(),
        pending_for: Some(d.pending_for.into()),
        keep_firing_for: Some(d.keep_firing_for.into()),
        severity: Some(d.severity.into()),
        summary: d.summary.into(),
        runbook_url: Some(d.runbook_url.into()),
        targets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Family;

    #[test]
    fn every_default_checks_against_the_published_metrics() {
        for d in &DEFAULTS {
            if let Err(e) = Rule::parse(spec(d)) {
                panic!("{e}");
            }
        }
        let rules = rules();
        let mut names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DEFAULTS.len(), "names are unique");
        let families: Vec<Option<Family>> = rules.iter().map(|r| r.family()).collect();
        for f in [
            None,
            Some(Family::Host),
            Some(Family::Redis),
            Some(Family::Database),
            Some(Family::Statements),
            Some(Family::Queues),
        ] {
            assert!(families.contains(&f), "a default reads {f:?}");
        }
    }
}
