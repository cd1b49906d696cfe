//! The sample application's schema and data.

use sqlx::PgPool;

use super::Scale;

/// Creates the tables and fills them. `events` has no index on `project_id` or `user_id` (the
/// workload filters on both), and a fifth of its rows are updated once so dead tuples show.
pub async fn load(pool: &PgPool, scale: Scale) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for statement in SCHEMA.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO users (email, name, plan, created_at)
         SELECT 'user' || g || '@example.com', 'User ' || g,
                (ARRAY['free', 'team', 'business'])[1 + g % 3],
                now() - (g % 900) * interval '1 day'
         FROM generate_series(1, $1) AS g",
    )
    .bind(scale.users as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO projects (owner_id, name, status, created_at)
         SELECT 1 + (g * 7) % $1, 'Project ' || g, (ARRAY['active', 'paused', 'archived'])[1 + g % 3],
                now() - (g % 400) * interval '1 day'
         FROM generate_series(1, $1 / 4) AS g",
    )
    .bind(scale.users as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO events (project_id, user_id, kind, payload, created_at)
         SELECT 1 + (g * 31) % ($2 / 4), 1 + (g * 17) % $2,
                (ARRAY['page_view', 'click', 'signup', 'export', 'api_call'])[1 + g % 5],
                jsonb_build_object('path', '/p/' || (g % 1000), 'ms', g % 500),
                now() - (g % 43200) * interval '1 minute'
         FROM generate_series(1, $1) AS g",
    )
    .bind(scale.events as i64)
    .bind(scale.users as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    sqlx::query("UPDATE events SET payload = payload || '{\"seen\": true}' WHERE id % 5 = 0")
        .execute(pool)
        .await?;
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    plan       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE projects (
    id         bigserial PRIMARY KEY,
    owner_id   bigint NOT NULL REFERENCES users (id),
    name       text NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL,
    user_id    bigint NOT NULL,
    kind       text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
-- Like many busy tables in the wild, autovacuum cannot keep up here: the demo keeps its
-- dead tuples so the maintenance pages and VACUUM jobs have something real to show.
ALTER TABLE events SET (autovacuum_enabled = false);
";
