//! The job queue in SQLite. Every transition starts with its write (an `UPDATE … RETURNING`
//! guarded by the state it expects), so concurrent workers and console processes serialise on
//! SQLite's write lock and never both win; the audit row goes in the same transaction.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::access::append;
use crate::jobs::{
    Attempt, Claimed, Enqueued, JobFilter, JobPage, JobState, JobSummary, NewJob, Outcome,
    Priority, Progress,
};
use crate::store::{NewAudit, Result};

/// What a lost lease leaves as the attempt's error.
const LEASE_LOST: &str = "its worker stopped renewing the lease (the console stopped or hung)";

fn object(id: i64) -> Option<String> {
    Some(format!("job {id}"))
}

pub async fn enqueue(
    pool: &SqlitePool,
    job: &NewJob,
    requested_by: &str,
    now_ms: u64,
    audit: &NewAudit,
) -> Result<Enqueued> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO jobs (kind, target, priority, state, parameters, idempotency_key, attempts,
                           max_attempts, run_at, requested_by, created_at, updated_at, plan)
         VALUES (?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(&job.kind)
    .bind(&job.target)
    .bind(job.priority.rank())
    .bind(job.parameters.to_string())
    .bind(&job.idempotency_key)
    .bind(i64::from(job.max_attempts))
    .bind(job.run_at_ms.unwrap_or(now_ms) as i64)
    .bind(requested_by)
    .bind(now_ms as i64)
    .bind(now_ms as i64)
    .bind(job.plan.as_ref().map(|p| p.to_string()))
    .fetch_all(&mut *tx)
    .await
    .and_then(|rows| rows.into_iter().next().ok_or(sqlx::Error::RowNotFound));
    match inserted {
        Ok(row) => {
            let id: i64 = row.get("id");
            let mut audit = audit.clone();
            audit.object = object(id);
            append(&mut tx, &audit).await?;
            tx.commit().await?;
            Ok(Enqueued::New(id))
        }
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            tx.rollback().await?;
            let id: i64 = sqlx::query_scalar(
                "SELECT id FROM jobs WHERE idempotency_key = ? AND state IN ('pending', 'running')",
            )
            .bind(&job.idempotency_key)
            .fetch_all(pool)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)?;
            Ok(Enqueued::Duplicate(id))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn claim(
    pool: &SqlitePool,
    worker: &str,
    now_ms: u64,
    lease_until_ms: u64,
    per_target: u32,
) -> Result<Option<Claimed>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE jobs
         SET state = 'running', attempts = attempts + 1, worker = ?1, lease_until = ?2,
             started_at = ?3, updated_at = ?3, cancel_requested = 0, progress = NULL
         WHERE state = 'pending' AND id = (
             SELECT j.id FROM jobs j
             WHERE j.state = 'pending' AND j.run_at <= ?3
               AND (j.target IS NULL
                    OR (SELECT count(*) FROM jobs r WHERE r.state = 'running' AND r.target = j.target) < ?4)
             ORDER BY j.priority, j.run_at, j.id
             LIMIT 1)
         RETURNING id, kind, target, parameters, attempts, max_attempts, requested_by",
    )
    .bind(worker)
    .bind(lease_until_ms as i64)
    .bind(now_ms as i64)
    .bind(i64::from(per_target))
    .fetch_all(&mut *tx).await?.into_iter().next();
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let claimed = Claimed {
        id: row.get("id"),
        kind: row.get("kind"),
        target: row.get("target"),
        parameters: json(row.get("parameters")),
        attempt: row.get::<i64, _>("attempts") as u32,
        max_attempts: row.get::<i64, _>("max_attempts") as u32,
        requested_by: row.get("requested_by"),
    };
    sqlx::query(
        "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES (?, ?, ?, ?)",
    )
    .bind(claimed.id)
    .bind(i64::from(claimed.attempt))
    .bind(worker)
    .bind(now_ms as i64)
    .execute(&mut *tx)
    .await?;
    let audit = NewAudit {
        at_ms: now_ms,
        actor: claimed.requested_by.clone(),
        role: None,
        action: "job.start".into(),
        target: claimed.target.clone(),
        object: object(claimed.id),
        parameters: serde_json::json!({ "attempt": claimed.attempt, "worker": worker }),
        outcome: "ok".into(),
        client_addr: None,
    };
    append(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(Some(claimed))
}

pub async fn heartbeat(
    pool: &SqlitePool,
    id: i64,
    worker: &str,
    lease_until_ms: u64,
    progress: Option<&Progress>,
) -> Result<Option<bool>> {
    let progress = progress.map(|p| serde_json::to_string(p).expect("progress encodes"));
    let cancel: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET lease_until = ?, progress = coalesce(?, progress), updated_at = ?
         WHERE id = ? AND worker = ? AND state = 'running'
         RETURNING cancel_requested",
    )
    .bind(lease_until_ms as i64)
    .bind(progress)
    .bind(crate::status::now_ms() as i64)
    .bind(id)
    .bind(worker)
    .fetch_all(pool)
    .await?
    .into_iter()
    .next();
    Ok(cancel.map(|c| c != 0))
}

/// Closes the latest attempt of job `id`.
async fn close_attempt(
    conn: &mut SqliteConnection,
    id: i64,
    now_ms: u64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE job_attempts SET finished_at = ?, outcome = ?, error = ?
         WHERE job_id = ? AND attempt = (SELECT attempts FROM jobs WHERE id = ?)",
    )
    .bind(now_ms as i64)
    .bind(outcome)
    .bind(error)
    .bind(id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish(
    pool: &SqlitePool,
    id: i64,
    worker: &str,
    outcome: &Outcome,
    now_ms: u64,
    audit: &NewAudit,
) -> Result<bool> {
    let (state, run_at, error, report, attempt_outcome) = match outcome {
        Outcome::Succeeded(report) => (
            JobState::Succeeded,
            None,
            None,
            Some(report.to_string()),
            "succeeded",
        ),
        Outcome::Cancelled => (JobState::Cancelled, None, None, None, "cancelled"),
        Outcome::Failed {
            error,
            retry_at_ms: Some(at),
        } => (
            JobState::Pending,
            Some(*at),
            Some(error.as_str()),
            None,
            "failed",
        ),
        Outcome::Failed { error, .. } => {
            (JobState::Dead, None, Some(error.as_str()), None, "failed")
        }
    };
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs
         SET state = ?1, run_at = coalesce(?2, run_at), last_error = coalesce(?3, last_error),
             report = coalesce(?4, report), worker = NULL, lease_until = NULL, updated_at = ?5,
             finished_at = CASE WHEN ?1 = 'pending' THEN NULL ELSE ?5 END
         WHERE id = ?6 AND worker = ?7 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(run_at.map(|v| v as i64))
    .bind(error)
    .bind(report)
    .bind(now_ms as i64)
    .bind(id)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !done {
        tx.rollback().await?;
        return Ok(false);
    }
    close_attempt(&mut tx, id, now_ms, attempt_outcome, error).await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn recover_expired(pool: &SqlitePool, now_ms: u64) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "UPDATE jobs
         SET state = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'interrupted' END,
             finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE ?1 END,
             run_at = ?1, worker = NULL, lease_until = NULL, last_error = ?2, updated_at = ?1
         WHERE state = 'running' AND lease_until < ?1
         RETURNING id, state, attempts, requested_by, target",
    )
    .bind(now_ms as i64)
    .bind(LEASE_LOST)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let id: i64 = row.get("id");
        let state: String = row.get("state");
        close_attempt(&mut tx, id, now_ms, "lost", Some(LEASE_LOST)).await?;
        let audit = NewAudit {
            at_ms: now_ms,
            actor: row.get("requested_by"),
            role: None,
            action: if state == "pending" {
                "job.recover".into()
            } else {
                "job.interrupted".into()
            },
            target: row.get("target"),
            object: object(id),
            parameters: serde_json::json!({
                "attempt": row.get::<i64, _>("attempts"),
                "error": LEASE_LOST,
            }),
            outcome: "ok".into(),
            client_addr: None,
        };
        append(&mut tx, &audit).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

pub async fn cancel(
    pool: &SqlitePool,
    id: i64,
    now_ms: u64,
    audit: &NewAudit,
) -> Result<Option<JobState>> {
    let mut tx = pool.begin().await?;
    let state: Option<String> = sqlx::query_scalar(
        "UPDATE jobs
         SET cancel_requested = CASE state WHEN 'running' THEN 1 ELSE cancel_requested END,
             finished_at = CASE state WHEN 'pending' THEN ?1 ELSE finished_at END,
             state = CASE state WHEN 'pending' THEN 'cancelled' ELSE state END,
             updated_at = ?1
         WHERE id = ?2 AND state IN ('pending', 'running')
         RETURNING state",
    )
    .bind(now_ms as i64)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .next();
    let Some(state) = state else {
        tx.rollback().await?;
        return Ok(None);
    };
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(state.parse().ok())
}

fn json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

fn summary(r: &SqliteRow) -> JobSummary {
    JobSummary {
        id: r.get("id"),
        kind: r.get("kind"),
        target: r.get("target"),
        priority: Priority::from_rank(r.get("priority")).unwrap_or(Priority::Normal),
        state: r
            .get::<String, _>("state")
            .parse()
            .unwrap_or(JobState::Interrupted),
        parameters: json(r.get("parameters")),
        plan: r.get::<Option<String>, _>("plan").map(json),
        attempts: r.get::<i64, _>("attempts") as u32,
        max_attempts: r.get::<i64, _>("max_attempts") as u32,
        run_at_ms: r.get::<i64, _>("run_at") as u64,
        progress: r
            .get::<Option<String>, _>("progress")
            .and_then(|p| serde_json::from_str(&p).ok()),
        last_error: r.get("last_error"),
        cancel_requested: r.get::<i64, _>("cancel_requested") != 0,
        report: r.get::<Option<String>, _>("report").map(json),
        requested_by: r.get("requested_by"),
        created_at_ms: r.get::<i64, _>("created_at") as u64,
        finished_at_ms: r.get::<Option<i64>, _>("finished_at").map(|v| v as u64),
    }
}

pub async fn get(pool: &SqlitePool, id: i64) -> Result<Option<JobSummary>> {
    let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .next();
    Ok(row.as_ref().map(summary))
}

/// `sql` with the filter's first five parameters bound.
fn filtered<'q>(
    sql: &'q str,
    f: &'q JobFilter,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    sqlx::query(sql)
        .bind(f.kind.as_deref())
        .bind(f.state.map(JobState::as_str))
        .bind(f.target.as_deref())
        .bind(f.requested_by.as_deref())
        .bind(f.since_ms.map(|v| v as i64))
}

pub async fn page(pool: &SqlitePool, f: &JobFilter) -> Result<JobPage> {
    let limit = i64::from(f.limit.clamp(1, 200));
    const WHERE: &str = "(?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR state = ?2)
        AND (?3 IS NULL OR target = ?3) AND (?4 IS NULL OR requested_by = ?4)
        AND (?5 IS NULL OR created_at >= ?5)";
    let count = format!("SELECT count(*) AS n FROM jobs WHERE {WHERE}");
    let select = format!(
        "SELECT * FROM jobs WHERE {WHERE} AND (?6 IS NULL OR id < ?6) ORDER BY id DESC LIMIT ?7"
    );
    let total: i64 = filtered(&count, f)
        .fetch_all(pool)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?
        .get("n");
    let rows = filtered(&select, f)
        .bind(f.before_id)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    let mut rows: Vec<JobSummary> = rows.iter().map(summary).collect();
    let next_before_id = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(JobPage {
        rows,
        total: total as u64,
        next_before_id,
    })
}

pub async fn active(pool: &SqlitePool, limit: u32) -> Result<Vec<JobSummary>> {
    let rows = sqlx::query(
        "SELECT * FROM jobs WHERE state IN ('running', 'pending')
         ORDER BY state = 'pending', priority, run_at, id LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(summary).collect())
}

pub async fn attempts(pool: &SqlitePool, id: i64) -> Result<Vec<Attempt>> {
    let rows = sqlx::query("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt")
        .bind(id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| Attempt {
            attempt: r.get::<i64, _>("attempt") as u32,
            worker: r.get("worker"),
            started_at_ms: r.get::<i64, _>("started_at") as u64,
            finished_at_ms: r.get::<Option<i64>, _>("finished_at").map(|v| v as u64),
            outcome: r.get("outcome"),
            error: r.get("error"),
        })
        .collect())
}

pub async fn prune(pool: &SqlitePool, before_ms: u64) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM jobs
         WHERE state IN ('succeeded', 'cancelled', 'dead', 'interrupted')
           AND finished_at IS NOT NULL AND finished_at < ?",
    )
    .bind(before_ms as i64)
    .execute(pool)
    .await?
    .rows_affected())
}
