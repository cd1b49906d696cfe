//! Downsampled metric history in SQLite.

use sqlx::{Row, SqlitePool};

use crate::store::{Bucket, Result};

pub async fn save(pool: &SqlitePool, buckets: &[Bucket]) -> Result<()> {
    let mut tx = pool.begin().await?;
    for b in buckets {
        sqlx::query(
            "INSERT OR REPLACE INTO metric_history (series, bucket_start, bucket_ms, min, avg, max, last, samples)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&b.series)
        .bind(b.start_ms as i64)
        .bind(b.width_ms as i64)
        .bind(b.min)
        .bind(b.avg)
        .bind(b.max)
        .bind(b.last)
        .bind(i64::from(b.samples))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn load(
    pool: &SqlitePool,
    series: &str,
    width_ms: u64,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<Bucket>> {
    let rows = sqlx::query(
        "SELECT bucket_start, min, avg, max, last, samples FROM metric_history
         WHERE series = ? AND bucket_ms = ? AND bucket_start >= ? AND bucket_start < ?
         ORDER BY bucket_start",
    )
    .bind(series)
    .bind(width_ms as i64)
    .bind(from_ms.min(i64::MAX as u64) as i64)
    .bind(to_ms.min(i64::MAX as u64) as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Bucket {
            series: series.to_owned(),
            width_ms,
            ..bucket(&r)
        })
        .collect())
}

pub async fn load_all(pool: &SqlitePool, from_ms: u64, to_ms: u64) -> Result<Vec<Bucket>> {
    let rows = sqlx::query(
        "SELECT series, bucket_start, bucket_ms, min, avg, max, last, samples FROM metric_history
         WHERE bucket_start >= ? AND bucket_start < ?
         ORDER BY series, bucket_ms, bucket_start",
    )
    .bind(from_ms.min(i64::MAX as u64) as i64)
    .bind(to_ms.min(i64::MAX as u64) as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Bucket {
            series: r.get("series"),
            width_ms: r.get::<i64, _>("bucket_ms") as u64,
            ..bucket(r)
        })
        .collect())
}

/// A row's figures (series and width are the caller's).
fn bucket(r: &sqlx::sqlite::SqliteRow) -> Bucket {
    Bucket {
        series: String::new(),
        start_ms: r.get::<i64, _>("bucket_start") as u64,
        width_ms: 0,
        min: r.get("min"),
        avg: r.get("avg"),
        max: r.get("max"),
        last: r.get("last"),
        samples: r.get::<i64, _>("samples") as u32,
    }
}

pub async fn prune(pool: &SqlitePool, before_ms: u64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM metric_history WHERE bucket_start < ?")
        .bind(before_ms as i64)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
