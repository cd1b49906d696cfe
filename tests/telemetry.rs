//! The collectors against the demo's real PostgreSQL, Redis and Celery traffic: figures appear,
//! rates need two rounds, a stopped or frozen service marks only its own families, and counters
//! reset by a restart never turn into negative rates.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use pitwall::demo::{Demo, Scale};
use pitwall::store::{Bucket, SqliteStore, Store};
use pitwall::telemetry::collect::for_targets;
use pitwall::telemetry::collect::{HostCollector, Scheduled};
use pitwall::telemetry::{Family, Health, HistorySettings, Intervals, Snapshot, Telemetry, metric};

const INTERVALS: Intervals = Intervals {
    live: Duration::from_millis(400),
    slow: Duration::from_millis(800),
    timeout: Duration::from_millis(300),
};

fn start(demo: &Demo, data: &std::path::Path) -> Telemetry {
    let streams = Arc::new(AtomicUsize::new(0));
    let collectors = for_targets(
        &demo.targets(),
        data,
        streams.clone(),
        INTERVALS.live,
        INTERVALS.slow,
        INTERVALS.timeout,
    );
    Telemetry::spawn(collectors, INTERVALS.timeout, streams)
}

async fn until(t: &Telemetry, what: &str, within: Duration, done: impl Fn(&Snapshot) -> bool) {
    let started = Instant::now();
    loop {
        let s = t.snapshot();
        if done(&s) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{what} not within {within:?}: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has(s: &Snapshot, target: &str, family: Family, metrics: &[&str]) -> bool {
    s.reading(target, family)
        .is_some_and(|r| r.health == Health::Ok && metrics.iter().all(|m| r.value(m).is_some()))
}

#[tokio::test]
async fn collectors_measure_the_demo_and_survive_outages() {
    let scale = Scale {
        pace: Duration::from_millis(10),
        ..Scale::SMALL
    };
    let mut demo = Demo::start(scale).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = start(&demo, dir.path());
    let all = Duration::from_secs(15);
    until(&t, "every family with figures", all, |s| {
        has(
            s,
            "cache",
            Family::Redis,
            &[
                metric::HIT_RATE,
                metric::OPS,
                metric::USED_MEMORY,
                metric::KEYS,
            ],
        ) && has(
            s,
            "app-db",
            Family::Database,
            &[
                metric::TPS,
                metric::CACHE_HIT,
                metric::CONNECTIONS,
                metric::XID_MARGIN,
                metric::INVALID_INDEXES,
            ],
        ) && has(
            s,
            "app-db",
            Family::Statements,
            &[metric::CALLS, metric::P95_MS, metric::MEAN_MS],
        ) && has(
            s,
            "tasks",
            Family::Queues,
            &[
                metric::QUEUE_DEPTH,
                metric::UNACKED,
                &metric::queue_depth("reports"),
            ],
        ) && has(s, "host", Family::Host, &[metric::CPU, metric::MEMORY])
            && has(s, "console", Family::Console, &[metric::RSS])
    })
    .await;
    let s = t.snapshot();
    let calls = s
        .reading("app-db", Family::Statements)
        .unwrap()
        .value(metric::CALLS)
        .unwrap();
    assert!(calls > 0.0, "the workload runs statements: {calls}");
    assert!(!t.history("cache", Family::Redis, metric::OPS, 0).is_empty());

    // Redis stops: its families go down within two intervals; PostgreSQL keeps updating.
    demo.redis.stop();
    let stopped = Instant::now();
    until(&t, "redis down", Duration::from_secs(3), |s| {
        matches!(
            s.reading("cache", Family::Redis).unwrap().health,
            Health::Down { .. }
        ) && matches!(
            s.reading("tasks", Family::Queues).unwrap().health,
            Health::Down { .. }
        )
    })
    .await;
    // Two intervals and a round's timeout, plus slack for a loaded machine.
    let limit = INTERVALS.live * 2 + INTERVALS.timeout + Duration::from_secs(1);
    assert!(
        stopped.elapsed() < limit,
        "down after {:?}",
        stopped.elapsed()
    );
    let db_at = t
        .snapshot()
        .reading("app-db", Family::Database)
        .unwrap()
        .at_ms;
    until(&t, "postgres still updating", Duration::from_secs(3), |s| {
        s.reading("app-db", Family::Database).unwrap().at_ms > db_at
    })
    .await;

    // Restarted with empty counters: the first round after it has no rates, never negative ones.
    demo.redis.restart().await.unwrap();
    until(&t, "redis back", Duration::from_secs(5), |s| {
        has(s, "cache", Family::Redis, &[metric::USED_MEMORY])
    })
    .await;
    for _ in 0..5 {
        let s = t.snapshot();
        for r in &s.readings {
            for (m, v) in &r.values {
                assert!(
                    *v >= 0.0 && v.is_finite(),
                    "{}/{:?}/{m} = {v}",
                    r.target,
                    r.family
                );
            }
        }
        tokio::time::sleep(INTERVALS.live).await;
    }

    // PostgreSQL frozen: its rounds time out (stale, then down once the connection is given up),
    // with the reason, and the last figures kept.
    demo.postgres.pause().unwrap();
    until(&t, "postgres not answering", Duration::from_secs(3), |s| {
        let r = s.reading("app-db", Family::Database).unwrap();
        let reason = match &r.health {
            Health::Stale { reason } | Health::Down { reason } => reason.as_str(),
            _ => "",
        };
        reason == "no answer within 300 ms" && r.value(metric::CONNECTIONS).is_some()
    })
    .await;
    demo.postgres.resume().unwrap();
    until(&t, "postgres back", Duration::from_secs(5), |s| {
        has(s, "app-db", Family::Database, &[metric::CONNECTIONS])
    })
    .await;
    demo.stop_workload();
}

#[tokio::test]
async fn history_is_downsampled_into_the_store_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let settings = HistorySettings {
        bucket: Duration::from_secs(1),
        retention: Duration::from_secs(3_600),
    };
    let host = |dir: &std::path::Path| {
        let collector = Box::new(HostCollector::new(dir));
        vec![Scheduled {
            collector,
            interval: Duration::from_millis(200),
        }]
    };
    let started = pitwall::status::now_ms();
    let t = Telemetry::spawn(
        host(dir.path()),
        Duration::from_millis(150),
        Arc::new(AtomicUsize::new(0)),
    )
    .persist(store.clone(), settings);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let key = "host/host/memory_pct";
    let saved = store.buckets(key, 1_000, 0, u64::MAX).await.unwrap();
    assert!(saved.len() >= 2, "{saved:?}");
    for b in &saved {
        assert!(
            b.samples >= 1
                && b.min <= b.avg
                && b.avg <= b.max
                && b.min <= b.last
                && b.last <= b.max,
            "{b:?}"
        );
        assert_eq!(b.start_ms % 1_000, 0);
    }
    let samples: u32 = saved.iter().map(|b| b.samples).sum();
    assert!(
        samples >= 5,
        "points every 200 ms for 3.5 s were summarised: {saved:?}"
    );
    drop(t);

    // A new hub on the same store: its rings are empty, the range comes from the buckets.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = Telemetry::spawn(
        host(dir.path()),
        Duration::from_millis(150),
        Arc::new(AtomicUsize::new(0)),
    )
    .persist(store.clone(), settings);
    let points = restarted
        .range("host", Family::Host, metric::MEMORY, started)
        .await;
    assert!(points.len() >= 2, "{points:?}");
    assert!(
        points[0].0 < started + 3_500,
        "the first point predates the restart: {points:?}"
    );

    // Retention: old buckets go.
    let old = Bucket {
        series: key.into(),
        start_ms: 1_000,
        width_ms: 1_000,
        min: 1.0,
        avg: 1.0,
        max: 1.0,
        last: 1.0,
        samples: 1,
    };
    store.save_buckets(&[old]).await.unwrap();
    assert_eq!(store.prune_buckets(started - 1_000).await.unwrap(), 1);
    assert!(
        !store
            .buckets(key, 1_000, 0, u64::MAX)
            .await
            .unwrap()
            .is_empty(),
        "recent buckets stay"
    );
}
