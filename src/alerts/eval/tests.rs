use super::*;
use crate::TargetKind;
use crate::alerts::{RuleSpec, Severity};
use crate::telemetry::{Family, Ring, series_key};

const S: u64 = 1_000;
const M: u64 = 60 * S;

fn rule(name: &str, expr: &str, pending_for: &str, keep_firing_for: &str) -> Rule {
    Rule::parse(RuleSpec {
        name: name.into(),
        expr: expr.into(),
        pending_for: Some(pending_for.into()),
        keep_firing_for: Some(keep_firing_for.into()),
        summary: "{target} {metric} {value}".into(),
        ..Default::default()
    })
    .unwrap()
}

/// What the collectors and the status board would have published, driven by a fake clock.
#[derive(Default)]
struct World {
    snapshot: Snapshot,
    statuses: Vec<TargetStatus>,
    rings: Rings,
}

impl World {
    fn target(&mut self, name: &str, kind: TargetKind, family: Family) {
        self.statuses.push(TargetStatus {
            name: name.into(),
            kind,
            address: "127.0.0.1:1".into(),
            state: TargetState::Up,
            version: None,
            latency_ms: None,
            error: None,
            checked_at_ms: 0,
            since_ms: 0,
        });
        self.snapshot.readings.push(Reading {
            target: name.into(),
            family,
            health: Health::Ok,
            since_ms: 0,
            at_ms: 0,
            values: Vec::new(),
        });
    }

    fn reading(&mut self, target: &str) -> &mut Reading {
        self.snapshot
            .readings
            .iter_mut()
            .find(|r| r.target == target)
            .unwrap()
    }

    /// A collection round of `target` at `at` with these figures.
    fn collect(&mut self, target: &str, at: u64, values: &[(&str, f64)]) {
        let r = self.reading(target);
        r.health = Health::Ok;
        r.at_ms = at;
        r.values = values.iter().map(|(m, v)| (m.to_string(), *v)).collect();
        let family = r.family;
        for (m, v) in values {
            self.rings
                .entry(series_key(target, family, m))
                .or_insert_with(|| Ring::new(1_800))
                .push((at, *v));
        }
    }

    fn state_of(&mut self, target: &str, state: TargetState, error: Option<&str>) {
        let s = self.statuses.iter_mut().find(|s| s.name == target).unwrap();
        s.state = state;
        s.error = error.map(str::to_owned);
    }
}

fn run(e: &mut Evaluator, w: &World, now: u64) -> Vec<Alert> {
    e.evaluate(now, &w.snapshot, &w.statuses, &w.rings)
}

/// `(rule, target, state, since)` of every alert.
fn states(alerts: &[Alert]) -> Vec<(&str, &str, AlertState, u64)> {
    alerts
        .iter()
        .map(|a| (a.rule.as_str(), a.target.as_str(), a.state, a.since_ms))
        .collect()
}

fn redis_world() -> World {
    let mut w = World::default();
    w.target("cache", TargetKind::Redis, Family::Redis);
    w
}

#[test]
fn pending_then_firing_after_for_then_resolved_then_inactive() {
    let mut e = Evaluator::new(vec![rule(
        "mem",
        "redis/memory_of_max_pct > 90",
        "1m",
        "0s",
    )]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("memory_of_max_pct", 50.0)]);
    assert!(
        run(&mut e, &w, 0).is_empty(),
        "below the threshold: inactive"
    );

    w.collect("cache", 10 * S, &[("memory_of_max_pct", 95.0)]);
    let a = run(&mut e, &w, 10 * S);
    assert_eq!(states(&a), [("mem", "cache", AlertState::Pending, 10 * S)]);
    assert_eq!(a[0].value, Some(95.0));
    assert_eq!(a[0].threshold, 90.0);
    assert_eq!(a[0].summary, "cache memory_of_max_pct 95");
    assert_eq!(a[0].severity, Severity::Warning);

    w.collect("cache", 69 * S, &[("memory_of_max_pct", 96.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 69 * S)),
        [("mem", "cache", AlertState::Pending, 10 * S)],
        "not for a minute yet"
    );
    w.collect("cache", 70 * S, &[("memory_of_max_pct", 96.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 70 * S)),
        [("mem", "cache", AlertState::Firing, 70 * S)]
    );

    w.collect("cache", 72 * S, &[("memory_of_max_pct", 40.0)]);
    let a = run(&mut e, &w, 72 * S);
    assert_eq!(states(&a), [("mem", "cache", AlertState::Resolved, 72 * S)]);
    assert_eq!(a[0].value, Some(40.0));

    let later = 72 * S + RESOLVED_SHOWN.as_millis() as u64;
    w.collect("cache", later - S, &[("memory_of_max_pct", 40.0)]);
    assert_eq!(
        states(&run(&mut e, &w, later - S)),
        [("mem", "cache", AlertState::Resolved, 72 * S)]
    );
    w.collect("cache", later, &[("memory_of_max_pct", 40.0)]);
    assert!(run(&mut e, &w, later).is_empty(), "resolved long enough");
}

#[test]
fn a_pending_alert_that_clears_goes_back_to_inactive() {
    let mut e = Evaluator::new(vec![rule(
        "mem",
        "redis/memory_of_max_pct > 90",
        "1m",
        "5m",
    )]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("memory_of_max_pct", 95.0)]);
    assert_eq!(run(&mut e, &w, 0)[0].state, AlertState::Pending);
    w.collect("cache", 2 * S, &[("memory_of_max_pct", 85.0)]);
    assert!(run(&mut e, &w, 2 * S).is_empty());
    w.collect("cache", 4 * S, &[("memory_of_max_pct", 95.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 4 * S)),
        [("mem", "cache", AlertState::Pending, 4 * S)],
        "pending starts afresh"
    );
}

#[test]
fn keep_firing_for_holds_a_flapping_alert() {
    let mut e = Evaluator::new(vec![rule(
        "mem",
        "redis/memory_of_max_pct > 90",
        "0s",
        "2m",
    )]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("memory_of_max_pct", 95.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 0)),
        [("mem", "cache", AlertState::Firing, 0)],
        "no `for`: fires at once"
    );
    // Flapping: below, above, below — it keeps firing since 0.
    for (t, v) in [(10, 80.0), (20, 95.0), (30, 80.0), (139, 80.0)] {
        w.collect("cache", t * S, &[("memory_of_max_pct", v)]);
        assert_eq!(
            states(&run(&mut e, &w, t * S)),
            [("mem", "cache", AlertState::Firing, 0)],
            "at {t}s"
        );
    }
    // Two minutes after it last held (at 20 s).
    w.collect("cache", 140 * S, &[("memory_of_max_pct", 80.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 140 * S)),
        [("mem", "cache", AlertState::Resolved, 140 * S)]
    );
}

#[test]
fn no_data_when_the_series_stops_and_firing_resumes_when_it_returns() {
    let mut e = Evaluator::new(vec![rule(
        "mem",
        "redis/memory_of_max_pct > 90",
        "0s",
        "0s",
    )]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("memory_of_max_pct", 95.0)]);
    assert_eq!(run(&mut e, &w, 0)[0].state, AlertState::Firing);
    // The collector stops delivering, while its reading still says its last round went well.
    assert_eq!(
        run(&mut e, &w, 60 * S)[0].state,
        AlertState::Firing,
        "the last point is within the minute"
    );
    let a = run(&mut e, &w, 61 * S);
    assert_eq!(states(&a), [("mem", "cache", AlertState::NoData, 61 * S)]);
    assert_eq!(a[0].value, None);
    assert_eq!(
        a[0].reason.as_deref(),
        Some("nothing collected in the last 60s")
    );
    assert_eq!(a[0].summary, "cache memory_of_max_pct –");
    w.collect("cache", 70 * S, &[("memory_of_max_pct", 97.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 70 * S)),
        [("mem", "cache", AlertState::Firing, 0)],
        "the gap does not restart it"
    );
    assert_eq!(run(&mut e, &w, 140 * S)[0].state, AlertState::NoData);
    w.collect("cache", 150 * S, &[("memory_of_max_pct", 10.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 150 * S)),
        [("mem", "cache", AlertState::Resolved, 150 * S)],
        "back below: resolved, not silently inactive"
    );
}

#[test]
fn a_figure_the_target_does_not_have_is_not_missing_data() {
    let mut e = Evaluator::new(vec![rule(
        "mem",
        "redis/memory_of_max_pct > 90",
        "0s",
        "0s",
    )]);
    let mut w = redis_world();
    // No `maxmemory`: the collector publishes no share of it, round after round.
    for t in 0..40 {
        w.collect("cache", t * 2 * S, &[("used_memory_bytes", 1e6)]);
        assert!(run(&mut e, &w, t * 2 * S).is_empty(), "at {t}");
    }
    w.collect("cache", 80 * S, &[("memory_of_max_pct", 95.0)]);
    assert_eq!(run(&mut e, &w, 80 * S)[0].state, AlertState::Firing);
    // The limit is lifted: the share is gone from the next round on, so the alert resolves at
    // once (the window still holding the old figure does not keep it firing).
    w.collect("cache", 82 * S, &[("used_memory_bytes", 1e6)]);
    let a = run(&mut e, &w, 82 * S);
    assert_eq!(states(&a), [("mem", "cache", AlertState::Resolved, 82 * S)]);
    assert_eq!((a[0].value, a[0].reason.as_deref()), (None, None));
}

#[test]
fn a_down_target_fires_target_down_and_never_reads_healthy() {
    let mut e = Evaluator::new(vec![
        rule("down", "up < 1", "1m", "0s"),
        rule("mem", "redis/memory_of_max_pct > 90", "0s", "0s"),
    ]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("memory_of_max_pct", 20.0)]);
    assert!(run(&mut e, &w, 0).is_empty(), "up and healthy");

    w.state_of("cache", TargetState::Down, Some("connection refused"));
    // The collector keeps its last figures (healthy, recent) a moment longer: they do not count.
    let a = run(&mut e, &w, 2 * S);
    assert_eq!(
        states(&a),
        [
            ("down", "cache", AlertState::Pending, 2 * S),
            ("mem", "cache", AlertState::NoData, 2 * S),
        ]
    );
    assert_eq!(a[0].value, Some(0.0));
    assert_eq!(
        a[1].reason.as_deref(),
        Some("target down: connection refused")
    );
    w.reading("cache").health = Health::Down {
        reason: "connection refused".into(),
    };
    let a = run(&mut e, &w, 62 * S);
    assert_eq!(
        states(&a),
        [
            ("down", "cache", AlertState::Firing, 62 * S),
            ("mem", "cache", AlertState::NoData, 2 * S),
        ]
    );

    w.state_of("cache", TargetState::Up, None);
    w.collect("cache", 64 * S, &[("memory_of_max_pct", 20.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 64 * S)),
        [("down", "cache", AlertState::Resolved, 64 * S)],
        "back: target_down resolves, the memory rule was never firing"
    );
}

#[test]
fn unchecked_targets_and_failed_collections_are_not_healthy() {
    let mut e = Evaluator::new(vec![
        rule("down", "up < 1", "0s", "0s"),
        rule("mem", "redis/memory_of_max_pct > 90", "0s", "0s"),
    ]);
    let mut w = redis_world();
    w.state_of("cache", TargetState::Unknown, None);
    w.reading("cache").health = Health::Pending;
    let a = run(&mut e, &w, S);
    assert_eq!(
        states(&a),
        [
            ("down", "cache", AlertState::NoData, S),
            ("mem", "cache", AlertState::NoData, S),
        ]
    );
    assert_eq!(a[0].reason.as_deref(), Some("not checked yet"));
    assert_eq!(a[1].reason.as_deref(), Some("not collected yet"));

    // The target answers its checks, but collecting fails.
    w.state_of("cache", TargetState::Up, None);
    w.reading("cache").health = Health::Stale {
        reason: "no answer within 1500 ms".into(),
    };
    let a = run(&mut e, &w, 2 * S);
    assert_eq!(states(&a), [("mem", "cache", AlertState::Error, 2 * S)]);
    assert_eq!(a[0].reason.as_deref(), Some("no answer within 1500 ms"));
}

#[test]
fn per_item_rules_make_one_instance_per_item() {
    let mut e = Evaluator::new(vec![rule("backlog", "queues/depth:* > 1000", "0s", "0s")]);
    let mut w = World::default();
    w.target("broker", TargetKind::Celery, Family::Queues);
    w.collect(
        "broker",
        0,
        &[
            ("depth", 2600.0),
            ("depth:emails", 2500.0),
            ("depth:reports", 100.0),
        ],
    );
    let a = run(&mut e, &w, 0);
    assert_eq!(states(&a), [("backlog", "broker", AlertState::Firing, 0)]);
    assert_eq!(
        a[0].labels,
        [("metric".to_owned(), "depth:emails".to_owned())]
    );
    assert_eq!(a[0].summary, "broker depth:emails 2500");
    // The queue goes away: its instance with it.
    w.collect(
        "broker",
        2 * S,
        &[("depth", 100.0), ("depth:reports", 100.0)],
    );
    assert!(run(&mut e, &w, 2 * S).is_empty());
    assert_eq!(e.instances[0]["broker"].len(), 1);
}

#[test]
fn rules_limited_to_targets_and_families() {
    let mut limited = rule("mem", "redis/memory_of_max_pct > 90", "0s", "0s");
    limited.targets = vec!["sessions".into()];
    let mut e = Evaluator::new(vec![
        limited,
        rule("p95", "statements/p95_ms > 1", "0s", "0s"),
    ]);
    let mut w = redis_world();
    w.target("sessions", TargetKind::Redis, Family::Redis);
    w.collect("cache", 0, &[("memory_of_max_pct", 99.0)]);
    w.collect("sessions", 0, &[("memory_of_max_pct", 99.0)]);
    assert_eq!(
        states(&run(&mut e, &w, 0)),
        [("mem", "sessions", AlertState::Firing, 0)]
    );
}

#[test]
fn aggregations_over_the_window() {
    let points: Vec<Point> = vec![
        (0, 10.0),
        (S, 30.0),
        (2 * S, 20.0),
        (3 * S, 5.0),
        (4 * S, 8.0),
    ];
    let agg = |a| aggregate(points.iter(), a);
    assert_eq!(agg(Aggregation::Last), Some(8.0));
    assert_eq!(agg(Aggregation::Avg), Some(14.6));
    assert_eq!(agg(Aggregation::Min), Some(5.0));
    assert_eq!(agg(Aggregation::Max), Some(30.0));
    // 10 → 30 (+20), → 20 reset (+20), → 5 reset (+5), → 8 (+3).
    assert_eq!(agg(Aggregation::Increase), Some(48.0));
    assert_eq!(agg(Aggregation::Rate), Some(12.0));
    assert_eq!(aggregate([].iter(), Aggregation::Avg), None);
    assert_eq!(aggregate([(0, 1.0)].iter(), Aggregation::Increase), None);

    // Through the rings: only the points inside the window count.
    let mut e = Evaluator::new(vec![rule(
        "ev",
        "max(redis/evictions_per_sec[5m]) > 0",
        "0s",
        "0s",
    )]);
    let mut w = redis_world();
    w.collect("cache", 0, &[("evictions_per_sec", 3.0)]);
    w.collect("cache", 4 * M, &[("evictions_per_sec", 0.0)]);
    assert_eq!(run(&mut e, &w, 4 * M)[0].value, Some(3.0));
    w.collect("cache", 5 * M + S, &[("evictions_per_sec", 0.0)]);
    let a = run(&mut e, &w, 5 * M + S);
    assert_eq!(
        states(&a),
        [("ev", "cache", AlertState::Resolved, 5 * M + S)]
    );
    assert_eq!(a[0].value, Some(0.0));
}
