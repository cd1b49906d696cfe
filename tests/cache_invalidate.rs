//! Tag and pattern invalidation against a real Redis, run by a real `Runner` on a real SQLite
//! store: every tagged key is unlinked and no other key is touched while a probe measures Redis'
//! latency; a cancel, or Redis frozen mid-job, leaves the keys and the tag consistent and a retry
//! finishes; a pattern is purged within its cap; pruning removes exactly the dead members; a
//! viewer cannot start them; bad tags and patterns are refused before anything reaches Redis.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{until_progress, until_state};
use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::config::Target;
use pitwall::harness::RedisServer;
use pitwall::jobs::{
    Backoff, Enqueued, Error, JobState, Jobs, Kinds, NewJob, Runner, RunnerSettings, kinds,
};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use tempfile::TempDir;

fn actor(role: Role) -> Actor {
    Actor {
        name: format!("{role}"),
        role,
        client_addr: None,
    }
}

struct Setup {
    redis: RedisServer,
    jobs: Jobs,
    kinds: Kinds,
    _runner: Runner,
    _dir: TempDir,
}

async fn setup() -> Setup {
    let redis = RedisServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let kinds = kinds::all(&[Target::new(
        "cache",
        TargetKind::Redis,
        SecretUrl::parse(&redis.url(0)).unwrap(),
    )]);
    let runner = Runner::spawn(
        jobs.clone(),
        kinds.clone(),
        RunnerSettings {
            name: "test".into(),
            workers: 1,
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(50),
            per_target: 1,
        },
    );
    Setup {
        redis,
        jobs,
        kinds,
        _runner: runner,
        _dir: dir,
    }
}

impl Setup {
    async fn conn(&self) -> MultiplexedConnection {
        redis::Client::open(self.redis.url(0))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn submit(&self, role: Role, parameters: serde_json::Value) -> Result<i64, Error> {
        self.submit_kind("invalidate_tag", role, parameters).await
    }

    async fn submit_kind(
        &self,
        kind: &str,
        role: Role,
        parameters: serde_json::Value,
    ) -> Result<i64, Error> {
        let mut job = NewJob::new(kind, parameters);
        job.target = Some("cache".into());
        match self
            .jobs
            .submit(&actor(role), &self.kinds, job, Some("cache"))
            .await?
        {
            (_, Some(Enqueued::New(id))) => Ok(id),
            other => panic!("{other:?}"),
        }
    }
}

async fn exists(c: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<u64>(c)
        .await
        .unwrap()
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_is_purged_key_by_key_and_nothing_else_is_touched() {
    let s = setup().await;
    let mut c = s.conn().await;
    const TAGGED: usize = 1_000_000;
    tagged(&mut c, "tag:big", "item:", TAGGED).await;
    // Stale members (their keys expired long ago), keys outside the tag, and another tag that
    // shares nothing with it.
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.cmd("SADD")
            .arg("tag:big")
            .arg(format!("expired:{i}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    tagged(&mut c, "tag:keep", "other:", 500).await;

    // The plan counts the members and shows a sample of the keys; nothing is unlinked yet.
    let mut job = NewJob::new("invalidate_tag", json!({"tag": "big"}));
    job.target = Some("cache".into());
    let (plan, queued) = s
        .jobs
        .submit(&actor(Role::Operator), &s.kinds, job, None)
        .await
        .unwrap();
    assert!(queued.is_none());
    assert!(plan.destructive);
    assert_eq!(plan.total, Some(TAGGED as u64 + 100));
    assert!(
        plan.summary
            .starts_with("Unlinks the 1000100 keys tagged `big` (tag:big)"),
        "{}",
        plan.summary
    );
    assert_eq!(
        plan.statements
            .iter()
            .filter(|s| s.starts_with("UNLINK "))
            .count(),
        10
    );
    assert!(exists(&mut c, "item:0").await);

    // A probe measures Redis' latency every few milliseconds while the job runs.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (stop, mut c) = (stop.clone(), s.conn().await);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
                samples.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            samples
        })
    };
    let id = s
        .submit(Role::Operator, json!({"tag": "big", "batch": 1000}))
        .await
        .unwrap();
    let done = until_state(&s.jobs, id, JobState::Succeeded).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = probe.await.unwrap();
    samples.sort();
    let p99 = samples[samples.len() * 99 / 100];
    assert!(samples.len() > 20, "{} samples", samples.len());
    assert!(
        p99 < Duration::from_millis(50),
        "p99 PING while purging: {p99:?}"
    );

    let report = done.report.unwrap();
    assert_eq!(report["unlinked"], TAGGED as u64);
    assert_eq!(report["already_gone"], 100);
    assert_eq!(report["members_left"], 0);
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(
        dbsize, 501,
        "the 500 other keys and their tag, nothing else"
    );
    assert!(!exists(&mut c, "tag:big").await);
    assert!(exists(&mut c, "other:499").await);
    let keep: u64 = redis::cmd("SCARD")
        .arg("tag:keep")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keep, 500);

    // A tag that is not there, another type under the prefix, a pattern, and a viewer.
    let refused = |r: Result<i64, Error>| r.unwrap_err().to_string();
    let _: () = redis::cmd("SET")
        .arg("tag:version")
        .arg("3")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        refused(s.submit(Role::Operator, json!({"tag": "big"})).await).contains("no tag `big`")
    );
    assert!(
        refused(s.submit(Role::Operator, json!({"tag": "version"})).await)
            .contains("is a string, not a set of keys")
    );
    assert!(
        refused(s.submit(Role::Operator, json!({"tag": "item:*"})).await).contains("not a pattern")
    );
    assert!(matches!(
        s.submit(Role::Viewer, json!({"tag": "keep"})).await,
        Err(Error::Forbidden(Role::Operator))
    ));
    assert_eq!(keep, 500, "a refused job touches nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_leaves_the_keys_and_the_tag_consistent() {
    let s = setup().await;
    let mut c = s.conn().await;
    // Laravel's layout: a sorted set scored by expiry.
    let mut pipe = redis::pipe();
    for i in 0..3_000 {
        pipe.cmd("SET").arg(format!("page:{i}")).arg("v").ignore();
        pipe.cmd("ZADD")
            .arg("tag:pages:entries")
            .arg(-1)
            .arg(format!("page:{i}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let id = s
        .submit(
            Role::Operator,
            json!({"tag": "pages", "batch": 50, "pause_ms": 20}),
        )
        .await
        .unwrap();
    // Let a few batches go, then cancel.
    until_progress(&s.jobs, id, 200).await;
    s.jobs.cancel(&actor(Role::Operator), id).await.unwrap();
    until_state(&s.jobs, id, JobState::Cancelled).await;

    // Every key still there is still tagged, and every key gone has left the tag.
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("tag:pages:entries")
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        members.len() > 100 && members.len() < 2_800,
        "{}",
        members.len()
    );
    let mut left = 0;
    for i in 0..3_000 {
        let key = format!("page:{i}");
        let tagged = members.contains(&key);
        assert_eq!(exists(&mut c, &key).await, tagged, "{key}");
        left += usize::from(tagged);
    }
    assert_eq!(left, members.len());

    // A retry takes what is left.
    let (_, again) = s
        .jobs
        .retry(&actor(Role::Operator), &s.kinds, id, Some("cache"))
        .await
        .unwrap();
    let Enqueued::New(again) = again else {
        panic!("{again:?}")
    };
    let done = until_state(&s.jobs, again, JobState::Succeeded).await;
    assert_eq!(done.report.unwrap()["unlinked"], members.len() as u64);
    assert!(!exists(&mut c, "tag:pages:entries").await);
}

/// Writes keys `{prefix}0` to `{prefix}{n-1}`, each named in set `tag` after it is written.
async fn tagged(c: &mut MultiplexedConnection, tag: &str, prefix: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let key = format!("{prefix}{i}");
            pipe.cmd("SET").arg(&key).arg("v").ignore();
            pipe.cmd("SADD").arg(tag).arg(&key).ignore();
        }
        let _: () = pipe.query_async(c).await.unwrap();
    }
}

/// Every key of `prefix{0..n}` that exists is named by `tag`, and every member of `tag` exists.
async fn consistent(c: &mut MultiplexedConnection, tag: &str, prefix: &str, n: usize) -> usize {
    let members: std::collections::HashSet<String> = redis::cmd("SMEMBERS")
        .arg(tag)
        .query_async(c)
        .await
        .unwrap();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("EXISTS").arg(format!("{prefix}{i}"));
    }
    let exist: Vec<u64> = pipe.query_async(c).await.unwrap();
    for (i, e) in exist.iter().enumerate() {
        let key = format!("{prefix}{i}");
        assert_eq!(*e == 1, members.contains(&key), "{key}");
    }
    members.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_mid_job_fails_it_cleanly_and_a_retry_finishes() {
    let s = setup().await;
    let mut c = s.conn().await;
    const N: usize = 20_000;
    tagged(&mut c, "tag:frozen", "frozen:", N).await;
    let id = s
        .submit(
            Role::Operator,
            json!({"tag": "frozen", "batch": 100, "pause_ms": 10}),
        )
        .await
        .unwrap();
    until_progress(&s.jobs, id, 500).await;
    // SIGSTOP: the server holds its connections but answers nothing, like a hung host.
    s.redis.pause().unwrap();
    let failed = until_state(&s.jobs, id, JobState::Dead).await;
    s.redis.resume().unwrap();
    let error = failed.last_error.unwrap();
    assert!(error.contains("no answer within 5"), "{error}");
    // The commands Redis had read run when it resumes; keys and tag agree either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = consistent(&mut c, "tag:frozen", "frozen:", N).await;
    assert!(left > 0 && left < N, "{left}");

    let (_, Enqueued::New(again)) = s
        .jobs
        .retry(&actor(Role::Operator), &s.kinds, id, Some("cache"))
        .await
        .unwrap()
    else {
        panic!("not queued again")
    };
    let done = until_state(&s.jobs, again, JobState::Succeeded).await;
    assert_eq!(done.report.unwrap()["unlinked"], left as u64);
    assert_eq!(consistent(&mut c, "tag:frozen", "frozen:", N).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_is_purged_within_its_cap_and_pruning_drops_exactly_the_dead_members() {
    let s = setup().await;
    let mut c = s.conn().await;
    tagged(&mut c, "tag:sessions", "sess:", 5_000).await;
    tagged(&mut c, "tag:sessions", "session-kept:", 300).await;
    let count = |c: &mut MultiplexedConnection, prefix: &'static str, n: usize| {
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.cmd("EXISTS").arg(format!("{prefix}{i}"));
        }
        let mut c = c.clone();
        async move {
            let e: Vec<u64> = pipe.query_async(&mut c).await.unwrap();
            e.iter().sum::<u64>()
        }
    };

    // The dry run counts the matches and shows a sample; nothing is unlinked.
    let mut job = NewJob::new("invalidate_pattern", json!({"pattern": "sess:*"}));
    job.target = Some("cache".into());
    let (plan, queued) = s
        .jobs
        .submit(&actor(Role::Operator), &s.kinds, job, None)
        .await
        .unwrap();
    assert!(queued.is_none() && plan.destructive);
    assert_eq!(plan.total, Some(5_000));
    assert!(
        plan.summary
            .starts_with("Dry run: 5000 of the 5301 keys match."),
        "{}",
        plan.summary
    );
    assert_eq!(
        plan.statements
            .iter()
            .filter(|s| s.starts_with("UNLINK sess:"))
            .count(),
        10
    );
    assert_eq!(count(&mut c, "sess:", 5_000).await, 5_000);

    let refused = |r: Result<i64, Error>| r.unwrap_err().to_string();
    let m = refused(
        s.submit_kind(
            "invalidate_pattern",
            Role::Operator,
            json!({"pattern": "*"}),
        )
        .await,
    );
    assert!(m.contains("matches too much"), "{m}");
    assert!(matches!(
        s.submit_kind(
            "invalidate_pattern",
            Role::Viewer,
            json!({"pattern": "sess:*"})
        )
        .await,
        Err(Error::Forbidden(Role::Operator))
    ));

    // The cap stops it; a second run takes the rest; nothing else is touched.
    let id = s
        .submit_kind(
            "invalidate_pattern",
            Role::Operator,
            json!({"pattern": "sess:*", "cap": 2000}),
        )
        .await
        .unwrap();
    let report = until_state(&s.jobs, id, JobState::Succeeded)
        .await
        .report
        .unwrap();
    assert_eq!(
        (report["unlinked"].as_u64(), report["capped"].as_bool()),
        (Some(2_000), Some(true))
    );
    assert_eq!(count(&mut c, "sess:", 5_000).await, 3_000);
    let id = s
        .submit_kind(
            "invalidate_pattern",
            Role::Operator,
            json!({"pattern": "sess:*"}),
        )
        .await
        .unwrap();
    let report = until_state(&s.jobs, id, JobState::Succeeded)
        .await
        .report
        .unwrap();
    assert_eq!(
        (report["unlinked"].as_u64(), report["capped"].as_bool()),
        (Some(3_000), Some(false))
    );
    assert_eq!(count(&mut c, "sess:", 5_000).await, 0);
    assert_eq!(count(&mut c, "session-kept:", 300).await, 300);

    // The tag still names the 5,000 unlinked keys: pruning removes exactly those.
    let id = s
        .submit_kind(
            "prune_tag",
            Role::Operator,
            json!({"tag": "sessions", "batch": 400}),
        )
        .await
        .unwrap();
    let report = until_state(&s.jobs, id, JobState::Succeeded)
        .await
        .report
        .unwrap();
    assert_eq!(
        (report["removed"].as_u64(), report["members_left"].as_u64()),
        (Some(5_000), Some(300))
    );
    // A shrinking set may hand a live member to SSCAN twice; none is ever skipped.
    assert!(report["checked"].as_u64().unwrap() >= 5_300, "{report}");
    assert_eq!(
        consistent(&mut c, "tag:sessions", "session-kept:", 300).await,
        300
    );
    assert_eq!(count(&mut c, "session-kept:", 300).await, 300);
}
