//! The `vacuum` job kind: `VACUUM` (or `ANALYZE` alone) of one table or the whole database, with
//! the options the server's version supports, on the job's own connection, its progress read from
//! `pg_stat_progress_vacuum` (`_cluster` for FULL, `_analyze` for the ANALYZE step) and cancel
//! sent with `pg_cancel_backend` to the pid it runs on.

use serde::Deserialize;
use sqlx::PgConnection;

use super::Qualified;
use super::create_index::{DEFAULT_LOCK_TIMEOUT_MS, LOCK_TIMEOUT_MS};
use crate::format::Unit;
use crate::jobs::kinds::{JobSession, Sample, TargetUrls, pg_message};
use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};

/// The `vacuum` kind: `{"table": "public.events", "analyze": true, "freeze": false,
/// "full": false, "skip_locked": false, "index_cleanup": "auto", "parallel": 2,
/// "analyze_only": false, "lock_timeout_ms": 5000}`; without `table`, the whole database.
pub struct Vacuum {
    targets: TargetUrls,
}

impl Vacuum {
    /// The kind, for these targets.
    pub fn new(targets: TargetUrls) -> Self {
        Self { targets }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    analyze: bool,
    #[serde(default)]
    analyze_only: bool,
    #[serde(default)]
    freeze: bool,
    #[serde(default)]
    full: bool,
    #[serde(default)]
    skip_locked: bool,
    #[serde(default)]
    index_cleanup: Option<String>,
    #[serde(default)]
    parallel: Option<u32>,
    #[serde(default)]
    lock_timeout_ms: Option<u64>,
}

/// A checked VACUUM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The table, or the whole database.
    pub table: Option<Qualified>,
    /// `ANALYZE` after vacuuming.
    pub analyze: bool,
    /// `ANALYZE` only, no VACUUM.
    pub analyze_only: bool,
    /// `FREEZE`.
    pub freeze: bool,
    /// `FULL`: rewrites the table under ACCESS EXCLUSIVE.
    pub full: bool,
    /// `SKIP_LOCKED` (12+).
    pub skip_locked: bool,
    /// `INDEX_CLEANUP` `auto` (14+), `on` or `off` (12+).
    pub index_cleanup: Option<&'static str>,
    /// `PARALLEL n` (13+).
    pub parallel: Option<u32>,
    /// The `lock_timeout` of the session, ms.
    pub lock_timeout_ms: u64,
}

impl Spec {
    /// Reads and checks the parameters; nothing connects.
    pub fn read(parameters: &serde_json::Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(parameters.clone())
            .map_err(|e| format!("vacuum parameters: {e}"))?;
        let table = match raw.table.as_deref().map(str::trim) {
            None | Some("") | Some("*") => None,
            Some(t) => Some(Qualified::parse(t).map_err(|e| format!("table: {e}"))?),
        };
        let index_cleanup = match raw.index_cleanup.as_deref().map(str::to_ascii_lowercase) {
            None => None,
            Some(v) => Some(match v.as_str() {
                "auto" => "AUTO",
                "on" => "ON",
                "off" => "OFF",
                _ => return Err(format!("`index_cleanup` is auto, on or off, not `{v}`")),
            }),
        };
        if let Some(n) = raw.parallel
            && n > 1024
        {
            return Err(format!("`parallel` must be at most 1024, not {n}"));
        }
        if raw.analyze_only
            && (raw.full || raw.freeze || index_cleanup.is_some() || raw.parallel.is_some())
        {
            return Err(
                "`analyze_only` runs ANALYZE alone: FULL, FREEZE, INDEX_CLEANUP and PARALLEL \
                 are VACUUM options"
                    .into(),
            );
        }
        if raw.full && (index_cleanup.is_some() || raw.parallel.is_some()) {
            return Err(
                "VACUUM FULL rewrites the table: INDEX_CLEANUP and PARALLEL do not apply".into(),
            );
        }
        let lock_timeout_ms = raw.lock_timeout_ms.unwrap_or(DEFAULT_LOCK_TIMEOUT_MS);
        if !LOCK_TIMEOUT_MS.contains(&lock_timeout_ms) {
            return Err(format!(
                "`lock_timeout_ms` must be between {} and {}, not {lock_timeout_ms}",
                LOCK_TIMEOUT_MS.start(),
                LOCK_TIMEOUT_MS.end()
            ));
        }
        Ok(Self {
            table,
            analyze: raw.analyze,
            analyze_only: raw.analyze_only,
            freeze: raw.freeze,
            full: raw.full,
            skip_locked: raw.skip_locked,
            index_cleanup,
            parallel: raw.parallel,
            lock_timeout_ms,
        })
    }

    /// The statement for a server of `version` (`server_version_num`); the refusal names the
    /// option the server lacks.
    pub fn statement(&self, version: i32) -> Result<String, String> {
        let needs = |option: &str, at: i32| {
            if version < at {
                Err(format!(
                    "{option} needs PostgreSQL {} or later; the server runs {}",
                    at / 10_000,
                    version / 10_000
                ))
            } else {
                Ok(())
            }
        };
        let mut options = Vec::new();
        if !self.analyze_only {
            if self.full {
                options.push("FULL".to_owned());
            }
            if self.freeze {
                options.push("FREEZE".to_owned());
            }
            if self.analyze {
                options.push("ANALYZE".to_owned());
            }
            if let Some(v) = self.index_cleanup {
                needs("INDEX_CLEANUP", 120_000)?;
                if v == "AUTO" {
                    needs("INDEX_CLEANUP AUTO", 140_000)?;
                }
                options.push(format!("INDEX_CLEANUP {v}"));
            }
            if let Some(n) = self.parallel {
                needs("PARALLEL", 130_000)?;
                options.push(format!("PARALLEL {n}"));
            }
        }
        if self.skip_locked {
            needs("SKIP_LOCKED", 120_000)?;
            options.push("SKIP_LOCKED".to_owned());
        }
        let mut sql = if self.analyze_only {
            "ANALYZE".to_owned()
        } else {
            "VACUUM".to_owned()
        };
        if !options.is_empty() {
            sql.push_str(&format!(" ({})", options.join(", ")));
        }
        if let Some(t) = &self.table {
            sql.push_str(&format!(" {t}"));
        }
        Ok(sql)
    }

    /// The progress views that follow the statement on a server of `version`.
    fn views(&self, version: i32) -> Vec<&'static str> {
        let mut views = Vec::new();
        if self.full && !self.analyze_only {
            if version >= 120_000 {
                views.push("pg_stat_progress_cluster");
            }
        } else if !self.analyze_only {
            views.push("pg_stat_progress_vacuum");
        }
        if (self.analyze || self.analyze_only) && version >= 130_000 {
            views.push("pg_stat_progress_analyze");
        }
        views
    }

    fn what(&self) -> String {
        self.table.as_ref().map_or_else(
            || "every table of the database".to_owned(),
            |t| t.to_string(),
        )
    }
}

/// Dead tuples and pages of the table (or of every user table).
#[derive(Debug, Clone, Copy)]
struct Figures {
    dead: i64,
    live: i64,
    pages: i64,
    bytes: i64,
}

async fn figures(conn: &mut PgConnection, table: Option<&Qualified>) -> Result<Figures, String> {
    let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT sum(s.n_dead_tup)::int8, sum(s.n_live_tup)::int8, \
         sum(pg_relation_size(s.relid) / current_setting('block_size')::int8)::int8, \
         sum(pg_relation_size(s.relid))::int8 \
         FROM pg_stat_user_tables s \
         WHERE ($1::text IS NULL OR (s.schemaname = $1 AND s.relname = $2))",
    )
    .bind(table.map(|t| t.schema.as_str()))
    .bind(table.map(|t| t.name.as_str()))
    .fetch_one(conn)
    .await
    .map_err(|e| format!("reading pg_stat_user_tables: {}", pg_message(&e)))?;
    Ok(Figures {
        dead: row.0.unwrap_or(0),
        live: row.1.unwrap_or(0),
        pages: row.2.unwrap_or(0),
        bytes: row.3.unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl JobKind for Vacuum {
    fn name(&self) -> &'static str {
        "vacuum"
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
        let table = spec.table.as_ref().map_or_else(
            || "*".to_owned(),
            |t| format!("{}.{}", t.schema.as_str(), t.name.as_str()),
        );
        Some(format!("vacuum:{}:{table}", target?))
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let spec = Spec::read(parameters).map_err(JobError::Failed)?;
        self.targets
            .in_session(ctx, spec.lock_timeout_ms, async |ctx, session| {
                vacuum(ctx, session, &spec).await
            })
            .await
    }
}

async fn server(conn: &mut PgConnection, target: &str) -> Result<i32, String> {
    let (replica, version): (bool, i32) =
        sqlx::query_as("SELECT pg_is_in_recovery(), current_setting('server_version_num')::int")
            .fetch_one(conn)
            .await
            .map_err(|e| format!("reading the server's state: {}", pg_message(&e)))?;
    if replica {
        return Err(format!(
            "`{target}` is a replica (in recovery): VACUUM runs on the primary"
        ));
    }
    Ok(version)
}

async fn plan_on(conn: &mut PgConnection, target: &str, spec: &Spec) -> Result<Plan, String> {
    let version = server(&mut *conn, target).await?;
    let statement = spec.statement(version)?;
    if let Some(t) = &spec.table {
        let relkind: Option<String> = sqlx::query_scalar(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(t.schema.as_str())
        .bind(t.name.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| format!("reading the table: {}", pg_message(&e)))?;
        match relkind.as_deref() {
            None => return Err(format!("table {t} does not exist on `{target}`")),
            Some("r" | "m" | "p" | "t") => {}
            Some(_) => return Err(format!("{t} is not a table")),
        }
    }
    let before = figures(&mut *conn, spec.table.as_ref()).await?;
    let verb = if spec.analyze_only {
        "Analyzes"
    } else {
        "Vacuums"
    };
    let mut summary = format!(
        "{verb} {} on its own connection ({} live and {} dead tuples, {}).",
        spec.what(),
        Unit::Count.format(before.live as f64),
        Unit::Count.format(before.dead as f64),
        Unit::Bytes.format(before.bytes as f64),
    );
    if spec.full && !spec.analyze_only {
        let total: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(pg_total_relation_size(relid)), 0)::int8 \
             FROM pg_stat_user_tables \
             WHERE ($1::text IS NULL OR (schemaname = $1 AND relname = $2))",
        )
        .bind(spec.table.as_ref().map(|t| t.schema.as_str()))
        .bind(spec.table.as_ref().map(|t| t.name.as_str()))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| format!("reading the table's size: {}", pg_message(&e)))?;
        summary.push_str(&format!(
            " FULL takes an ACCESS EXCLUSIVE lock: reads and writes of the table wait until it \
             ends; it rewrites the table and its indexes and needs about {} of free disk.",
            Unit::Bytes.format(total as f64)
        ));
    }
    summary.push_str(&format!(
        " Each lock wait gives up after {} ms; cancel stops it with pg_cancel_backend.",
        spec.lock_timeout_ms
    ));
    let mut statements = JobSession::settings(spec.lock_timeout_ms);
    statements.push(statement);
    Ok(Plan {
        summary,
        statements,
        total: None,
        destructive: spec.full && !spec.analyze_only,
    })
}

/// VACUUM's progress, by the view the sample came from.
fn describe(s: &Sample) -> Checkpoint {
    let relation = s
        .relation
        .as_deref()
        .map(|r| format!("{r}: "))
        .unwrap_or_default();
    let phase = s.text("phase").unwrap_or("waiting for a lock");
    let (done, total, detail) = if s.fields.get("sample_blks_total").is_some() {
        // pg_stat_progress_analyze
        let (done, total) = (
            s.number("sample_blks_scanned"),
            s.number("sample_blks_total"),
        );
        (done, total, format!("sample blocks {done}/{total}"))
    } else if s.fields.get("heap_tuples_written").is_some() {
        // pg_stat_progress_cluster (VACUUM FULL)
        let (done, total) = (s.number("heap_blks_scanned"), s.number("heap_blks_total"));
        (
            done,
            total,
            format!(
                "heap blocks {done}/{total} scanned, {} tuples written",
                s.number("heap_tuples_written")
            ),
        )
    } else if s.fields.get("heap_blks_total").is_some() {
        // pg_stat_progress_vacuum; columns differ from PostgreSQL 17 on.
        let total = s.number("heap_blks_total");
        let done = if phase == "vacuuming heap" {
            s.number("heap_blks_vacuumed")
        } else {
            s.number("heap_blks_scanned")
        };
        let mut detail = format!(
            "heap blocks {}/{total} scanned, {} vacuumed, index passes {}",
            s.number("heap_blks_scanned"),
            s.number("heap_blks_vacuumed"),
            s.number("index_vacuum_count")
        );
        if s.fields.get("indexes_total").is_some() {
            detail.push_str(&format!(
                ", indexes {}/{}",
                s.number("indexes_processed"),
                s.number("indexes_total")
            ));
        }
        for dead in ["num_dead_tuples", "num_dead_item_ids"] {
            if s.fields.get(dead).is_some() {
                detail.push_str(&format!(", dead tuples {}", s.number(dead)));
            }
        }
        (done, total, detail)
    } else {
        (0, 0, String::new())
    };
    let text = if detail.is_empty() {
        format!("{relation}{phase}")
    } else {
        format!("{relation}{phase} ({detail})")
    };
    Checkpoint {
        done,
        total: (total > 0).then_some(total),
        phase: s.with_blocker(text),
    }
}

async fn vacuum(
    ctx: &mut JobContext,
    session: &mut JobSession,
    spec: &Spec,
) -> Result<serde_json::Value, JobError> {
    let target = ctx.job().target.clone().unwrap_or_default();
    let version = server(session.monitor(), &target)
        .await
        .map_err(JobError::Failed)?;
    let statement = spec.statement(version).map_err(JobError::Failed)?;
    let before = figures(session.monitor(), spec.table.as_ref())
        .await
        .map_err(JobError::Failed)?;
    let watched = session
        .watch(ctx, &statement, &spec.views(version), describe)
        .await;
    match watched.result {
        Err(_) if watched.cancelled => return Err(JobError::Cancelled),
        Err(e) => return Err(JobError::Failed(format!("{statement} failed: {e}"))),
        Ok(()) => {}
    }
    let after = figures(session.monitor(), spec.table.as_ref())
        .await
        .map_err(JobError::Failed)?;
    ctx.checkpoint(Checkpoint {
        done: 1,
        total: Some(1),
        phase: "done".into(),
    })
    .await
    .or_else(|e| if watched.cancelled { Ok(()) } else { Err(e) })?;
    Ok(serde_json::json!({
        "statement": statement,
        "table": spec.table.as_ref().map(ToString::to_string),
        "duration_ms": watched.duration.as_millis() as u64,
        "dead_tuples_before": before.dead,
        "dead_tuples_after": after.dead,
        "pages_before": before.pages,
        "pages_after": after.pages,
        "bytes_before": before.bytes,
        "bytes_after": after.bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;
    use crate::secret::SecretUrl;
    use crate::target::TargetKind;
    use serde_json::json;

    fn spec(p: serde_json::Value) -> Result<Spec, String> {
        Spec::read(&p)
    }

    #[test]
    fn statements_follow_the_server_version() {
        let s = spec(json!({"table": "events", "analyze": true})).unwrap();
        assert_eq!(
            s.statement(150_000).unwrap(),
            "VACUUM (ANALYZE) \"public\".\"events\""
        );
        let all = spec(
            json!({"freeze": true, "skip_locked": true, "index_cleanup": "auto",
            "parallel": 2}),
        )
        .unwrap();
        assert_eq!(
            all.statement(150_000).unwrap(),
            "VACUUM (FREEZE, INDEX_CLEANUP AUTO, PARALLEL 2, SKIP_LOCKED)"
        );
        assert!(
            all.statement(130_000)
                .unwrap_err()
                .contains("INDEX_CLEANUP AUTO needs PostgreSQL 14")
        );
        let par = spec(json!({"parallel": 2})).unwrap();
        assert!(
            par.statement(120_000)
                .unwrap_err()
                .contains("PARALLEL needs PostgreSQL 13")
        );
        let sk = spec(json!({"skip_locked": true, "table": "t"})).unwrap();
        assert!(sk.statement(110_000).unwrap_err().contains("SKIP_LOCKED"));
        assert_eq!(
            spec(json!({"table": "t"}))
                .unwrap()
                .statement(90_600)
                .unwrap(),
            "VACUUM \"public\".\"t\""
        );
        let full = spec(json!({"table": "a.t", "full": true})).unwrap();
        assert_eq!(
            full.statement(150_000).unwrap(),
            "VACUUM (FULL) \"a\".\"t\""
        );
        assert_eq!(full.views(150_000), ["pg_stat_progress_cluster"]);
        let an = spec(json!({"analyze_only": true, "skip_locked": true})).unwrap();
        assert_eq!(an.statement(150_000).unwrap(), "ANALYZE (SKIP_LOCKED)");
        assert_eq!(an.views(150_000), ["pg_stat_progress_analyze"]);
        assert_eq!(
            s.views(150_000),
            ["pg_stat_progress_vacuum", "pg_stat_progress_analyze"]
        );
    }

    #[test]
    fn bad_parameters_are_refused_with_the_reason() {
        let bad = |p: serde_json::Value| spec(p).unwrap_err();
        assert!(bad(json!({"table": "t; drop table t"})).contains("';' is not allowed"));
        assert!(bad(json!({"table": "select"})).contains("reserved word"));
        assert!(bad(json!({"table": "\"t\""})).contains("'\"' is not allowed"));
        assert!(bad(json!({"index_cleanup": "maybe"})).contains("auto, on or off"));
        assert!(bad(json!({"parallel": 5000})).contains("at most 1024"));
        assert!(bad(json!({"full": true, "parallel": 2})).contains("do not apply"));
        assert!(bad(json!({"analyze_only": true, "freeze": true})).contains("ANALYZE alone"));
        assert!(bad(json!({"verbose": true})).contains("verbose"));
    }

    #[tokio::test]
    async fn names_are_refused_before_anything_connects() {
        let kind = Vacuum::new(TargetUrls::new(&[Target::new(
            "db",
            TargetKind::Postgres,
            SecretUrl::parse("postgres://u:secret@127.0.0.1:1/app").unwrap(),
        )]));
        let e = kind
            .plan(Some("db"), &json!({"table": "t;"}))
            .await
            .unwrap_err();
        assert!(e.contains("';' is not allowed"), "{e}");
        assert_eq!(
            kind.key(Some("db"), &json!({"table": "t"})),
            Some("vacuum:db:public.t".into())
        );
        assert_eq!(kind.key(Some("db"), &json!({})), Some("vacuum:db:*".into()));
    }

    #[test]
    fn progress_reads_the_columns_there_are() {
        let v16 = Sample {
            fields: json!({"phase": "scanning heap", "heap_blks_total": 100,
                "heap_blks_scanned": 30, "heap_blks_vacuumed": 0, "index_vacuum_count": 0,
                "max_dead_tuples": 10, "num_dead_tuples": 5}),
            relation: Some("events".into()),
            blocker: None,
        };
        let at = describe(&v16);
        assert_eq!((at.done, at.total), (30, Some(100)));
        assert_eq!(
            at.phase,
            "events: scanning heap (heap blocks 30/100 scanned, 0 vacuumed, index passes 0, \
             dead tuples 5)"
        );
        let v17 = Sample {
            fields: json!({"phase": "vacuuming heap", "heap_blks_total": 100,
                "heap_blks_scanned": 100, "heap_blks_vacuumed": 60, "index_vacuum_count": 1,
                "indexes_total": 2, "indexes_processed": 2, "num_dead_item_ids": 7}),
            relation: Some("events".into()),
            blocker: None,
        };
        let at = describe(&v17);
        assert_eq!(at.done, 60);
        assert!(
            at.phase.contains("indexes 2/2, dead tuples 7"),
            "{}",
            at.phase
        );
        let full = Sample {
            fields: json!({"phase": "seq scanning heap", "heap_blks_total": 10,
                "heap_blks_scanned": 4, "heap_tuples_written": 300}),
            relation: Some("events".into()),
            blocker: None,
        };
        assert!(describe(&full).phase.contains("300 tuples written"));
    }
}
