//! Users, sessions and the audit log in SQLite. Every change runs in one transaction with its
//! audit row.

use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::access::{AuditFilter, AuditPage, AuditRecord, CurrentUser, Role, UserSummary};
use crate::store::{NewAudit, NewSession, Result, StoredUser};

/// How often at most a session's `last_seen_at` is written (a write per request would be waste);
/// a quarter of the idle timeout when that is shorter, so activity always keeps a session alive.
const TOUCH_EVERY_MS: u64 = 60_000;

pub async fn append(conn: &mut SqliteConnection, a: &NewAudit) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, role, action, target, object, parameters, outcome, client_addr)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.at_ms as i64)
    .bind(&a.actor)
    .bind(a.role.map(Role::as_str))
    .bind(&a.action)
    .bind(&a.target)
    .bind(&a.object)
    .bind(a.parameters.to_string())
    .bind(&a.outcome)
    .bind(&a.client_addr)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `change` (a statement that touches at most one row) in a transaction with its audit row,
/// which is written only when the row was touched: whether it was.
pub async fn audited<'q>(
    pool: &SqlitePool,
    change: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    audit: &NewAudit,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = change.execute(&mut *tx).await?.rows_affected() > 0;
    if changed {
        append(&mut tx, audit).await?;
        tx.commit().await?;
    }
    Ok(changed)
}

fn role(s: &str) -> Role {
    s.parse().unwrap_or(Role::Viewer)
}

pub async fn count_users(pool: &SqlitePool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_all(pool)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(n as u64)
}

pub async fn user(pool: &SqlitePool, username: &str) -> Result<Option<StoredUser>> {
    let row = sqlx::query(
        "SELECT id, username, password_hash, role, failed_attempts, locked_until FROM users WHERE username = ?",
    )
    .bind(username)
    .fetch_all(pool).await?.into_iter().next();
    Ok(row.map(|r| StoredUser {
        id: r.get("id"),
        username: r.get("username"),
        password_hash: r.get("password_hash"),
        role: role(r.get("role")),
        failed_attempts: r.get::<i64, _>("failed_attempts") as u32,
        locked_until_ms: r.get::<Option<i64>, _>("locked_until").map(|v| v as u64),
    }))
}

pub async fn list_users(pool: &SqlitePool, now_ms: u64) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query(
        "SELECT u.username, u.role, u.created_at, u.locked_until,
                (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > ?) AS sessions
         FROM users u ORDER BY u.username",
    )
    .bind(now_ms as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| UserSummary {
            username: r.get("username"),
            role: role(r.get("role")),
            created_at_ms: r.get::<i64, _>("created_at") as u64,
            locked_until_ms: r
                .get::<Option<i64>, _>("locked_until")
                .map(|v| v as u64)
                .filter(|v| *v > now_ms),
            sessions: r.get::<i64, _>("sessions") as u32,
        })
        .collect())
}

pub async fn insert_user(
    pool: &SqlitePool,
    username: &str,
    hash: &str,
    role: Role,
    audit: &NewAudit,
) -> Result<bool> {
    let insert = sqlx::query(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(hash)
    .bind(role.as_str())
    .bind(audit.at_ms as i64)
    .bind(audit.at_ms as i64);
    audited(pool, insert, audit).await
}

pub async fn update_user(
    pool: &SqlitePool,
    username: &str,
    hash: Option<&str>,
    new_role: Option<Role>,
    audit: &NewAudit,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .next();
    let Some(id) = id else { return Ok(false) };
    sqlx::query(
        "UPDATE users SET password_hash = COALESCE(?, password_hash), role = COALESCE(?, role),
                failed_attempts = 0, locked_until = NULL, updated_at = ? WHERE id = ?",
    )
    .bind(hash)
    .bind(new_role.map(Role::as_str))
    .bind(audit.at_ms as i64)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    // A new password or role takes effect at once: every open session of the user ends.
    sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn delete_user(pool: &SqlitePool, username: &str, audit: &NewAudit) -> Result<bool> {
    // Sessions go with the user (ON DELETE CASCADE).
    let delete = sqlx::query("DELETE FROM users WHERE username = ?").bind(username);
    audited(pool, delete, audit).await
}

pub async fn record_sign_in_failure(
    pool: &SqlitePool,
    user_id: Option<i64>,
    lock_until_ms: Option<u64>,
    audit: &NewAudit,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(id) = user_id {
        sqlx::query(
            "UPDATE users SET failed_attempts = CASE WHEN ? IS NULL THEN failed_attempts + 1 ELSE 0 END,
                    locked_until = COALESCE(?, locked_until) WHERE id = ?",
        )
        .bind(lock_until_ms.map(|v| v as i64))
        .bind(lock_until_ms.map(|v| v as i64))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn open_session(pool: &SqlitePool, s: &NewSession, audit: &NewAudit) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(old) = &s.replaces {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(old)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = ?")
        .bind(s.user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, client_addr)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.id_hash)
    .bind(s.user_id)
    .bind(s.created_at_ms as i64)
    .bind(s.created_at_ms as i64)
    .bind(s.expires_at_ms as i64)
    .bind(&s.client_addr)
    .execute(&mut *tx)
    .await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn session_user(
    pool: &SqlitePool,
    id_hash: &str,
    now_ms: u64,
    idle_ms: u64,
) -> Result<Option<CurrentUser>> {
    let row = sqlx::query(
        "SELECT u.username, u.role, s.last_seen_at, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
    )
    .bind(id_hash)
    .fetch_all(pool)
    .await?
    .into_iter()
    .next();
    let Some(row) = row else { return Ok(None) };
    let last_seen = row.get::<i64, _>("last_seen_at") as u64;
    let expires = row.get::<i64, _>("expires_at") as u64;
    if expires <= now_ms || last_seen + idle_ms <= now_ms {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(pool)
            .await?;
        return Ok(None);
    }
    if now_ms.saturating_sub(last_seen) >= TOUCH_EVERY_MS.min(idle_ms / 4) {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(now_ms as i64)
            .bind(id_hash)
            .execute(pool)
            .await?;
    }
    Ok(Some(CurrentUser {
        username: row.get("username"),
        role: role(row.get("role")),
    }))
}

pub async fn close_session(pool: &SqlitePool, id_hash: &str, audit: &NewAudit) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(&mut *tx)
        .await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn audit_page(pool: &SqlitePool, f: &AuditFilter) -> Result<AuditPage> {
    let limit = f.limit.clamp(1, 200) as i64;
    let action_prefix = f
        .action
        .as_ref()
        .map(|a| format!("{}%", a.replace('%', "")));
    const WHERE: &str = "(?1 IS NULL OR actor = ?1)
        AND (?2 IS NULL OR action LIKE ?2)
        AND (?3 IS NULL OR (?3 = 'ok' AND outcome = 'ok') OR (?3 = 'failed' AND outcome <> 'ok'))
        AND (?6 IS NULL OR object = ?6)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM audit_log WHERE {WHERE}"))
        .bind(&f.actor)
        .bind(&action_prefix)
        .bind(&f.outcome)
        .bind(None::<i64>)
        .bind(None::<i64>)
        .bind(&f.object)
        .fetch_all(pool)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?;
    let rows = sqlx::query(&format!(
        "SELECT id, at, actor, role, action, target, object, parameters, outcome, client_addr
         FROM audit_log WHERE {WHERE} AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5"
    ))
    .bind(&f.actor)
    .bind(&action_prefix)
    .bind(&f.outcome)
    .bind(f.before_id)
    .bind(limit + 1)
    .bind(&f.object)
    .fetch_all(pool)
    .await?;
    let mut rows: Vec<AuditRecord> = rows
        .into_iter()
        .map(|r| AuditRecord {
            id: r.get("id"),
            at_ms: r.get::<i64, _>("at") as u64,
            actor: r.get("actor"),
            role: r
                .get::<Option<String>, _>("role")
                .and_then(|s| s.parse().ok()),
            action: r.get("action"),
            target: r.get("target"),
            object: r.get("object"),
            parameters: r.get("parameters"),
            outcome: r.get("outcome"),
            client_addr: r.get("client_addr"),
        })
        .collect();
    let next_before_id = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(AuditPage {
        rows,
        total: total as u64,
        next_before_id,
    })
}
