//! Alert evaluation time per tick: 500 rules over 20 Redis targets (every rule matches every
//! target: 10,000 instances), each series' ring filled with an hour of points at 2 s, windows of
//! 1, 5 and 15 minutes, a new point per series between ticks (outside the timing). Two runs: a
//! quiet one (no threshold is reached, every instance inactive) and a busy one (thresholds
//! among the wandering figures: about two thirds of the instances pending, firing or resolved,
//! each a summary to write and an alert to publish every tick).
//!
//! `cargo bench -p pitwall --bench alerts -- 300` (the argument is the number of ticks timed).

use std::time::{Duration, Instant};

use pitwall::alerts::{AlertState, Evaluator, Rule, RuleSpec};
use pitwall::telemetry::{Family, Health, Reading, Ring, Rings, Snapshot, metric, series_key};
use pitwall::{TargetKind, TargetState, TargetStatus};

const RULES: usize = 500;
const TARGETS: usize = 20;
const STEP_MS: u64 = 2_000;
/// An hour at 2 s: what the hub's rings keep.
const RING: usize = 1_800;
const TARGET_MS: f64 = 10.0;

const METRICS: [&str; 6] = [
    metric::HIT_RATE,
    metric::OPS,
    metric::MEMORY_OF_MAX,
    metric::EVICTIONS,
    metric::CLIENTS,
    metric::KEYS,
];
const AGGREGATIONS: [&str; 6] = ["last", "avg", "min", "max", "increase", "rate"];
const WINDOWS: [&str; 3] = ["1m", "5m", "15m"];

/// A figure that wanders, different per target and metric.
fn value(target: usize, metric: usize, t: u64) -> f64 {
    let phase = (t / STEP_MS) as f64 / 50.0 + target as f64 + metric as f64 * 0.7;
    50.0 + 45.0 * phase.sin()
}

fn rules(busy: bool) -> Vec<Rule> {
    (0..RULES)
        .map(|i| {
            let metric = METRICS[i % METRICS.len()];
            let aggregation = AGGREGATIONS[(i / METRICS.len()) % AGGREGATIONS.len()];
            let window = WINDOWS[i % WINDOWS.len()];
            let (op, threshold) = match busy {
                true if i % 2 == 0 => (">", 10 + (i * 7) % 80),
                true => ("<", 10 + (i * 7) % 80),
                false => (">", 1_000_000),
            };
            Rule::parse(RuleSpec {
                name: format!("rule_{i}"),
                expr: format!("{aggregation}(redis/{metric}[{window}]) {op} {threshold}"),
                pending_for: Some(["0s", "1m", "5m"][i % 3].into()),
                keep_firing_for: Some(["0s", "2m"][i % 2].into()),
                severity: Some("warning".into()),
                summary: "{target}: {metric} at {value}, limit {threshold}".into(),
                runbook_url: Some("/cache".into()),
                targets: Vec::new(),
            })
            .expect("bench rule")
        })
        .collect()
}

/// What one run measured.
struct Run {
    times: Vec<Duration>,
    shown: usize,
    firing: usize,
}

fn run(busy: bool, ticks: usize) -> Run {
    let names: Vec<String> = (0..TARGETS).map(|i| format!("redis-{i}")).collect();
    let statuses: Vec<TargetStatus> = names
        .iter()
        .map(|name| TargetStatus {
            name: name.clone(),
            kind: TargetKind::Redis,
            address: "127.0.0.1:6379".into(),
            state: TargetState::Up,
            version: None,
            latency_ms: None,
            error: None,
            checked_at_ms: 0,
            since_ms: 0,
        })
        .collect();
    let mut rings = Rings::new();
    let mut snapshot = Snapshot::default();
    let mut now = 0;
    let advance = |rings: &mut Rings, snapshot: &mut Snapshot, now: u64| {
        snapshot.readings.clear();
        for (t, name) in names.iter().enumerate() {
            let values: Vec<(String, f64)> = METRICS
                .iter()
                .enumerate()
                .map(|(m, metric)| (metric.to_string(), value(t, m, now)))
                .collect();
            for (metric, v) in &values {
                rings
                    .entry(series_key(name, Family::Redis, metric))
                    .or_insert_with(|| Ring::new(RING))
                    .push((now, *v));
            }
            snapshot.readings.push(Reading {
                target: name.clone(),
                family: Family::Redis,
                health: Health::Ok,
                since_ms: 0,
                at_ms: now,
                values,
            });
        }
        snapshot.seq += 1;
    };
    for _ in 0..RING {
        now += STEP_MS;
        advance(&mut rings, &mut snapshot, now);
    }

    let mut evaluator = Evaluator::new(rules(busy));
    let mut times: Vec<Duration> = Vec::with_capacity(ticks);
    let mut shown = 0;
    let mut firing = 0;
    for tick in 0..ticks + 20 {
        now += STEP_MS;
        advance(&mut rings, &mut snapshot, now);
        let started = Instant::now();
        let alerts = evaluator.evaluate(now, &snapshot, &statuses, &rings);
        let took = started.elapsed();
        // The first ticks create the instances; the steady state is what is timed.
        if tick >= 20 {
            times.push(took);
            shown += alerts.len();
            firing += alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .count();
        }
    }
    times.sort();
    Run {
        times,
        shown,
        firing,
    }
}

fn main() {
    let ticks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    println!(
        "{RULES} rules × {TARGETS} targets = {} instances, rings of {RING} points, {ticks} ticks",
        RULES * TARGETS
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (name, busy) in [("quiet", false), ("busy", true)] {
        let Run {
            times,
            shown,
            firing,
        } = run(busy, ticks);
        let median = ms(times[times.len() / 2]);
        let p99 = ms(times[(times.len() * 99 / 100).min(times.len() - 1)]);
        println!(
            "{name}: {} alerts per tick ({} firing); evaluation median {median:.2} ms, p99 {p99:.2} ms, max {:.2} ms (target under {TARGET_MS} ms): {}",
            shown / ticks,
            firing / ticks,
            ms(*times.last().expect("ticks")),
            if p99 < TARGET_MS { "met" } else { "MISSED" }
        );
    }
}
