//! The Overview's headline figures: one per area, each linking to its page.

use pitwall::telemetry::{Family, Snapshot, metric};

use crate::components::Figure;
use pitwall::Unit;

/// The headlines for the targets in `s`: the first Redis, PostgreSQL and Celery target, and the host.
pub fn headlines(s: &Snapshot) -> Vec<Figure> {
    let first = |family: Family| s.family(family).next().map(|r| r.target.clone());
    let mut out = Vec::new();
    let mut add = |title, target: &str, family, metric, unit, href, note| {
        out.push(Figure {
            href: Some(href),
            note,
            ..Figure::new(title, target, family, metric, unit)
        });
    };
    if let Some(t) = first(Family::Redis) {
        add(
            "Cache hit rate",
            &t,
            Family::Redis,
            metric::HIT_RATE,
            Unit::Percent,
            "/cache",
            None,
        );
    }
    if let Some(t) = first(Family::Statements) {
        let note = Some("derived from per-statement means in pg_stat_statements");
        add(
            "Query p95",
            &t,
            Family::Statements,
            metric::P95_MS,
            Unit::Millis,
            "/queries",
            note,
        );
    }
    if let Some(t) = first(Family::Queues) {
        add(
            "Queue depth",
            &t,
            Family::Queues,
            metric::QUEUE_DEPTH,
            Unit::Count,
            "/queues",
            None,
        );
    }
    add(
        "CPU",
        "host",
        Family::Host,
        metric::CPU,
        Unit::Percent,
        "/resources",
        None,
    );
    add(
        "Memory",
        "host",
        Family::Host,
        metric::MEMORY,
        Unit::Percent,
        "/resources",
        None,
    );
    out
}

#[cfg(test)]
mod tests {
    use pitwall::telemetry::{Health, Reading};

    use super::*;

    #[test]
    fn one_headline_per_area() {
        let reading = |target: &str, family| Reading {
            target: target.into(),
            family,
            health: Health::Pending,
            since_ms: 0,
            at_ms: 0,
            values: vec![],
        };
        let s = Snapshot {
            seq: 1,
            readings: vec![
                reading("host", Family::Host),
                reading("db", Family::Database),
                reading("db", Family::Statements),
                reading("cache", Family::Redis),
                reading("cache2", Family::Redis),
            ],
        };
        let titles: Vec<_> = headlines(&s)
            .iter()
            .map(|h| (h.title, h.target.clone()))
            .collect();
        assert_eq!(
            titles,
            [
                ("Cache hit rate", "cache".to_owned()),
                ("Query p95", "db".to_owned()),
                ("CPU", "host".to_owned()),
                ("Memory", "host".to_owned())
            ]
        );
    }
}
