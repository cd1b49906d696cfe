//! The `reindex` job kind: `REINDEX INDEX CONCURRENTLY` of one index (one flagged bloated or
//! INVALID), alone on the job's own connection, its progress read from
//! `pg_stat_progress_create_index`; when it fails or is cancelled, the `_ccnew` (and `_ccold`)
//! indexes it left are dropped concurrently.

use serde::Deserialize;
use sqlx::PgConnection;

use super::Qualified;
use super::create_index::{DEFAULT_LOCK_TIMEOUT_MS, LOCK_TIMEOUT_MS};
use crate::format::Unit;
use crate::jobs::kinds::{JobSession, Sample, TargetUrls, lock_timeout, pg_message};
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};

/// The `reindex` kind: `{"index": "public.events_user_id_idx", "lock_timeout_ms": 5000}`.
pub struct Reindex {
    targets: TargetUrls,
}

impl Reindex {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

/// How long dropping leftovers may wait for the transactions that still use the table.
const CLEANUP_LOCK_TIMEOUT_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    index: String,
    #[serde(default)]
    lock_timeout_ms: Option<u64>,
}

/// A checked REINDEX request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The index.
    pub index: Qualified,
    /// The `lock_timeout` of the session, ms.
    pub lock_timeout_ms: u64,
}

impl Spec {
    /// Reads and checks the parameters; nothing connects.
    pub fn read(parameters: &serde_json::Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(parameters.clone())
            .map_err(|e| format!("reindex parameters: {e}"))?;
        let index = Qualified::parse(raw.index.trim()).map_err(|e| format!("index: {e}"))?;
        let lock_timeout_ms = raw.lock_timeout_ms.unwrap_or(DEFAULT_LOCK_TIMEOUT_MS);
        if !LOCK_TIMEOUT_MS.contains(&lock_timeout_ms) {
            return Err(format!(
                "`lock_timeout_ms` must be between {} and {}, not {lock_timeout_ms}",
                LOCK_TIMEOUT_MS.start(),
                LOCK_TIMEOUT_MS.end()
            ));
        }
        Ok(Self {
            index,
            lock_timeout_ms,
        })
    }

    /// The `REINDEX INDEX CONCURRENTLY` statement.
    pub fn statement(&self) -> String {
        format!("REINDEX INDEX CONCURRENTLY {}", self.index)
    }
}

/// The index as the catalog describes it.
struct Found {
    oid: i64,
    table_oid: i64,
    table: String,
    valid: bool,
    bytes: i64,
}

/// The catalog's row for a relation named like the index.
#[derive(sqlx::FromRow)]
struct Catalog {
    oid: i64,
    relkind: String,
    table_oid: Option<i64>,
    table: Option<String>,
    valid: Option<bool>,
    bytes: i64,
    exclusion: bool,
}

async fn find(conn: &mut PgConnection, spec: &Spec, target: &str) -> Result<Found, String> {
    let index = &spec.index;
    let row: Option<Catalog> = sqlx::query_as(
        "SELECT c.oid::int8 AS oid, c.relkind::text AS relkind, i.indrelid::int8 AS table_oid, \
             i.indrelid::regclass::text AS table, i.indisvalid AS valid, \
             pg_relation_size(c.oid) AS bytes, \
             EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.contype = 'x') \
                 AS exclusion \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_index i ON i.indexrelid = c.oid \
             WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(index.schema.as_str())
    .bind(index.name.as_str())
    .fetch_optional(conn)
    .await
    .map_err(|e| format!("reading the index: {}", pg_message(&e)))?;
    let Some(Catalog {
        oid,
        relkind,
        table_oid,
        table,
        valid,
        bytes,
        exclusion,
    }) = row
    else {
        return Err(format!("index {index} does not exist on `{target}`"));
    };
    if relkind == "I" {
        return Err(format!(
            "{index} is a partitioned index: reindex its partitions' indexes one by one"
        ));
    }
    let (Some(table_oid), Some(table), Some(valid), "i") =
        (table_oid, table, valid, relkind.as_str())
    else {
        return Err(format!("{index} is not an index"));
    };
    if ["pg_catalog", "pg_toast", "information_schema"].contains(&index.schema.as_str()) {
        return Err(format!(
            "{index} is a system catalog index: it cannot be rebuilt concurrently"
        ));
    }
    if exclusion {
        return Err(format!(
            "{index} backs an exclusion constraint: PostgreSQL cannot rebuild it concurrently"
        ));
    }
    Ok(Found {
        oid,
        table_oid,
        table,
        valid,
        bytes,
    })
}

/// INVALID indexes on the table that REINDEX CONCURRENTLY leaves (`…_ccnew`, `…_ccold`), unless
/// another session (not `own_pid`, whose progress row can outlive its error for a moment) is
/// building on the table.
async fn leftovers(
    conn: &mut PgConnection,
    table_oid: i64,
    own_pid: i32,
) -> Result<Vec<Qualified>, String> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.indrelid = $1::oid AND NOT i.indisvalid \
         AND c.relname ~ '_cc(new|old)[0-9]*$' \
         AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
             WHERE p.relid = i.indrelid AND p.pid <> $2) \
         ORDER BY 2",
    )
    .bind(table_oid)
    .bind(own_pid)
    .fetch_all(conn)
    .await
    .map_err(|e| format!("looking for leftovers: {}", pg_message(&e)))?;
    rows.iter()
        .map(|(schema, name)| Qualified::parse(&format!("{schema}.{name}")))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a leftover index has an unusual name ({e}): drop it by hand"))
}

fn drop_index(index: &Qualified) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")
}

#[async_trait::async_trait]
impl JobKind for Reindex {
    fn name(&self) -> &'static str {
        "reindex"
    }

    fn role(&self) -> crate::access::Role {
        crate::access::Role::Admin
    }

    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let spec = Spec::read(parameters)?;
        self.targets
            .plan_on(target, async |conn, target| {
                plan_on(conn, target, &spec).await
            })
            .await
    }

    fn key(&self, target: Option<&str>, parameters: &serde_json::Value) -> Option<String> {
        let spec = Spec::read(parameters).ok()?;
        Some(format!(
            "reindex:{}:{}.{}",
            target?,
            spec.index.schema.as_str(),
            spec.index.name.as_str()
        ))
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = Spec::read(parameters).map_err(JobError::Failed)?;
        self.targets
            .in_session(ctx, spec.lock_timeout_ms, async |ctx, session| {
                reindex(ctx, session, &spec).await
            })
            .await
    }
}

async fn replica_or_old(conn: &mut PgConnection, target: &str) -> Result<(), String> {
    let (replica, version): (bool, i32) =
        sqlx::query_as("SELECT pg_is_in_recovery(), current_setting('server_version_num')::int")
            .fetch_one(conn)
            .await
            .map_err(|e| format!("reading the server's state: {}", pg_message(&e)))?;
    if replica {
        return Err(format!(
            "`{target}` is a replica (in recovery): reindex on the primary"
        ));
    }
    if version < 120_000 {
        return Err(format!(
            "`{target}` runs PostgreSQL {}: REINDEX CONCURRENTLY needs 12 or later",
            version / 10_000
        ));
    }
    Ok(())
}

async fn plan_on(conn: &mut PgConnection, target: &str, spec: &Spec) -> Result<Plan, String> {
    replica_or_old(&mut *conn, target).await?;
    let found = find(&mut *conn, spec, target).await?;
    let other: Option<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_progress_create_index WHERE relid = $1::oid LIMIT 1",
    )
    .bind(found.table_oid)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| format!("reading pg_stat_progress_create_index: {}", pg_message(&e)))?;
    if let Some(pid) = other {
        return Err(format!(
            "an index build runs on {} (pid {pid}): wait for it to end",
            found.table
        ));
    }
    let mut statements = JobSession::settings(spec.lock_timeout_ms);
    let left = leftovers(&mut *conn, found.table_oid, 0).await?;
    let mut summary = format!(
        "Rebuilds {} index {} on {} ({}) with REINDEX INDEX CONCURRENTLY on its own \
         connection: a new copy is built beside it and swapped in; reads and writes go on; each \
         lock wait gives up after {} ms.",
        if found.valid { "the" } else { "the INVALID" },
        spec.index,
        found.table,
        Unit::Bytes.format(found.bytes as f64),
        spec.lock_timeout_ms
    );
    if !left.is_empty() {
        summary.push_str(&format!(
            " Leftovers of an earlier REINDEX are dropped first: {}.",
            left.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        statements.extend(left.iter().map(drop_index));
    }
    summary.push_str(" If it fails or is cancelled, the _ccnew index it leaves is dropped.");
    statements.push(spec.statement());
    Ok(Plan {
        summary,
        statements,
        total: None,
        destructive: true,
    })
}

fn describe(s: &Sample) -> Checkpoint {
    let phase = s.text("phase").unwrap_or("waiting for a lock").to_owned();
    let (done, total) = if s.number("blocks_total") > 0 {
        (s.number("blocks_done"), s.number("blocks_total"))
    } else {
        (s.number("tuples_done"), s.number("tuples_total"))
    };
    let text = if total > 0 {
        format!("{phase} ({done}/{total})")
    } else {
        phase
    };
    Checkpoint {
        done,
        total: (total > 0).then_some(total),
        phase: s.with_blocker(text),
    }
}

/// Drops the leftovers on the table; `Ok` names them, `Err` says what is still there.
async fn clean_up(session: &mut JobSession, table_oid: i64) -> Result<Vec<String>, String> {
    let pid = session.pid();
    let left = leftovers(session.monitor(), table_oid, pid).await?;
    if left.is_empty() {
        return Ok(Vec::new());
    }
    session
        .execute(&lock_timeout(CLEANUP_LOCK_TIMEOUT_MS))
        .await?;
    let mut dropped = Vec::new();
    for index in &left {
        session.execute(&drop_index(index)).await.map_err(|e| {
            format!(
                "the INVALID index {index} it left could not be dropped ({e}); drop it with `{}`",
                drop_index(index)
            )
        })?;
        dropped.push(index.to_string());
    }
    Ok(dropped)
}

async fn reindex(
    ctx: &mut JobContext,
    session: &mut JobSession,
    spec: &Spec,
) -> Result<serde_json::Value, JobError> {
    let target = ctx.job().target.clone().unwrap_or_default();
    replica_or_old(session.monitor(), &target)
        .await
        .map_err(JobError::Failed)?;
    let found = find(session.monitor(), spec, &target)
        .await
        .map_err(JobError::Failed)?;
    let pid = session.pid();
    for index in leftovers(session.monitor(), found.table_oid, pid)
        .await
        .map_err(JobError::Failed)?
    {
        session
            .execute(&drop_index(&index))
            .await
            .map_err(|e| JobError::Failed(format!("dropping the leftover {index}: {e}")))?;
    }
    let statement = spec.statement();
    let watched = session
        .watch(
            ctx,
            &statement,
            &["pg_stat_progress_create_index"],
            describe,
        )
        .await;
    if let Err(error) = watched.result {
        let cleanup = clean_up(session, found.table_oid).await;
        let said = match &cleanup {
            Ok(d) if d.is_empty() => "nothing was left behind".to_owned(),
            Ok(d) => format!("the INVALID leftovers were dropped: {}", d.join(", ")),
            Err(left) => left.clone(),
        };
        return match (watched.cancelled, cleanup.is_ok()) {
            (true, true) => {
                tracing::info!(job = ctx.job().id, "reindex cancelled; {said}");
                Err(JobError::Cancelled)
            }
            (true, false) => Err(JobError::Failed(format!("cancelled; but {said}"))),
            (false, _) => Err(JobError::Failed(format!(
                "REINDEX INDEX CONCURRENTLY failed: {error}; {said}"
            ))),
        };
    }
    let after = find(session.monitor(), spec, &target)
        .await
        .map_err(JobError::Failed)?;
    ctx.checkpoint(Checkpoint {
        done: 1,
        total: Some(1),
        phase: "rebuilt".into(),
    })
    .await
    .or_else(|e| if watched.cancelled { Ok(()) } else { Err(e) })?;
    Ok(serde_json::json!({
        "index": spec.index.to_string(),
        "table": found.table,
        "statement": statement,
        "valid": after.valid,
        "replaced_oid": found.oid,
        "size_bytes_before": found.bytes,
        "size_bytes_after": after.bytes,
        "duration_ms": watched.duration.as_millis() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_refuses_parameters() {
        let s = Spec::read(&json!({"index": "app.events_user_idx"})).unwrap();
        assert_eq!(
            s.statement(),
            "REINDEX INDEX CONCURRENTLY \"app\".\"events_user_idx\""
        );
        assert_eq!(s.lock_timeout_ms, DEFAULT_LOCK_TIMEOUT_MS);
        let bad = |p: serde_json::Value| Spec::read(&p).unwrap_err();
        assert!(bad(json!({"index": "i; drop table t"})).contains("';' is not allowed"));
        assert!(bad(json!({"index": "order"})).contains("reserved word"));
        assert!(bad(json!({"index": "i", "lock_timeout_ms": 10})).contains("between"));
        assert_eq!(
            drop_index(&s.index),
            "DROP INDEX CONCURRENTLY IF EXISTS \"app\".\"events_user_idx\""
        );
    }
}
