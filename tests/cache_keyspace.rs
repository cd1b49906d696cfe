//! Keyspace analysis against a real Redis, run by a real `Runner`: keys, memory, types and TTLs
//! per prefix, the largest keys and the TTL policies' offenders match what was written; a sample
//! smaller than the keyspace stops early and says so; a user whose ACL refuses `MEMORY` still
//! gets the analysis, without sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::cache::keyspace::{KeyspaceReport, TtlPolicy};
use pitwall::config::Target;
use pitwall::harness::RedisServer;
use pitwall::jobs::{Backoff, Enqueued, JobState, Jobs, NewJob, Runner, RunnerSettings, kinds};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use serde_json::json;

/// Runs `analyze_keyspace` with `parameters` on a target at `url`; its report.
async fn analyze(url: String, parameters: serde_json::Value) -> KeyspaceReport {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let kinds = kinds::all(&[Target {
        ttl_policies: vec![TtlPolicy {
            prefix: "resp:".into(),
            max_ttl_secs: 3_600,
        }],
        ..Target::new("cache", TargetKind::Redis, SecretUrl::parse(&url).unwrap())
    }]);
    let _runner = Runner::spawn(
        jobs.clone(),
        kinds.clone(),
        RunnerSettings {
            name: "test".into(),
            workers: 1,
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(20),
            per_target: 1,
        },
    );
    let operator = Actor {
        name: "operator".into(),
        role: Role::Operator,
        client_addr: None,
    };
    let job = NewJob {
        target: Some("cache".into()),
        ..NewJob::new("analyze_keyspace", parameters)
    };
    let (plan, queued) = jobs
        .submit(&operator, &kinds, job, Some("cache"))
        .await
        .unwrap();
    assert!(!plan.destructive);
    let Some(Enqueued::New(id)) = queued else {
        panic!("{queued:?}")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = jobs.job(id).await.unwrap();
        if job.state.is_finished() {
            assert_eq!(job.state, JobState::Succeeded, "{job:?}");
            return serde_json::from_value(job.report.unwrap()).unwrap();
        }
        assert!(Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyspace_is_described_per_prefix_with_sizes_ttls_and_policy_offenders() {
    let redis = RedisServer::start().await.unwrap();
    let mut c = redis::Client::open(redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("SET")
            .arg(format!("cache:project:{i}"))
            .arg("v".repeat(100))
            .arg("EX")
            .arg(600)
            .ignore();
    }
    for i in 0..50 {
        // Model responses: 40 within the policy, 6 without a TTL, 4 kept a day.
        let mut set = redis::cmd("SET");
        set.arg(format!("resp:{i}")).arg("r");
        match i {
            0..40 => set.arg("EX").arg(1_800),
            40..46 => &mut set,
            _ => set.arg("EX").arg(86_400),
        };
        pipe.add_command(set).ignore();
    }
    pipe.cmd("SET")
        .arg("big:blob")
        .arg("x".repeat(50_000))
        .ignore();
    for i in 0..20 {
        pipe.cmd("SADD")
            .arg("tag:projects")
            .arg(format!("cache:project:{i}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();

    let r = analyze(redis.url(0), json!({})).await;
    assert!(r.complete && r.memory_known);
    assert_eq!((r.sampled, r.keys), (352, 352));
    let prefix = |p: &str| {
        r.prefixes
            .iter()
            .find(|s| s.prefix == p)
            .unwrap_or_else(|| panic!("{p}: {:?}", r.prefixes))
    };
    let projects = prefix("cache:project:");
    assert_eq!((projects.keys, projects.no_ttl), (300, 0));
    assert_eq!(projects.ttl_buckets, [0, 300, 0, 0, 0]);
    assert!(
        projects.memory_bytes >= 300 * 100,
        "{}",
        projects.memory_bytes
    );
    assert_eq!(projects.types, [("string".to_owned(), 300)]);
    let tags = prefix("tag:");
    assert_eq!(
        (tags.keys, tags.no_ttl, tags.types[0].0.as_str()),
        (1, 1, "set")
    );
    assert_eq!(r.top_keys[0].key, "big:blob");
    assert!(r.top_keys[0].memory_bytes >= 50_000);
    assert_eq!(r.top_keys[0].ttl_secs, None);
    let policy = &r.policies[0];
    assert_eq!((policy.keys, policy.no_ttl, policy.too_long), (50, 6, 4));
    assert_eq!(policy.samples.len(), 5);
    assert!(policy.samples.iter().all(|k| k.starts_with("resp:")));

    // A smaller sample stops early and says so.
    let r = analyze(redis.url(0), json!({"sample": 100, "count": 50})).await;
    assert!(!r.complete);
    assert_eq!((r.sampled, r.keys), (100, 352));

    // An ACL that refuses MEMORY: the analysis stands, without sizes.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("limited")
        .arg("on")
        .arg(">limited-pw")
        .arg("~*")
        .arg("+@all")
        .arg("-memory")
        .query_async(&mut c)
        .await
        .unwrap();
    let url = redis
        .url(0)
        .replacen("redis://", "redis://limited:limited-pw@", 1);
    let r = analyze(url, json!({})).await;
    assert!(!r.memory_known);
    assert_eq!(r.sampled, 352);
    assert!(r.top_keys.is_empty());
    assert_eq!(r.policies[0].no_ttl, 6);
}
