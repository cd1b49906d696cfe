//! Application queries: fast primary-key reads, slow scans for want of an index, and writes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

use super::{Scale, every};

/// Runs the application's query mix until aborted.
pub async fn run(pool: PgPool, scale: Scale) {
    let mut rng = StdRng::from_os_rng();
    let users = scale.users as i64;
    let projects = (scale.users / 4).max(1) as i64;
    every("queries", scale.pace, move || {
        let user = rng.random_range(1..=users);
        let project = rng.random_range(1..=projects);
        let pick = rng.random_range(0..10u8);
        let pool = pool.clone();
        async move {
            match pick {
                // Fast: primary-key lookups.
                0..=3 => {
                    sqlx::query("SELECT id, email, plan FROM users WHERE id = $1")
                        .bind(user)
                        .fetch_optional(&pool)
                        .await?;
                }
                // Slow: no index on events.project_id.
                4 | 5 => {
                    sqlx::query("SELECT count(*) FROM events WHERE project_id = $1")
                        .bind(project)
                        .fetch_one(&pool)
                        .await?;
                }
                // Slow: no index on events.user_id.
                6 => {
                    sqlx::query(
                        "SELECT kind, count(*) FROM events
                         WHERE user_id = $1 AND created_at > now() - interval '7 days' GROUP BY kind",
                    )
                    .bind(user)
                    .fetch_all(&pool)
                    .await?;
                }
                // Writes: new events and project status changes (dead tuples).
                7 | 8 => {
                    sqlx::query(
                        "INSERT INTO events (project_id, user_id, kind, payload, created_at)
                         VALUES ($1, $2, 'api_call', '{}', now())",
                    )
                    .bind(project)
                    .bind(user)
                    .execute(&pool)
                    .await?;
                }
                _ => {
                    sqlx::query("UPDATE projects SET status = CASE status WHEN 'active' THEN 'paused' ELSE 'active' END WHERE id = $1")
                        .bind(project)
                        .execute(&pool)
                        .await?;
                }
            }
            Ok::<_, sqlx::Error>(())
        }
    })
    .await
}
