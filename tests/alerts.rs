//! The alert service against a real Redis: a rule fires from the collected figures, and when the
//! server stops, `up < 1` fires while the figure's rule reads no data (never healthy), then both
//! recover when it is back.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::alerts::{Alert, AlertState, Alerts, Rule, RuleSpec};
use pitwall::config::Target;
use pitwall::harness::RedisServer;
use pitwall::secret::SecretUrl;
use pitwall::status::{Schedule, StatusBoard};
use pitwall::telemetry::Telemetry;
use pitwall::telemetry::collect::for_targets;

const LIVE: Duration = Duration::from_millis(300);

fn rule(name: &str, expr: &str) -> Rule {
    Rule::parse(RuleSpec {
        name: name.into(),
        expr: expr.into(),
        summary: "{target}: {value}".into(),
        ..Default::default()
    })
    .unwrap()
}

async fn until(alerts: &Alerts, what: &str, done: impl Fn(&[Alert]) -> bool) -> Vec<Alert> {
    let started = Instant::now();
    loop {
        let now = alerts.snapshot();
        if done(&now) {
            return now.to_vec();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state(alerts: &[Alert], rule: &str) -> Option<AlertState> {
    alerts.iter().find(|a| a.rule == rule).map(|a| a.state)
}

#[tokio::test]
async fn rules_fire_from_the_collected_series_and_a_dead_redis_is_never_healthy() {
    let mut redis = RedisServer::start().await.unwrap();
    let targets = vec![Target::new(
        "cache",
        TargetKind::Redis,
        SecretUrl::parse(&redis.url(0)).unwrap(),
    )];
    let data = tempfile::tempdir().unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let collectors = for_targets(&targets, data.path(), streams.clone(), LIVE, LIVE, LIVE);
    let telemetry = Telemetry::spawn(collectors, LIVE, streams);
    let board = StatusBoard::spawn(
        &targets,
        Schedule {
            interval: LIVE,
            timeout: LIVE,
        },
    );
    let alerts = Alerts::spawn(
        vec![
            rule("down", "up < 1"),
            rule("connected", "redis/clients > 0"),
        ],
        telemetry,
        board,
    );

    let now = until(&alerts, "the collector's own connection fires", |a| {
        state(a, "connected") == Some(AlertState::Firing)
    })
    .await;
    assert_eq!(state(&now, "down"), None, "up: inactive");
    let fired = now.iter().find(|a| a.rule == "connected").unwrap().clone();
    assert_eq!(fired.target, "cache");
    assert!(fired.value.is_some_and(|v| v >= 1.0), "{fired:?}");

    redis.stop();
    let now = until(&alerts, "down fires, the figure has no data", |a| {
        state(a, "down") == Some(AlertState::Firing)
            && state(a, "connected") == Some(AlertState::NoData)
    })
    .await;
    let no_data = now.iter().find(|a| a.rule == "connected").unwrap();
    assert!(
        no_data
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("target down: ")),
        "{no_data:?}"
    );
    assert_eq!(no_data.value, None);

    redis.restart().await.unwrap();
    let now = until(&alerts, "back", |a| {
        state(a, "down") == Some(AlertState::Resolved)
            && state(a, "connected") == Some(AlertState::Firing)
    })
    .await;
    let resumed = now.iter().find(|a| a.rule == "connected").unwrap();
    assert_eq!(
        resumed.since_ms, fired.since_ms,
        "the outage does not restart a firing alert"
    );
}
