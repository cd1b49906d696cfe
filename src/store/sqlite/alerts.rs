//! Alert episodes (history and acknowledgements), silences and the webhook outbox in SQLite.

use sqlx::{Row, SqliteConnection, SqlitePool};

use super::access::{append, audited};
use crate::alerts::{Ack, Episode, Matcher, Severity, Silence};
use crate::store::{NewAudit, Notification, Outgoing, Result};

const EPISODE: &str =
    "SELECT id, key, rule, target, labels, severity, summary, runbook_url, value, threshold, chart,
    started_at, ended_at, acked_by, acked_at, ack_comment FROM alert_episodes";

fn episode(r: &sqlx::sqlite::SqliteRow) -> Episode {
    let acked_by: Option<String> = r.get("acked_by");
    Episode {
        id: r.get("id"),
        key: r.get("key"),
        rule: r.get("rule"),
        target: r.get("target"),
        labels: serde_json::from_str(&r.get::<String, _>("labels")).unwrap_or_default(),
        severity: r
            .get::<String, _>("severity")
            .parse()
            .unwrap_or(Severity::Warning),
        summary: r.get("summary"),
        runbook_url: r.get("runbook_url"),
        value: r.get("value"),
        threshold: r.get("threshold"),
        chart: r.get("chart"),
        started_ms: r.get::<i64, _>("started_at") as u64,
        ended_ms: r.get::<Option<i64>, _>("ended_at").map(|v| v as u64),
        ack: acked_by.map(|by| Ack {
            by,
            at_ms: r.get::<Option<i64>, _>("acked_at").unwrap_or(0) as u64,
            comment: r
                .get::<Option<String>, _>("ack_comment")
                .unwrap_or_default(),
        }),
    }
}

pub async fn open_episodes(pool: &SqlitePool) -> Result<Vec<Episode>> {
    let rows = sqlx::query(&format!("{EPISODE} WHERE ended_at IS NULL ORDER BY id"))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(episode).collect())
}

pub async fn episodes(
    pool: &SqlitePool,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<Episode>> {
    let rows = sqlx::query(&format!("{EPISODE} WHERE id < ? ORDER BY id DESC LIMIT ?"))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(episode).collect())
}

async fn queue(
    conn: &mut SqliteConnection,
    episode_id: i64,
    status: &str,
    messages: &[Outgoing],
    now_ms: u64,
    only_if_told: bool,
) -> Result<()> {
    for m in messages {
        // A resolved message goes only where the firing one went (not to a webhook added since,
        // nor for an episode that was silenced when it fired).
        let told = if only_if_told {
            " AND EXISTS (SELECT 1 FROM alert_notifications
                          WHERE webhook = ? AND episode_id = ? AND status = 'firing')"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO alert_notifications (webhook, episode_id, status, payload, created_at, next_at)
             SELECT ?, ?, ?, ?, ?, ? WHERE 1{told}
             ON CONFLICT (webhook, episode_id, status) DO NOTHING"
        );
        let mut insert = sqlx::query(&sql)
            .bind(&m.webhook)
            .bind(episode_id)
            .bind(status)
            .bind(&m.payload)
            .bind(now_ms as i64)
            .bind(now_ms as i64);
        if only_if_told {
            insert = insert.bind(&m.webhook).bind(episode_id);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn start_episode(
    pool: &SqlitePool,
    e: &Episode,
    messages: &[Outgoing],
    now_ms: u64,
) -> Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO alert_episodes
             (key, rule, target, labels, severity, summary, runbook_url, value, threshold, chart, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) WHERE ended_at IS NULL DO NOTHING
         RETURNING id",
    )
    .bind(&e.key)
    .bind(&e.rule)
    .bind(&e.target)
    .bind(serde_json::to_string(&e.labels).unwrap_or_default())
    .bind(e.severity.as_str())
    .bind(&e.summary)
    .bind(&e.runbook_url)
    .bind(e.value)
    .bind(e.threshold)
    .bind(&e.chart)
    .bind(e.started_ms as i64)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id {
        queue(&mut tx, id, "firing", messages, now_ms, false).await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn end_episode(
    pool: &SqlitePool,
    id: i64,
    ended_ms: u64,
    messages: &[Outgoing],
    now_ms: u64,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let closed =
        sqlx::query("UPDATE alert_episodes SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
            .bind(ended_ms as i64)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if closed == 1 {
        queue(&mut tx, id, "resolved", messages, now_ms, true).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn ack_episode(
    pool: &SqlitePool,
    key: &str,
    ack: &Ack,
    audit: &NewAudit,
) -> Result<bool> {
    // One open episode per key at most (a unique index).
    let ack = sqlx::query(
        "UPDATE alert_episodes SET acked_by = ?, acked_at = ?, ack_comment = ?
         WHERE key = ? AND ended_at IS NULL",
    )
    .bind(&ack.by)
    .bind(ack.at_ms as i64)
    .bind(&ack.comment)
    .bind(key);
    audited(pool, ack, audit).await
}

pub async fn insert_silence(pool: &SqlitePool, s: &Silence, audit: &NewAudit) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alert_silences (matchers, comment, created_by, created_at, ends_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(serde_json::to_string(&s.matchers).unwrap_or_default())
    .bind(&s.comment)
    .bind(&s.created_by)
    .bind(s.created_ms as i64)
    .bind(s.ends_ms as i64)
    .fetch_one(&mut *tx)
    .await?;
    let audit = NewAudit {
        object: Some(id.to_string()),
        ..audit.clone()
    };
    append(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn expire_silence(
    pool: &SqlitePool,
    id: i64,
    at_ms: u64,
    by: &str,
    audit: &NewAudit,
) -> Result<bool> {
    let expire = sqlx::query(
        "UPDATE alert_silences SET expired_at = ?, expired_by = ?
         WHERE id = ? AND expired_at IS NULL AND ends_at > ?",
    )
    .bind(at_ms as i64)
    .bind(by)
    .bind(id)
    .bind(at_ms as i64);
    audited(pool, expire, audit).await
}

pub async fn silences(pool: &SqlitePool, since_ms: u64) -> Result<Vec<Silence>> {
    let rows = sqlx::query(
        "SELECT id, matchers, comment, created_by, created_at, ends_at, expired_by, expired_at
         FROM alert_silences WHERE min(ends_at, coalesce(expired_at, ends_at)) >= ?
         ORDER BY id DESC",
    )
    .bind(since_ms as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let matchers: Vec<Matcher> =
                serde_json::from_str(&r.get::<String, _>("matchers")).unwrap_or_default();
            let expired_at: Option<i64> = r.get("expired_at");
            Silence {
                id: r.get("id"),
                matchers,
                comment: r.get("comment"),
                created_by: r.get("created_by"),
                created_ms: r.get::<i64, _>("created_at") as u64,
                ends_ms: r.get::<i64, _>("ends_at") as u64,
                expired: expired_at.map(|at| {
                    (
                        at as u64,
                        r.get::<Option<String>, _>("expired_by").unwrap_or_default(),
                    )
                }),
            }
        })
        .collect())
}

pub async fn prune(pool: &SqlitePool, before_ms: u64) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let episodes = sqlx::query("DELETE FROM alert_episodes WHERE ended_at < ?")
        .bind(before_ms as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM alert_silences WHERE min(ends_at, coalesce(expired_at, ends_at)) < ?")
        .bind(before_ms as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(episodes)
}

pub async fn due_notifications(
    pool: &SqlitePool,
    webhook: &str,
    now_ms: u64,
    limit: u32,
) -> Result<Vec<Notification>> {
    let rows = sqlx::query(
        "SELECT id, webhook, status, payload, attempts FROM alert_notifications n
         WHERE webhook = ? AND delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?
           -- A resolved message waits for its firing one.
           AND NOT EXISTS (SELECT 1 FROM alert_notifications o
                           WHERE o.webhook = n.webhook AND o.episode_id = n.episode_id AND o.id < n.id
                             AND o.delivered_at IS NULL AND o.failed_at IS NULL)
         ORDER BY id LIMIT ?",
    )
    .bind(webhook)
    .bind(now_ms as i64)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Notification {
            id: r.get("id"),
            webhook: r.get("webhook"),
            status: r.get("status"),
            payload: r.get("payload"),
            attempts: r.get::<i64, _>("attempts") as u32,
        })
        .collect())
}

pub async fn abandon_notifications(
    pool: &SqlitePool,
    configured: &[String],
    error: &str,
    now_ms: u64,
) -> Result<u64> {
    let names = vec!["?"; configured.len()].join(", ");
    let sql = format!(
        "UPDATE alert_notifications SET failed_at = ?, last_error = ?
         WHERE delivered_at IS NULL AND failed_at IS NULL AND webhook NOT IN ({names})"
    );
    let mut query = sqlx::query(&sql).bind(now_ms as i64).bind(error);
    for name in configured {
        query = query.bind(name);
    }
    Ok(query.execute(pool).await?.rows_affected())
}

pub async fn notification_sent(pool: &SqlitePool, id: i64, at_ms: u64) -> Result<()> {
    sqlx::query(
        "UPDATE alert_notifications SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
    )
    .bind(at_ms as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn notification_failed(
    pool: &SqlitePool,
    id: i64,
    error: &str,
    retry_at: Option<u64>,
    now_ms: u64,
) -> Result<()> {
    sqlx::query(
        "UPDATE alert_notifications SET attempts = attempts + 1, last_error = ?,
             next_at = coalesce(?, next_at), failed_at = CASE WHEN ? IS NULL THEN ? END
         WHERE id = ?",
    )
    .bind(error)
    .bind(retry_at.map(|t| t as i64))
    .bind(retry_at.map(|t| t as i64))
    .bind(now_ms as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::store::Store;

    fn episode(key: &str) -> Episode {
        Episode {
            id: 0,
            key: key.into(),
            rule: "queue_backlog".into(),
            target: "broker".into(),
            labels: vec![("alertname".into(), "queue_backlog".into())],
            severity: Severity::Warning,
            summary: "deep".into(),
            runbook_url: None,
            value: Some(1500.0),
            threshold: 1000.0,
            chart: None,
            started_ms: 1_000,
            ended_ms: None,
            ack: None,
        }
    }

    fn message(webhook: &str) -> Outgoing {
        Outgoing {
            webhook: webhook.into(),
            payload: "{}".into(),
        }
    }

    fn audit(action: &str) -> NewAudit {
        NewAudit {
            at_ms: 1,
            actor: "otto".into(),
            role: None,
            action: action.into(),
            target: None,
            object: None,
            parameters: serde_json::json!({}),
            outcome: "ok".into(),
            client_addr: None,
        }
    }

    #[tokio::test]
    async fn an_episode_opens_once_and_its_messages_go_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let id = store
            .start_episode(&episode("k"), &[message("a")], 1_000)
            .await
            .unwrap()
            .unwrap();
        // A second console recording the same firing: nothing written.
        assert_eq!(
            store
                .start_episode(&episode("k"), &[message("a")], 1_000)
                .await
                .unwrap(),
            None
        );
        let ack = Ack {
            by: "otto".into(),
            at_ms: 2_000,
            comment: "on it".into(),
        };
        assert!(
            store
                .ack_episode("k", &ack, &audit("alert.ack"))
                .await
                .unwrap()
        );
        assert_eq!(
            store.open_episodes().await.unwrap()[0].ack,
            Some(ack.clone())
        );

        // Resolved goes only to the webhook told of the firing, and only after it.
        store
            .end_episode(id, 3_000, &[message("a"), message("b")], 3_000)
            .await
            .unwrap();
        store
            .end_episode(id, 4_000, &[message("a")], 4_000)
            .await
            .unwrap();
        let due = store.due_notifications("a", 10_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(
            (due[0].webhook.as_str(), due[0].status.as_str()),
            ("a", "firing")
        );
        store
            .notification_failed(due[0].id, "503", Some(20_000), 10_000)
            .await
            .unwrap();
        assert!(
            store
                .due_notifications("a", 10_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retry = store.due_notifications("a", 20_000, 10).await.unwrap();
        assert_eq!(retry[0].attempts, 1);
        store.notification_sent(retry[0].id, 20_000).await.unwrap();
        let next = store.due_notifications("a", 20_000, 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].status, "resolved");
        store
            .notification_failed(next[0].id, "gone", None, 21_000)
            .await
            .unwrap();
        assert!(
            store
                .due_notifications("a", u64::MAX / 2, 10)
                .await
                .unwrap()
                .is_empty()
        );

        let history = store.episodes(None, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].ended_ms, Some(3_000));
        assert!(
            !store
                .ack_episode("k", &ack, &audit("alert.ack"))
                .await
                .unwrap()
        );
        // Each webhook's messages are its own; those of a webhook no longer configured are
        // given up.
        store
            .start_episode(&episode("k2"), &[message("a"), message("gone")], 30_000)
            .await
            .unwrap()
            .unwrap();
        let gone = store.due_notifications("gone", 30_000, 10).await.unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].webhook, "gone");
        let abandoned = store
            .abandon_notifications(&["a".to_owned()], "not configured", 30_000)
            .await
            .unwrap();
        assert_eq!(abandoned, 1);
        assert!(
            store
                .due_notifications("gone", 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .due_notifications("a", 30_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn silences_are_listed_until_they_end_and_expire_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let silence = Silence {
            id: 0,
            matchers: vec![Matcher {
                name: "target".into(),
                value: "broker".into(),
            }],
            comment: "maintenance".into(),
            created_by: "otto".into(),
            created_ms: 1_000,
            ends_ms: 100_000,
            expired: None,
        };
        let id = store
            .insert_silence(&silence, &audit("alert.silence"))
            .await
            .unwrap();
        let listed = store.silences(50_000).await.unwrap();
        assert_eq!(listed, vec![Silence { id, ..silence }]);
        assert!(listed[0].active(50_000));
        assert!(
            store
                .expire_silence(id, 60_000, "otto", &audit("alert.unsilence"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .expire_silence(id, 61_000, "otto", &audit("alert.unsilence"))
                .await
                .unwrap()
        );
        let after = store.silences(50_000).await.unwrap();
        assert_eq!(after[0].expired, Some((60_000, "otto".into())));
        assert!(!after[0].active(60_001));
        assert!(store.silences(70_000).await.unwrap().is_empty());
    }
}
