//! Tag invalidation against a real Redis, run by a real `Runner` on a real SQLite store: every
//! tagged key is unlinked and no other key is touched while a probe measures Redis' latency; a
//! cancel leaves the keys and the tag consistent; a viewer cannot start it; bad tags are refused
//! before anything reaches Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::config::Target;
use pitwall::harness::RedisServer;
use pitwall::jobs::{
    Backoff, Enqueued, Error, JobState, JobSummary, Jobs, Kinds, NewJob, Runner, RunnerSettings,
    kinds,
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
    let kinds = kinds::all(&[Target {
        name: "cache".into(),
        kind: TargetKind::Redis,
        url: SecretUrl::parse(&redis.url(0)).unwrap(),
        celery: None,
        counters: Vec::new(),
        recipes: Vec::new(),
    }]);
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
        let mut job = NewJob::new("invalidate_tag", parameters);
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

    async fn until(&self, id: i64, state: JobState) -> JobSummary {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let job = self.jobs.job(id).await.unwrap();
            if job.state == state {
                return job;
            }
            assert!(
                !job.state.is_finished() && Instant::now() < deadline,
                "job {id} is {} (wanted {state}): {job:?}",
                job.state
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
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
    const TAGGED: usize = 20_000;
    for chunk in (0..TAGGED).collect::<Vec<_>>().chunks(2_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("item:{i}")).arg("v").ignore();
            pipe.cmd("SADD")
                .arg("tag:big")
                .arg(format!("item:{i}"))
                .ignore();
        }
        let _: () = pipe.query_async(&mut c).await.unwrap();
    }
    // Stale members (their keys expired long ago), keys outside the tag, and another tag that
    // shares nothing with it.
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.cmd("SADD")
            .arg("tag:big")
            .arg(format!("expired:{i}"))
            .ignore();
    }
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("other:{i}")).arg("v").ignore();
        pipe.cmd("SADD")
            .arg("tag:keep")
            .arg(format!("other:{i}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();

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
            .starts_with("Unlinks the 20100 keys tagged `big` (tag:big)"),
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
        .submit(Role::Operator, json!({"tag": "big", "batch": 500}))
        .await
        .unwrap();
    let done = s.until(id, JobState::Succeeded).await;
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = s.jobs.job(id).await.unwrap();
        if job.progress.as_ref().is_some_and(|p| p.done >= 200) {
            break;
        }
        assert!(Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.jobs.cancel(&actor(Role::Operator), id).await.unwrap();
    s.until(id, JobState::Cancelled).await;

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
    let again = s.jobs.retry(&actor(Role::Operator), id).await.unwrap();
    let Enqueued::New(again) = again else {
        panic!("{again:?}")
    };
    let done = s.until(again, JobState::Succeeded).await;
    assert_eq!(done.report.unwrap()["unlinked"], members.len() as u64);
    assert!(!exists(&mut c, "tag:pages:entries").await);
}
