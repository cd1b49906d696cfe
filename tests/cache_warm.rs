//! Cache warming against a real PostgreSQL and Redis, run by a real `Runner` on a real SQLite
//! store: a recipe fills every key with its TTL (jittered within bounds) and its tags; a second
//! run with refresh-ahead rewrites none and a third rewrites exactly the keys near expiry or
//! gone; Redis frozen while pipelines are in flight fails the job cleanly (the tag names only
//! written keys) and a retry fills every key; bad recipes and targets are refused at the plan
//! with the reason (a plan estimates its rows with EXPLAIN, never a count, and refuses more than
//! `max_rows` or more bytes than `maxmemory` leaves free); a query that would write fails in its
//! read-only transaction.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{until_finished, until_progress};
use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::cache::recipe::{Recipe, Template, WarmValue};
use pitwall::config::Target;
use pitwall::harness::{self, PgServer, RedisServer};
use pitwall::jobs::{
    Backoff, Enqueued, Error, JobState, Jobs, Kinds, NewJob, Runner, RunnerSettings, kinds,
};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use sqlx::Executor;
use tempfile::TempDir;

const ROWS: i64 = 2_000;

fn recipe(name: &str, sql: &str, key: &str, tags: &[&str]) -> Recipe {
    Recipe {
        name: name.into(),
        postgres: "db".into(),
        sql: sql.into(),
        key: Template::parse(key).unwrap(),
        value: WarmValue::Row,
        ttl_secs: 600,
        jitter: 0.1,
        tags: tags.iter().map(|t| Template::parse(t).unwrap()).collect(),
        refresh_ahead: Some(0.2),
        every_secs: None,
        batch: 300,
        timeout_secs: 30,
        max_rows: pitwall::cache::recipe::DEFAULT_MAX_ROWS,
    }
}

struct Setup {
    pg: PgServer,
    redis: RedisServer,
    jobs: Jobs,
    kinds: Kinds,
    _runner: Runner,
    _dir: TempDir,
}

async fn setup() -> Setup {
    let (pg, redis) = harness::start_both().await.unwrap();
    let mut db = pg.connect("postgres").await.unwrap();
    db.execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, grp text);
         INSERT INTO items SELECT i, 'item ' || i, 'g' || (i % 4) FROM generate_series(1, 2000) i;
         UPDATE items SET grp = NULL WHERE id = 2000;
         ANALYZE items;
         CREATE SEQUENCE s;",
    )
    .await
    .unwrap();
    let url = |s: String| SecretUrl::parse(&s).unwrap();
    let targets = [
        Target::new("db", TargetKind::Postgres, url(pg.url("postgres"))),
        Target {
            recipes: vec![
                recipe(
                    "items",
                    "SELECT id, name, grp FROM items ORDER BY id",
                    "item:{id}",
                    &["group:{grp}", "items"],
                ),
                recipe("no_column", "SELECT id FROM items", "item:{nope}", &[]),
                recipe("no_table", "SELECT id FROM nope", "item:{id}", &[]),
                recipe("writes", "SELECT nextval('s') AS id", "seq:{id}", &[]),
                Recipe {
                    max_rows: 100,
                    ..recipe("capped", "SELECT id FROM items", "capped:{id}", &[])
                },
                // Rows that take a second to stream, so Redis can be frozen mid-job.
                Recipe {
                    batch: 100,
                    ..recipe(
                        "slow",
                        "SELECT i AS id FROM generate_series(1, 2000) i, \
                         LATERAL (SELECT pg_sleep(CASE WHEN i % 100 = 0 THEN 0.05 ELSE 0 END)) s",
                        "slow:{id}",
                        &["slow"],
                    )
                },
            ],
            ..Target::new("cache", TargetKind::Redis, url(redis.url(0)))
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let kinds = kinds::all(&targets);
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
        pg,
        redis,
        jobs,
        kinds,
        _runner: runner,
        _dir: dir,
    }
}

fn operator() -> Actor {
    Actor {
        name: "operator".into(),
        role: Role::Operator,
        client_addr: None,
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

    async fn submit(
        &self,
        target: &str,
        recipe: &str,
    ) -> Result<(pitwall::jobs::Plan, Option<i64>), Error> {
        let mut job = NewJob::new("warm_cache", json!({ "recipe": recipe }));
        job.target = Some(target.into());
        let (plan, queued) = self
            .jobs
            .submit(&operator(), &self.kinds, job, Some(target))
            .await?;
        Ok((
            plan,
            queued.map(|q| match q {
                Enqueued::New(id) | Enqueued::Duplicate(id) => id,
            }),
        ))
    }

    /// Runs recipe `items` to the end and returns its report.
    async fn warm(&self) -> serde_json::Value {
        let (_, id) = self.submit("cache", "items").await.unwrap();
        let job = until_finished(&self.jobs, id.unwrap()).await;
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        job.report.expect("a report")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipe_fills_keys_with_ttls_and_tags_and_refresh_ahead_rewrites_only_what_is_due() {
    let s = setup().await;
    let mut c = s.conn().await;

    let (plan, _) = s.submit("cache", "items").await.unwrap();
    assert_eq!(plan.total, Some(ROWS as u64));
    assert!(!plan.destructive);
    assert!(
        plan.statements
            .iter()
            .any(|st| st.starts_with("SET item:1 <") && st.ends_with("EX 600 s ± 10 %")),
        "{:?}",
        plan.statements
    );
    assert!(
        plan.statements
            .contains(&"SADD tag:group:g1 item:1".to_owned())
    );

    // Row 2000 has no group: its tag cannot be made, so it is skipped and reported.
    let first = s.warm().await;
    assert_eq!(first["rows"], ROWS);
    assert_eq!(first["written"], ROWS - 1);
    assert_eq!(first["bad_rows"], 1);
    assert_eq!(first["first_error"], "row 2000: column `grp` is null");

    let mut pipe = redis::pipe();
    for id in 1..ROWS {
        pipe.cmd("TTL").arg(format!("item:{id}"));
    }
    let ttls: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
    assert!(
        ttls.iter().all(|t| (535..=660).contains(t)),
        "TTLs outside 600 s ± 10 %: {:?}",
        ttls.iter()
            .filter(|t| !(535..=660).contains(*t))
            .collect::<Vec<_>>()
    );
    let spread: BTreeSet<i64> = ttls.iter().copied().collect();
    assert!(spread.len() > 50, "TTLs are not jittered: {spread:?}");
    let value: String = redis::cmd("GET")
        .arg("item:7")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&value).unwrap(),
        json!({"id": 7, "name": "item 7", "grp": "g3"})
    );
    let exists: u64 = redis::cmd("EXISTS")
        .arg("item:2000")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    for g in 0..4 {
        let members: BTreeSet<String> = redis::cmd("SMEMBERS")
            .arg(format!("tag:group:g{g}"))
            .query_async(&mut c)
            .await
            .unwrap();
        let expected: BTreeSet<String> = (1..ROWS)
            .filter(|i| i % 4 == g)
            .map(|i| format!("item:{i}"))
            .collect();
        assert_eq!(members, expected, "tag group:g{g}");
    }
    let all: u64 = redis::cmd("SCARD")
        .arg("tag:items")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(all, ROWS as u64 - 1);

    // Everything is fresh: nothing is rewritten.
    let second = s.warm().await;
    assert_eq!(second["written"], 0, "{second}");
    assert_eq!(second["fresh_kept"], ROWS - 1);

    // One key near expiry, one gone, one without a TTL: exactly those are written again.
    let _: () = redis::pipe()
        .cmd("EXPIRE")
        .arg("item:5")
        .arg(30)
        .ignore()
        .cmd("DEL")
        .arg("item:6")
        .ignore()
        .cmd("PERSIST")
        .arg("item:8")
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
    let third = s.warm().await;
    assert_eq!(third["written"], 3, "{third}");
    assert_eq!(third["fresh_kept"], ROWS - 4);
    let ttl: i64 = redis::cmd("TTL")
        .arg("item:5")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 500, "item:5 was not rewritten: TTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_mid_warming_fails_it_cleanly_and_a_retry_fills_every_key() {
    let s = setup().await;
    let mut c = s.conn().await;
    let (_, id) = s.submit("cache", "slow").await.unwrap();
    let id = id.unwrap();
    until_progress(&s.jobs, id, 500).await;
    // SIGSTOP: pipelines in flight get no answer.
    s.redis.pause().unwrap();
    let failed = until_finished(&s.jobs, id).await;
    s.redis.resume().unwrap();
    assert_eq!(failed.state, JobState::Dead, "{failed:?}");
    let error = failed.last_error.unwrap();
    assert!(error.contains("no answer within 5000 ms"), "{error}");
    // Whatever Redis had read ran when it resumed: the tag names only keys that were written.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("tag:slow")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        members.len() >= 400 && members.len() < 2_000,
        "{}",
        members.len()
    );
    for m in &members {
        let exists: bool = redis::cmd("EXISTS")
            .arg(m)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(exists, "{m} is tagged but was never written");
    }

    let (_, Enqueued::New(again)) = s.jobs.retry(&operator(), &s.kinds, id, None).await.unwrap()
    else {
        panic!("not queued again")
    };
    let done = until_finished(&s.jobs, again).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let report = done.report.unwrap();
    assert_eq!(
        report["written"].as_u64().unwrap() + report["fresh_kept"].as_u64().unwrap(),
        2_000,
        "{report}"
    );
    let tagged: u64 = redis::cmd("SCARD")
        .arg("tag:slow")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(tagged, 2_000);
    let ttl: i64 = redis::cmd("TTL")
        .arg("slow:2000")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((540..=660).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_recipes_and_targets_are_refused_with_the_reason() {
    let s = setup().await;
    let refused = |r: Result<_, Error>| match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("not refused: {other:?}"),
    };
    let m = refused(s.submit("cache", "no_column").await);
    assert_eq!(
        m,
        "recipe `no_column`, row 1: the query returns no column `nope`"
    );
    let m = refused(s.submit("cache", "no_table").await);
    assert!(m.contains("relation \"nope\" does not exist"), "{m}");
    let m = refused(s.submit("cache", "writes").await);
    assert!(m.contains("read-only transaction"), "{m}");
    let m = refused(s.submit("db", "items").await);
    assert_eq!(m, "recipe `items` writes into target `cache`, not `db`");
    // Over its cap, or more than Redis has room for: refused with the figures.
    let m = refused(s.submit("cache", "capped").await);
    assert_eq!(
        m,
        "recipe `capped`: the planner estimates 2000 rows, more than its `max_rows` of 100: \
         narrow the query or raise `max_rows`"
    );
    let mut c = s.conn().await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut c)
        .await
        .unwrap();
    let used: u64 = pitwall::link::info_field(&info, "used_memory")
        .unwrap()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 20_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let m = refused(s.submit("cache", "items").await);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        m.starts_with("recipe `items`: about ") && m.contains("(2000 rows × "),
        "{m}"
    );
    assert!(m.contains("bytes `cache` has free under maxmemory"), "{m}");
    let m = refused(s.submit("cache", "nope").await);
    assert!(
        m.starts_with("no recipe is named `nope`; the config declares items,"),
        "{m}"
    );

    // Nothing reached Redis, and no plan counted the rows.
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(keys, 0);
    let mut db = s.pg.connect("postgres").await.unwrap();
    let counted: Vec<String> = sqlx::query_scalar(
        "SELECT query FROM pg_stat_statements WHERE query ILIKE '%count(%' AND query ILIKE '%items%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(counted.is_empty(), "{counted:?}");
}
