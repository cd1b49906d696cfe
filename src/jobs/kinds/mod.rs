//! The job kinds this console runs, and what the PostgreSQL kinds share: finding a target's URL
//! ([`TargetUrls`]) and a job's own session, watched and cancellable from a second connection
//! ([`JobSession`]).

mod noop;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use noop::Noop;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, Row};

use serde_json::Value;

use super::{Checkpoint, JobContext, JobError, Kinds, Plan};
use crate::cache::analyze::AnalyzeKeyspace;
use crate::cache::cluster::Keyspace;
use crate::cache::invalidate::InvalidateTag;
use crate::cache::pattern::InvalidatePattern;
use crate::cache::prune::PruneTag;
use crate::cache::warm::WarmCache;
use crate::config::{Config, Target};
use crate::link::redact;
use crate::postgres::create_index::CreateIndex;
use crate::postgres::reindex::Reindex;
use crate::postgres::vacuum::Vacuum;
use crate::secret::SecretUrl;
use crate::target::TargetKind;

/// Every kind a console runs for `config`: [`all`], and [`Noop`] when `[jobs] noop` asks for it
/// (the demo and tests).
pub fn configured(config: &Config) -> Kinds {
    let mut kinds = maintenance(&config.targets);
    if config.jobs.noop {
        kinds.push(Arc::new(Noop));
    }
    Kinds::new(kinds)
}

/// Every maintenance kind, for `targets` (not the no-op kind).
pub fn all(targets: &[Target]) -> Kinds {
    Kinds::new(maintenance(targets))
}

fn maintenance(targets: &[Target]) -> Vec<Arc<dyn super::JobKind>> {
    let urls = TargetUrls::new(targets);
    vec![
        Arc::new(CreateIndex::new(urls.clone())),
        Arc::new(Vacuum::new(urls.clone())),
        Arc::new(Reindex::new(urls.clone())),
        Arc::new(InvalidateTag::new(urls.clone())),
        Arc::new(PruneTag::new(urls.clone())),
        Arc::new(InvalidatePattern::new(urls)),
        Arc::new(WarmCache::new(targets)),
        Arc::new(AnalyzeKeyspace::new(targets)),
    ]
}

/// The configured targets, as the job kinds look them up by name.
#[derive(Clone, Default)]
pub struct TargetUrls(Arc<Vec<(String, TargetKind, SecretUrl)>>);

impl TargetUrls {
    /// The targets of a configuration.
    pub fn new(targets: &[Target]) -> Self {
        Self(Arc::new(
            targets
                .iter()
                .map(|t| (t.name.clone(), t.kind, t.url.clone()))
                .collect(),
        ))
    }

    /// The URL of PostgreSQL target `target`; the refusal names the target.
    pub fn url(&self, target: Option<&str>) -> Result<SecretUrl, String> {
        self.url_of(target, TargetKind::Postgres)
    }

    /// Runs `plan` on a short connection to PostgreSQL target `target` (and its name) whose
    /// catalog reads never queue behind a lock, then closes the connection.
    pub async fn plan_on(
        &self,
        target: Option<&str>,
        plan: impl AsyncFnOnce(&mut PgConnection, &str) -> Result<Plan, String>,
    ) -> Result<Plan, String> {
        let url = self.url(target)?;
        let target = target.unwrap_or_default();
        let mut conn = plan_connection(&url)
            .await
            .map_err(|e| format!("`{target}`: {e}"))?;
        let result = plan(&mut conn, target).await;
        let _ = conn.close().await;
        result
    }

    /// Runs `work` in a [`JobSession`] on the job's PostgreSQL target, each statement waiting
    /// at most `lock_timeout_ms` for its locks, then closes the session.
    pub async fn in_session(
        &self,
        ctx: &mut JobContext,
        lock_timeout_ms: u64,
        work: impl AsyncFnOnce(&mut JobContext, &mut JobSession) -> Result<Value, JobError>,
    ) -> Result<Value, JobError> {
        let url = self
            .url(ctx.job().target.as_deref())
            .map_err(JobError::Failed)?;
        let mut session = JobSession::open(&url, ctx.job().id, lock_timeout_ms)
            .await
            .map_err(JobError::Failed)?;
        let result = work(ctx, &mut session).await;
        session.close().await;
        result
    }

    /// Redis target `target` opened as one server or a cluster's primaries, each command
    /// bounded by `timeout`; the refusal names the target.
    pub async fn keyspace(
        &self,
        target: Option<&str>,
        timeout: Duration,
    ) -> Result<Keyspace, String> {
        Keyspace::open(&self.url_of(target, TargetKind::Redis)?, timeout).await
    }

    /// The URL of target `target` of `kind`; the refusal names the target.
    pub fn url_of(&self, target: Option<&str>, kind: TargetKind) -> Result<SecretUrl, String> {
        let Some(name) = target else {
            return Err(format!(
                "this job works on a {} target: name one",
                kind.label()
            ));
        };
        match self.0.iter().find(|(n, ..)| n == name) {
            None => Err(format!("no target is named `{name}`")),
            Some((_, k, _)) if *k != kind => Err(format!(
                "target `{name}` is a {} target, not {}",
                k.label(),
                kind.label()
            )),
            Some((_, _, url)) => Ok(url.clone()),
        }
    }
}

/// A PostgreSQL error as people should read it: the server's message when it sent one, never a
/// URL with credentials.
pub fn pg_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => redact(db.message()),
        other => redact(&other.to_string()),
    }
}

/// How long opening a job's connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a running statement's progress is sampled.
const POLL: Duration = Duration::from_millis(500);

/// When the first sample is taken (soon, so short statements report too).
const FIRST_SAMPLE: Duration = Duration::from_millis(100);

/// A PostgreSQL job's own session: one connection (not shared with dashboards, named
/// `pitwall job <id>`) that runs the job's statements one at a time in autocommit, never batched
/// and never in a transaction block, and a second one that watches it through the progress
/// views and cancels it with `pg_cancel_backend`.
pub struct JobSession {
    conn: PgConnection,
    monitor: PgConnection,
    pid: i32,
}

/// How a watched statement ended.
#[derive(Debug)]
pub struct Watched {
    /// Its result, with the server's message on failure.
    pub result: Result<(), String>,
    /// Whether cancel was asked (and `pg_cancel_backend` sent) while it ran.
    pub cancelled: bool,
    /// How long it ran.
    pub duration: Duration,
}

/// One sample of a running statement: its row in a progress view, and who blocks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// The progress view's row as JSON (column names differ between server versions).
    pub fields: serde_json::Value,
    /// The relation it works on, as `regclass` prints it.
    pub relation: Option<String>,
    /// The session it waits for: `pid N (state): query…`.
    pub blocker: Option<String>,
}

impl Sample {
    /// A numeric column of the row (0 when absent).
    pub fn number(&self, column: &str) -> u64 {
        self.fields
            .get(column)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }

    /// A text column of the row.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.fields.get(column).and_then(serde_json::Value::as_str)
    }

    /// `text`, followed by the blocker when there is one.
    pub fn with_blocker(&self, text: String) -> String {
        match &self.blocker {
            Some(b) => format!("{text} — blocked by {b}"),
            None => text,
        }
    }
}

impl JobSession {
    /// The settings a job session sends first, each as a statement of its own.
    pub fn settings(lock_timeout_ms: u64) -> Vec<String> {
        vec![
            "SET statement_timeout = 0".to_owned(),
            lock_timeout(lock_timeout_ms),
        ]
    }

    /// Opens the session of job `job` on `url` and sends its settings.
    pub async fn open(url: &SecretUrl, job: i64, lock_timeout_ms: u64) -> Result<Self, String> {
        let options: PgConnectOptions = url
            .expose()
            .parse()
            .map_err(|e: sqlx::Error| format!("{url}: {}", pg_message(&e)))?;
        let conn = connect(
            url,
            options
                .clone()
                .application_name(&format!("pitwall job {job}")),
        )
        .await?;
        let monitor = connect(
            url,
            options
                .application_name(&format!("pitwall job {job} monitor"))
                .options([("statement_timeout", "5000"), ("lock_timeout", "1000")]),
        )
        .await?;
        let mut session = Self {
            conn,
            monitor,
            pid: 0,
        };
        for statement in Self::settings(lock_timeout_ms) {
            session.execute(&statement).await?;
        }
        session.pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut session.conn)
            .await
            .map_err(|e| pg_message(&e))?;
        Ok(session)
    }

    /// The job connection's server process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The watching connection, for reading the catalog while the job connection works.
    pub fn monitor(&mut self) -> &mut PgConnection {
        &mut self.monitor
    }

    /// Sends one statement alone on the job connection.
    pub async fn execute(&mut self, statement: &str) -> Result<(), String> {
        // A `&str` with no arguments goes as one simple Query message.
        self.conn
            .execute(statement)
            .await
            .map(drop)
            .map_err(|e| pg_message(&e))
    }

    /// Sends `statement` alone on the job connection and, while it runs, samples the progress
    /// `views` (their rows for its pid) every 500 ms, reporting each sample through `describe`
    /// at a checkpoint; when the checkpoint says cancel, sends `pg_cancel_backend` (again at
    /// every tick until the statement ends).
    pub async fn watch(
        &mut self,
        ctx: &mut JobContext,
        statement: &str,
        views: &[&'static str],
        describe: fn(&Sample) -> Checkpoint,
    ) -> Watched {
        let started = Instant::now();
        let pid = self.pid;
        let monitor = &mut self.monitor;
        let run = self.conn.execute(statement);
        tokio::pin!(run);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FIRST_SAMPLE, POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cancelled = false;
        loop {
            tokio::select! {
                result = &mut run => {
                    return Watched {
                        result: result.map(drop).map_err(|e| pg_message(&e)),
                        cancelled,
                        duration: started.elapsed(),
                    };
                }
                _ = tick.tick() => {
                    if cancelled {
                        // The first signal may have arrived before the statement started.
                        cancel_backend(monitor, pid).await;
                        continue;
                    }
                    let at = match sample(monitor, pid, views).await {
                        Ok(Some(s)) => describe(&s),
                        Ok(None) => Checkpoint { phase: "starting".into(), ..Checkpoint::default() },
                        Err(e) => Checkpoint {
                            phase: format!("progress unavailable: {}", pg_message(&e)),
                            ..Checkpoint::default()
                        },
                    };
                    if ctx.checkpoint(at).await.is_err() {
                        cancelled = true;
                        cancel_backend(monitor, pid).await;
                    }
                }
            }
        }
    }

    /// Closes both connections.
    pub async fn close(self) {
        let _ = self.conn.close().await;
        let _ = self.monitor.close().await;
    }
}

/// A short connection for a plan's catalog reads: every statement bounded by `statement_timeout`
/// and a short `lock_timeout`, so a plan never queues behind a lock.
async fn plan_connection(url: &SecretUrl) -> Result<PgConnection, String> {
    let options: PgConnectOptions = url
        .expose()
        .parse()
        .map_err(|e: sqlx::Error| format!("{url}: {}", pg_message(&e)))?;
    let options = options
        .application_name("pitwall plan")
        .options([("statement_timeout", "5000"), ("lock_timeout", "500")]);
    connect(url, options).await
}

/// `SET lock_timeout` for `ms` milliseconds.
pub fn lock_timeout(ms: u64) -> String {
    format!("SET lock_timeout = '{ms}ms'")
}

async fn connect(url: &SecretUrl, options: PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("connecting to {url}: {}", pg_message(&e))),
        Err(_) => Err(format!(
            "connecting to {url}: {}",
            crate::link::no_answer(CONNECT_TIMEOUT)
        )),
    }
}

async fn cancel_backend(monitor: &mut PgConnection, pid: i32) {
    if let Err(e) = sqlx::query("SELECT pg_cancel_backend($1)")
        .bind(pid)
        .execute(monitor)
        .await
    {
        tracing::warn!(pid, "pg_cancel_backend: {}", pg_message(&e));
    }
}

/// The row of `pid` in the first of `views` that has one, and who blocks `pid`.
async fn sample(
    monitor: &mut PgConnection,
    pid: i32,
    views: &[&'static str],
) -> Result<Option<Sample>, sqlx::Error> {
    let mut found = None;
    if !views.is_empty() {
        let union = views
            .iter()
            .map(|view| {
                format!(
                    "SELECT to_jsonb(p)::text AS fields, \
                     NULLIF(p.relid, 0::oid)::regclass::text AS relation \
                     FROM {view} p WHERE p.pid = $1"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        if let Some(row) = sqlx::query(&format!("{union} LIMIT 1"))
            .bind(pid)
            .fetch_optional(&mut *monitor)
            .await?
        {
            let fields: String = row.try_get("fields")?;
            found = Some(Sample {
                fields: serde_json::from_str(&fields).unwrap_or_default(),
                relation: row.try_get("relation")?,
                blocker: None,
            });
        }
    }
    // CREATE INDEX CONCURRENTLY names the transaction it waits for; lock waits show in
    // pg_blocking_pids.
    let locker = found.as_ref().map_or(0, |s| s.number("current_locker_pid")) as i64;
    let blocker: Option<(i32, Option<String>, String)> = sqlx::query_as(
        "SELECT a.pid, a.state, \
         left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120) \
         FROM pg_stat_activity a \
         WHERE a.pid = $2 OR a.pid = ANY (pg_blocking_pids($1)) \
         ORDER BY a.pid = $2 DESC LIMIT 1",
    )
    .bind(pid)
    .bind(locker)
    .fetch_optional(&mut *monitor)
    .await?;
    let blocker = blocker.map(|(pid, state, query)| {
        format!(
            "pid {pid} ({}): {query}",
            state.as_deref().unwrap_or("unknown state")
        )
    });
    Ok(match (found, blocker) {
        (Some(s), blocker) => Some(Sample { blocker, ..s }),
        (None, Some(blocker)) => Some(Sample {
            blocker: Some(blocker),
            ..Sample::default()
        }),
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, kind: TargetKind, url: &str) -> Target {
        Target::new(name, kind, SecretUrl::parse(url).unwrap())
    }

    #[tokio::test]
    async fn postgres_kinds_name_a_missing_or_foreign_target() {
        let kinds = all(&[
            target(
                "db",
                TargetKind::Postgres,
                "postgres://u:pw@127.0.0.1:1/app",
            ),
            target("cache", TargetKind::Redis, "redis://127.0.0.1:1"),
        ]);
        let url = TargetUrls::new(&[target(
            "db",
            TargetKind::Postgres,
            "postgres://u:pw@127.0.0.1:1/app",
        )])
        .url(Some("db"))
        .unwrap();
        assert_eq!(url.to_string(), "127.0.0.1:1/app");
        for name in ["create_index", "vacuum", "reindex"] {
            let kind = kinds.get(name).unwrap();
            assert_eq!(kind.role(), crate::access::Role::Admin);
            let p = match name {
                "create_index" => serde_json::json!({"table": "t", "columns": ["a"]}),
                "vacuum" => serde_json::json!({"table": "t"}),
                _ => serde_json::json!({"index": "t_a_idx"}),
            };
            let e = kind.plan(Some("nope"), &p).await.unwrap_err();
            assert_eq!(e, "no target is named `nope`", "{name}");
            let e = kind.plan(Some("cache"), &p).await.unwrap_err();
            assert!(e.contains("`cache` is a Redis target"), "{name}: {e}");
            let e = kind.plan(None, &p).await.unwrap_err();
            assert!(e.contains("PostgreSQL target"), "{name}: {e}");
            // A closed port: the refusal says so, without the password.
            let e = kind.plan(Some("db"), &p).await.unwrap_err();
            assert!(!e.contains("pw"), "{name}: {e}");
        }
    }

    #[test]
    fn samples_read_what_the_view_has() {
        let s = Sample {
            fields: serde_json::json!({"phase": "scanning heap", "heap_blks_total": 10}),
            relation: Some("t".into()),
            blocker: Some("pid 7 (idle in transaction): UPDATE t".into()),
        };
        assert_eq!(s.number("heap_blks_total"), 10);
        assert_eq!(s.number("num_dead_tuples"), 0);
        assert_eq!(s.text("phase"), Some("scanning heap"));
        assert_eq!(
            s.with_blocker("x".into()),
            "x — blocked by pid 7 (idle in transaction): UPDATE t"
        );
    }
}
