//! Embed tokens and the console's own keys in SQLite.

use sqlx::{Row, SqlitePool};

use super::access::{append, audited};
use crate::embed::{Scope, TokenSummary};
use crate::store::{NewAudit, Result};

/// The key named `name`, stored as `fresh` if there is none yet (the first caller wins).
pub async fn key(pool: &SqlitePool, name: &str, fresh: &[u8], now_ms: u64) -> Result<Vec<u8>> {
    sqlx::query("INSERT INTO console_keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(fresh)
        .bind(now_ms as i64)
        .execute(pool)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM console_keys WHERE name = ?")
            .bind(name)
            .fetch_all(pool)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)?,
    )
}

fn scope_text(scope: &Scope) -> &str {
    match scope {
        Scope::All => "*",
        Scope::Panel(id) => id,
    }
}

fn summary(r: &sqlx::sqlite::SqliteRow) -> TokenSummary {
    let scope: String = r.get("scope");
    TokenSummary {
        id: r.get("id"),
        label: r.get("label"),
        scope: if scope == "*" {
            Scope::All
        } else {
            Scope::Panel(scope)
        },
        created_by: r.get("created_by"),
        created_at_ms: r.get::<i64, _>("created_at") as u64,
        expires_at_ms: r.get::<i64, _>("expires_at") as u64,
        revoked_at_ms: r.get::<Option<i64>, _>("revoked_at").map(|v| v as u64),
    }
}

pub async fn insert(pool: &SqlitePool, t: &TokenSummary, audit: &NewAudit) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO embed_tokens (id, label, scope, created_by, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.label)
    .bind(scope_text(&t.scope))
    .bind(&t.created_by)
    .bind(t.created_at_ms as i64)
    .bind(t.expires_at_ms as i64)
    .execute(&mut *tx)
    .await?;
    append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(pool: &SqlitePool) -> Result<Vec<TokenSummary>> {
    let rows = sqlx::query("SELECT * FROM embed_tokens ORDER BY created_at DESC, id")
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(summary).collect())
}

pub async fn get(pool: &SqlitePool, id: &str) -> Result<Option<TokenSummary>> {
    let row = sqlx::query("SELECT * FROM embed_tokens WHERE id = ?")
        .bind(id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .next();
    Ok(row.as_ref().map(summary))
}

pub async fn revoke(pool: &SqlitePool, id: &str, at_ms: u64, audit: &NewAudit) -> Result<bool> {
    let revoke =
        sqlx::query("UPDATE embed_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(at_ms as i64)
            .bind(id);
    audited(pool, revoke, audit).await
}
