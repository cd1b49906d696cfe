//! The PostgreSQL maintenance jobs against a throwaway server, run by a real `Runner` on a real
//! SQLite store: a CREATE INDEX CONCURRENTLY blocked by an open transaction fails cleanly (or is
//! cancelled) and leaves no INVALID index; a build reports progress and the index is used; a
//! VACUUM reports progress and the dead tuples go; plans refuse what is wrong; only admins start
//! these jobs.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::until_job;
use pitwall::access::{Actor, Role};
use pitwall::config::Target;
use pitwall::harness::PgServer;
use pitwall::jobs::{
    Backoff, Enqueued, Error, JobState, JobSummary, Jobs, Kinds, NewJob, Runner, RunnerSettings,
    kinds,
};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use pitwall::target::TargetKind;
use serde_json::json;
use sqlx::Executor;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;

fn actor(role: Role) -> Actor {
    Actor {
        name: format!("{role}"),
        role,
        client_addr: None,
    }
}

struct Setup {
    pg: PgServer,
    jobs: Jobs,
    kinds: Kinds,
    runner: Runner,
    _dir: TempDir,
}

fn targets(url: &str) -> Vec<Target> {
    vec![Target::new(
        "db",
        TargetKind::Postgres,
        SecretUrl::parse(url).unwrap(),
    )]
}

async fn setup() -> Setup {
    let pg = PgServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let kinds = kinds::all(&targets(&pg.url("postgres")));
    let runner = Runner::spawn(
        jobs.clone(),
        kinds.clone(),
        RunnerSettings {
            name: "test".into(),
            workers: 1,
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(50),
            per_target: 4,
        },
    );
    Setup {
        pg,
        jobs,
        kinds,
        runner,
        _dir: dir,
    }
}

impl Setup {
    async fn conn(&self) -> PgConnection {
        self.pg.connect("postgres").await.unwrap()
    }

    /// Plans, confirms (typing the target) and enqueues a job as an admin.
    async fn submit(&self, kind: &str, parameters: serde_json::Value) -> i64 {
        let mut job = NewJob::new(kind, parameters);
        job.target = Some("db".into());
        match self
            .jobs
            .submit(&actor(Role::Admin), &self.kinds, job, Some("db"))
            .await
            .unwrap()
        {
            (_, Some(Enqueued::New(id))) => id,
            other => panic!("{other:?}"),
        }
    }

    async fn plan(
        &self,
        kind: &str,
        parameters: serde_json::Value,
    ) -> Result<pitwall::jobs::Plan, Error> {
        let mut job = NewJob::new(kind, parameters);
        job.target = Some("db".into());
        self.jobs
            .submit(&actor(Role::Admin), &self.kinds, job, None)
            .await
            .map(|(plan, _)| plan)
    }

    /// Waits for job `id` to reach `state`, collecting the progress phases seen on the way.
    async fn until(&self, id: i64, state: JobState, phases: &mut Vec<String>) -> JobSummary {
        until_job(&self.jobs, id, Duration::from_secs(60), |job| {
            if let Some(p) = &job.progress
                && phases.last() != Some(&p.phase)
            {
                phases.push(p.phase.clone());
            }
            job.state == state
        })
        .await
    }

    /// Waits until job `id`'s own connection runs a statement starting with `prefix`.
    async fn until_job_runs(&self, id: i64, prefix: &str) {
        let mut conn = self.conn().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let running: Option<String> = sqlx::query_scalar(
                "SELECT query FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND query LIKE $2 || '%'",
            )
            .bind(format!("pitwall job {id}"))
            .bind(prefix)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
            if running.is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "job {id} never ran {prefix}…");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until job `id` reports a phase containing every one of `parts`.
    async fn until_phase(&self, id: i64, parts: &[&str]) -> String {
        let job = until_job(&self.jobs, id, Duration::from_secs(30), |job| {
            job.progress
                .as_ref()
                .is_some_and(|p| parts.iter().all(|part| p.phase.contains(part)))
        })
        .await;
        job.progress.unwrap().phase
    }

    async fn invalid_indexes(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = $1::regclass AND NOT i.indisvalid",
        )
        .bind(table)
        .fetch_all(&mut self.conn().await)
        .await
        .unwrap()
    }
}

async fn table(conn: &mut PgConnection, name: &str, rows: u32) {
    conn.execute(
        format!(
            "CREATE TABLE {name} (id int PRIMARY KEY, status text, n int) \
             WITH (autovacuum_enabled = false)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.execute(
        format!(
            "INSERT INTO {name} SELECT g, 'status ' || (g % 7), g FROM generate_series(1, {rows}) g"
        )
        .as_str(),
    )
    .await
    .unwrap();
}

/// An open transaction that wrote `table`: every CREATE INDEX CONCURRENTLY on it waits for it.
async fn blocker(s: &Setup, table: &str) -> PgConnection {
    let mut conn = s.conn().await;
    conn.execute("BEGIN").await.unwrap();
    conn.execute(format!("UPDATE {table} SET n = n WHERE id = 1").as_str())
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn a_blocked_build_fails_or_is_cancelled_and_leaves_no_invalid_index() {
    let s = setup().await;
    let mut conn = s.conn().await;
    table(&mut conn, "orders", 20_000).await;

    // (a) A short lock_timeout: the build gives up; the INVALID index is dropped once the
    // transaction ends.
    let mut open = blocker(&s, "orders").await;
    let id = s
        .submit(
            "create_index",
            json!({"table": "orders", "columns": ["status"], "lock_timeout_ms": 1000}),
        )
        .await;
    s.until_phase(
        id,
        &["waiting for writers before build", "idle in transaction"],
    )
    .await;
    // The build timed out; the clean-up waits for the same transaction.
    s.until_job_runs(id, "DROP INDEX CONCURRENTLY").await;
    assert_eq!(s.invalid_indexes("orders").await, ["orders_status_idx"]);
    open.execute("COMMIT").await.unwrap();
    let job = s.until(id, JobState::Dead, &mut Vec::new()).await;
    let error = job.last_error.unwrap();
    assert!(
        error.contains("canceling statement due to lock timeout")
            && error
                .contains("the INVALID index \"public\".\"orders_status_idx\" it left was dropped"),
        "{error}"
    );
    assert!(s.invalid_indexes("orders").await.is_empty());

    // (b) Cancel while it waits: pg_cancel_backend stops it, and the leftover goes too.
    let mut open = blocker(&s, "orders").await;
    let id = s
        .submit(
            "create_index",
            json!({"table": "orders", "columns": ["n DESC"], "name": "orders_n_desc",
                "lock_timeout_ms": 600000}),
        )
        .await;
    let phase = s
        .until_phase(id, &["waiting for writers before build", "UPDATE orders"])
        .await;
    assert!(phase.contains("(lockers 0/1)"), "{phase}");
    assert_eq!(
        s.jobs.cancel(&actor(Role::Admin), id).await.unwrap(),
        JobState::Running
    );
    s.until_job_runs(id, "DROP INDEX CONCURRENTLY").await;
    open.execute("COMMIT").await.unwrap();
    s.until(id, JobState::Cancelled, &mut Vec::new()).await;
    assert!(s.invalid_indexes("orders").await.is_empty());
    let left: Option<String> =
        sqlx::query_scalar("SELECT relname::text FROM pg_class WHERE relname = 'orders_n_desc'")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    assert_eq!(left, None);
    s.runner.stop().await;
}

#[tokio::test]
async fn builds_report_progress_and_vacuum_removes_dead_tuples() {
    let s = setup().await;
    let mut conn = s.conn().await;
    table(&mut conn, "events", 50_000).await;

    // (e) Plans refuse unknown columns and bad names, and show the exact statements.
    let e = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["nope"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "table \"public\".\"events\" has no column \"nope\""
    );
    let e = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["n"], "where": "ghost IS NULL"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no column \"ghost\""), "{e}");
    let e = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["n"], "where": "status > 5"}),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("operator does not exist: text > integer"),
        "{e}"
    );
    let e = s
        .plan(
            "create_index",
            json!({"table": "missing", "columns": ["n"]}),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("\"public\".\"missing\" does not exist"),
        "{e}"
    );
    let e = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["n\"; --"]}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not allowed"), "{e}");
    let e = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["id"], "name": "events_pkey"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let plan = s
        .plan(
            "create_index",
            json!({"table": "events", "columns": ["n"], "where": "status <> 'status 3'"}),
        )
        .await
        .unwrap();
    assert!(plan.destructive);
    assert_eq!(
        plan.statements,
        [
            "SET statement_timeout = 0",
            "SET lock_timeout = '5000ms'",
            "CREATE INDEX CONCURRENTLY \"events_n_idx\" ON \"public\".\"events\" USING btree \
             (\"n\") WHERE \"status\" <> 'status 3'",
        ]
    );
    assert!(
        plan.summary.contains("DROP INDEX CONCURRENTLY"),
        "{}",
        plan.summary
    );
    let mut job = NewJob::new("create_index", json!({"table": "events", "columns": ["n"]}));
    job.target = Some("db".into());
    let e = s
        .jobs
        .submit(&actor(Role::Admin), &s.kinds, job, Some("yes"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("type `db`"), "{e}");

    // (c) A build that waits a moment for a writer, then succeeds: progress names the phase and
    // who it waits for; the index is valid and used.
    let mut open = blocker(&s, "events").await;
    let id = s
        .submit("create_index", json!({"table": "events", "columns": ["n"]}))
        .await;
    let mut phases = Vec::new();
    s.until_phase(id, &["waiting for writers before build", "blocked by pid "])
        .await;
    open.execute("COMMIT").await.unwrap();
    let job = s.until(id, JobState::Succeeded, &mut phases).await;
    let report = job.report.unwrap();
    assert_eq!(report["index"], "\"public\".\"events_n_idx\"");
    assert_eq!(report["valid"], true);
    assert!(report["size_bytes"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(
        report["undo"],
        "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"events_n_idx\""
    );
    assert_eq!(job.progress.unwrap().phase, "built");
    let valid: bool = sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_n_idx'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(valid);
    conn.execute("ANALYZE events").await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN SELECT * FROM events WHERE n = 42")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(plan.join("\n").contains("events_n_idx"), "{plan:?}");

    // (d) VACUUM of a table with many dead tuples, slowed down so progress is sampled.
    table(&mut conn, "churn", 200_000).await;
    conn.execute("DELETE FROM churn WHERE id % 3 <> 0")
        .await
        .unwrap();
    conn.execute("ALTER DATABASE postgres SET vacuum_cost_delay = '5ms'")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dead: i64 = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'churn'",
        )
        .fetch_one(&mut s.conn().await)
        .await
        .unwrap();
        if dead > 100_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deletes never showed as dead tuples"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let plan = s
        .plan("vacuum", json!({"table": "churn", "analyze": true}))
        .await
        .unwrap();
    assert!(!plan.destructive);
    assert_eq!(plan.statements[2], "VACUUM (ANALYZE) \"public\".\"churn\"");
    let full = s
        .plan("vacuum", json!({"table": "churn", "full": true}))
        .await
        .unwrap();
    assert!(full.destructive && full.summary.contains("ACCESS EXCLUSIVE"));
    let id = s
        .submit("vacuum", json!({"table": "churn", "analyze": true}))
        .await;
    let mut phases = Vec::new();
    let job = s.until(id, JobState::Succeeded, &mut phases).await;
    assert!(
        phases
            .iter()
            .any(|p| p.starts_with("churn: ") && p.contains("heap blocks")),
        "{phases:?}"
    );
    let report = job.report.unwrap();
    let (before, after) = (
        report["dead_tuples_before"].as_i64().unwrap(),
        report["dead_tuples_after"].as_i64().unwrap(),
    );
    assert!(before > 100_000 && after < before / 10, "{report}");

    // Cancel a VACUUM while it waits for a lock: it names who holds it, and
    // pg_cancel_backend stops it.
    let mut holder = s.conn().await;
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("LOCK TABLE churn IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .unwrap();
    let id = s
        .submit(
            "vacuum",
            json!({"table": "churn", "freeze": true, "lock_timeout_ms": 600000}),
        )
        .await;
    s.until_phase(
        id,
        &["waiting for a lock — blocked by pid", "LOCK TABLE churn"],
    )
    .await;
    s.jobs.cancel(&actor(Role::Admin), id).await.unwrap();
    s.until(id, JobState::Cancelled, &mut Vec::new()).await;
    holder.execute("ROLLBACK").await.unwrap();
    let vacuuming: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1",
    )
    .bind(format!("pitwall job {id}"))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(vacuuming, 0);

    // ANALYZE alone, of the whole database.
    let id = s.submit("vacuum", json!({"analyze_only": true})).await;
    let job = s.until(id, JobState::Succeeded, &mut Vec::new()).await;
    assert_eq!(job.report.unwrap()["statement"], "ANALYZE");
    s.runner.stop().await;
}

#[tokio::test]
async fn reindex_rebuilds_an_invalid_index_and_drops_what_a_failure_leaves() {
    let s = setup().await;
    let mut conn = s.conn().await;
    table(&mut conn, "tags", 5_000).await;
    // A unique build over duplicates fails and leaves an INVALID index.
    conn.execute("CREATE UNIQUE INDEX CONCURRENTLY tags_status_key ON tags (status)")
        .await
        .unwrap_err();
    assert_eq!(s.invalid_indexes("tags").await, ["tags_status_key"]);
    let plan = s
        .plan("reindex", json!({"index": "tags_status_key"}))
        .await
        .unwrap();
    assert!(
        plan.destructive && plan.summary.contains("the INVALID index"),
        "{}",
        plan.summary
    );
    assert_eq!(
        plan.statements.last().unwrap(),
        "REINDEX INDEX CONCURRENTLY \"public\".\"tags_status_key\""
    );
    // Still duplicates: REINDEX fails too, and its `_ccnew` copy is dropped.
    let id = s
        .submit("reindex", json!({"index": "tags_status_key"}))
        .await;
    let job = s.until(id, JobState::Dead, &mut Vec::new()).await;
    let error = job.last_error.unwrap();
    assert!(
        error.contains("could not create unique index")
            && error.contains("dropped: \"public\".\"tags_status_key_ccnew\""),
        "{error}"
    );
    assert_eq!(s.invalid_indexes("tags").await, ["tags_status_key"]);
    // Without duplicates it succeeds and the index becomes valid.
    conn.execute("UPDATE tags SET status = 'status ' || id")
        .await
        .unwrap();
    let id = s
        .submit("reindex", json!({"index": "tags_status_key"}))
        .await;
    let job = s.until(id, JobState::Succeeded, &mut Vec::new()).await;
    assert_eq!(job.report.unwrap()["valid"], true);
    assert!(s.invalid_indexes("tags").await.is_empty());
    let e = s
        .plan("reindex", json!({"index": "tags_missing"}))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("\"public\".\"tags_missing\" does not exist"),
        "{e}"
    );
    s.runner.stop().await;
}

#[tokio::test]
async fn only_admins_start_postgres_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    // Nothing listens here: the role is checked before anything connects.
    let kinds = kinds::all(&targets("postgres://postgres@127.0.0.1:1/postgres"));
    for (kind, parameters) in [
        ("create_index", json!({"table": "t", "columns": ["a"]})),
        ("vacuum", json!({"table": "t"})),
        ("reindex", json!({"index": "t_a_idx"})),
    ] {
        for role in [Role::Viewer, Role::Operator] {
            let mut job = NewJob::new(kind, parameters.clone());
            job.target = Some("db".into());
            let e = jobs
                .submit(&actor(role), &kinds, job, Some("db"))
                .await
                .unwrap_err();
            assert!(
                matches!(e, Error::Forbidden(Role::Admin)),
                "{kind} as {role}: {e}"
            );
        }
    }
}
