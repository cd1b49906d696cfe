//! Users, sessions and the audit log in SQLite. Every change runs in one transaction with its
//! audit row.

use std::collections::HashSet;

use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::access::{AuditFilter, AuditPage, AuditRecord, CurrentUser, Role, UserSummary};
use crate::store::{Claim, LiveSession, Lockout, NewAudit, NewSession, Result, StoredUser};

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
    let row = sqlx::query("SELECT id, username, password_hash, role FROM users WHERE username = ?")
        .bind(username)
        .fetch_all(pool)
        .await?
        .into_iter()
        .next();
    Ok(row.map(|r| StoredUser {
        id: r.get("id"),
        username: r.get("username"),
        password_hash: r.get("password_hash"),
        role: role(r.get("role")),
    }))
}

pub async fn list_users(pool: &SqlitePool, now_ms: u64) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query(
        "SELECT u.username, u.role, u.created_at, u.locked_until,
                (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > ?1) AS sessions,
                (SELECT json_group_array(client_addr) FROM (SELECT f.client_addr FROM sign_in_failures f
                 WHERE f.user_id = u.id AND f.locked_until > ?1 ORDER BY f.client_addr)) AS locked_from,
                (SELECT max(f.locked_until) FROM sign_in_failures f
                 WHERE f.user_id = u.id AND f.locked_until > ?1) AS address_locked_until
         FROM users u ORDER BY u.username",
    )
    .bind(now_ms as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let waiting_until_ms = r
                .get::<Option<i64>, _>("locked_until")
                .map(|v| v as u64)
                .filter(|v| *v > now_ms);
            let address_locked_until = r
                .get::<Option<i64>, _>("address_locked_until")
                .map(|v| v as u64);
            UserSummary {
                username: r.get("username"),
                role: role(r.get("role")),
                created_at_ms: r.get::<i64, _>("created_at") as u64,
                locked_until_ms: waiting_until_ms.max(address_locked_until),
                locked_from: serde_json::from_str(r.get("locked_from")).unwrap_or_default(),
                waiting_until_ms,
                sessions: r.get::<i64, _>("sessions") as u32,
            }
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
    sqlx::query("DELETE FROM sign_in_failures WHERE user_id = ?")
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

pub async fn claim_sign_in(
    pool: &SqlitePool,
    user_id: i64,
    client_addr: &str,
    now_ms: u64,
    rules: &Lockout,
) -> Result<Claim> {
    let (now, lock_ms) = (now_ms as i64, rules.lock_ms as i64);
    // The transaction's first statement writes, so concurrent claims queue on SQLite's write
    // lock: each sees the counts the one before it left.
    let mut tx = pool.begin().await?;
    let here: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sign_in_failures (user_id, client_addr, failures, last_at, locked_until)
         VALUES (?1, ?2, 1, ?3, CASE WHEN ?4 <= 1 THEN ?3 + ?5 END)
         ON CONFLICT (user_id, client_addr) DO UPDATE SET
             failures = CASE WHEN last_at <= ?3 - ?5 THEN 1 ELSE failures + 1 END,
             locked_until = CASE WHEN (CASE WHEN last_at <= ?3 - ?5 THEN 1 ELSE failures + 1 END) >= ?4
                                 THEN ?3 + ?5 END,
             last_at = ?3
         WHERE locked_until IS NULL OR locked_until <= ?3
         RETURNING failures",
    )
    .bind(user_id)
    .bind(client_addr)
    .bind(now)
    .bind(i64::from(rules.per_address))
    .bind(lock_ms)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(here) = here else {
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT locked_until FROM sign_in_failures WHERE user_id = ? AND client_addr = ?",
        )
        .bind(user_id)
        .bind(client_addr)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        return Ok(Claim::LockedOut {
            until_ms: until.unwrap_or(now) as u64,
        });
    };
    let account: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET
             failed_attempts = CASE WHEN last_failed_at IS NULL OR last_failed_at <= ?2 - ?3
                                    THEN 1 ELSE failed_attempts + 1 END,
             last_failed_at = ?2
         WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?2)
         RETURNING failed_attempts",
    )
    .bind(user_id)
    .bind(now)
    .bind(lock_ms)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(account) = account else {
        // Dropping the transaction rolls back the count from this address too.
        let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
        return Ok(Claim::Waiting {
            until_ms: until.unwrap_or(now) as u64,
        });
    };
    let (here, account) = (here as u32, account as u32);
    let wait = rules.backoff_ms(account);
    if wait > 0 {
        // Parallel attempts wait behind this one already, not only once it has failed.
        sqlx::query("UPDATE users SET locked_until = ? WHERE id = ?")
            .bind(now + wait as i64)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Claim::Granted { here, account })
}

pub async fn record_sign_in_failure(
    pool: &SqlitePool,
    user_id: Option<i64>,
    wait_until_ms: Option<u64>,
    audit: &NewAudit,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let (Some(id), Some(until)) = (user_id, wait_until_ms) {
        sqlx::query(
            "UPDATE users SET locked_until = max(COALESCE(locked_until, 0), ?) WHERE id = ?",
        )
        .bind(until as i64)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn unlock_user(pool: &SqlitePool, username: &str, audit: &NewAudit) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET failed_attempts = 0, last_failed_at = NULL, locked_until = NULL
         WHERE username = ? RETURNING id",
    )
    .bind(username)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else { return Ok(false) };
    sqlx::query("DELETE FROM sign_in_failures WHERE user_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn open_session(pool: &SqlitePool, s: &NewSession, audit: &NewAudit) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(old) = &s.replaces {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(old)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE users SET failed_attempts = 0, last_failed_at = NULL, locked_until = NULL WHERE id = ?",
    )
    .bind(s.user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sign_in_failures WHERE user_id = ? AND client_addr = ?")
        .bind(s.user_id)
        .bind(s.client_addr.as_deref().unwrap_or_default())
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
) -> Result<Option<LiveSession>> {
    let row = sqlx::query(
        "SELECT u.username, u.role, s.last_seen_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ? AND s.last_seen_at + ? > ?",
    )
    .bind(id_hash)
    .bind(now_ms as i64)
    .bind(idle_ms as i64)
    .bind(now_ms as i64)
    .fetch_all(pool)
    .await?
    .into_iter()
    .next();
    Ok(row.map(|row| LiveSession {
        user: CurrentUser {
            username: row.get("username"),
            role: role(row.get("role")),
        },
        last_seen_ms: row.get::<i64, _>("last_seen_at") as u64,
    }))
}

pub async fn touch_session(
    pool: &SqlitePool,
    id_hash: &str,
    now_ms: u64,
    idle_ms: u64,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
        .bind(now_ms as i64)
        .bind(id_hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at + ? <= ?")
        .bind(now_ms as i64)
        .bind(idle_ms as i64)
        .bind(now_ms as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn live_sessions(
    pool: &SqlitePool,
    id_hashes: &[String],
    now_ms: u64,
    idle_ms: u64,
) -> Result<HashSet<String>> {
    // One statement whatever the count: the hashes go in as one JSON array.
    let hashes = serde_json::to_string(id_hashes).expect("strings serialize");
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT id_hash FROM sessions
         WHERE id_hash IN (SELECT value FROM json_each(?)) AND expires_at > ? AND last_seen_at + ? > ?",
    )
    .bind(hashes)
    .bind(now_ms as i64)
    .bind(idle_ms as i64)
    .bind(now_ms as i64)
    .fetch_all(pool)
    .await?;
    Ok(live.into_iter().collect())
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
