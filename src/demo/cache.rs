//! Cache-aside traffic: project summaries computed from PostgreSQL on a miss, stored with a TTL and
//! tagged in `tag:{name}` sets; model responses counted in `ai_cache:hits` / `ai_cache:misses`;
//! occasional invalidation of one project's tag, member by member.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

use super::{Scale, every};
use crate::cache::keyspace::TtlPolicy;
use crate::cache::recipe::{Recipe, Template, WarmValue};

/// Runs the cache traffic until aborted.
pub async fn run(pool: PgPool, redis: ConnectionManager, scale: Scale) {
    let mut rng = StdRng::from_os_rng();
    let projects = (scale.users / 4).max(1) as i64;
    let hot = (projects / 10).max(1);
    every("cache", scale.pace, move || {
        // Eight reads in ten go to the hottest tenth of the projects, so most of them hit.
        let project = if rng.random_bool(0.8) {
            rng.random_range(1..=hot)
        } else {
            rng.random_range(1..=projects)
        };
        let prompt = rng.random_range(0..400u32);
        let jitter = rng.random_range(0..60u64);
        let invalidate = rng.random_bool(0.02);
        let pool = pool.clone();
        let mut redis = redis.clone();
        async move {
            project_summary(&pool, &mut redis, project, 60 + jitter).await?;
            model_response(&mut redis, prompt, 3600 + jitter).await?;
            if invalidate {
                invalidate_tag(&mut redis, &format!("tag:project:{project}")).await?;
            }
            Ok::<_, Error>(())
        }
    })
    .await
}

/// The warming recipes of the demo's cache, reading from PostgreSQL target `source`: the
/// project summaries the cache-aside traffic reads (every five minutes, refresh-ahead), and user
/// profiles tagged by plan (on demand).
pub fn recipes(source: &str) -> Vec<Recipe> {
    let template = |t: &str| Template::parse(t).expect("the demo's templates are valid");
    vec![
        Recipe {
            name: "project_summaries".into(),
            postgres: source.into(),
            sql: "SELECT p.id, p.name, p.status, count(e.id) AS events_24h \
                  FROM projects p LEFT JOIN events e \
                  ON e.project_id = p.id AND e.created_at > now() - interval '1 day' \
                  GROUP BY p.id ORDER BY p.id"
                .into(),
            key: template("cache:project:{id}:summary"),
            value: WarmValue::Row,
            ttl_secs: 600,
            jitter: 0.1,
            tags: vec![template("project:{id}"), template("projects")],
            refresh_ahead: Some(0.2),
            every_secs: Some(300),
            batch: 500,
            timeout_secs: 60,
            max_rows: crate::cache::recipe::DEFAULT_MAX_ROWS,
        },
        Recipe {
            name: "user_profiles".into(),
            postgres: source.into(),
            sql: "SELECT id, email, name, plan FROM users ORDER BY id".into(),
            key: template("cache:user:{id}"),
            value: WarmValue::Row,
            ttl_secs: 3600,
            jitter: 0.1,
            tags: vec![template("plan:{plan}")],
            refresh_ahead: Some(0.3),
            every_secs: None,
            batch: 1000,
            timeout_secs: 60,
            max_rows: crate::cache::recipe::DEFAULT_MAX_ROWS,
        },
    ]
}

/// The demo cache's TTL policies: model responses live an hour (plus the workload's jitter),
/// warmed profiles and summaries a day.
pub fn ttl_policies() -> Vec<TtlPolicy> {
    [("ai_cache:response:", 3_660), ("cache:", 86_400)]
        .into_iter()
        .map(|(prefix, max_ttl_secs)| TtlPolicy {
            prefix: prefix.into(),
            max_ttl_secs,
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

async fn project_summary(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    project: i64,
    ttl: u64,
) -> Result<(), Error> {
    let key = format!("cache:project:{project}:summary");
    let cached: Option<String> = redis.get(&key).await?;
    if cached.is_some() {
        return Ok(());
    }
    let (name, status, events): (String, String, i64) = sqlx::query_as(
        "SELECT p.name, p.status, (SELECT count(*) FROM events e WHERE e.project_id = p.id AND e.created_at > now() - interval '1 day')
         FROM projects p WHERE p.id = $1",
    )
    .bind(project)
    .fetch_one(pool)
    .await?;
    let value =
        serde_json::json!({ "id": project, "name": name, "status": status, "events_24h": events });
    // The value first, then its tags, so a tag never names a key that was not written.
    redis::pipe()
        .set_ex(&key, value.to_string(), ttl)
        .ignore()
        .sadd(format!("tag:project:{project}"), &key)
        .ignore()
        .sadd("tag:projects", &key)
        .ignore()
        .query_async::<()>(redis)
        .await?;
    Ok(())
}

async fn model_response(redis: &mut ConnectionManager, prompt: u32, ttl: u64) -> Result<(), Error> {
    let key = format!("ai_cache:response:{prompt:08x}");
    let exists: bool = redis.exists(&key).await?;
    if exists {
        redis.incr::<_, _, ()>("ai_cache:hits", 1).await?;
    } else {
        let answer = serde_json::json!({ "prompt": prompt, "answer": "x".repeat(200 + prompt as usize % 800) });
        redis::pipe()
            .incr("ai_cache:misses", 1)
            .ignore()
            .set_ex(&key, answer.to_string(), ttl)
            .ignore()
            .sadd("tag:ai_responses", &key)
            .ignore()
            .query_async::<()>(redis)
            .await?;
    }
    Ok(())
}

/// Unlinks every member of a tag set in small batches, removing members as it goes.
async fn invalidate_tag(redis: &mut ConnectionManager, tag: &str) -> Result<(), Error> {
    loop {
        let members: Vec<String> = redis.srandmember_multiple(tag, 50).await?;
        if members.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for key in &members {
            pipe.unlink(key).ignore();
        }
        pipe.srem(tag, &members).ignore();
        pipe.query_async::<()>(redis).await?;
    }
}
