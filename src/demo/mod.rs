//! `pitwall demo`: throwaway PostgreSQL and Redis with a sample application and a live workload.
//!
//! The sample application has users, projects and analytics events, with enough rows that a
//! missing index and dead tuples matter. The workload runs application queries (some slow for want
//! of an index), cache-aside reads and writes with TTLs and tags, and Celery-format task messages
//! produced and consumed on several queues with priorities, in kombu's Redis layout.

mod cache;
mod celery;
mod queries;
mod schema;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;

use crate::TargetKind;
use crate::config::{CeleryBroker, Target};
use crate::harness::{self, PgServer, RedisServer};
use crate::secret::SecretUrl;

/// The demo's database name.
pub const DATABASE: &str = "shop";
/// The Celery queues the demo produces to and consumes from.
pub const QUEUES: [&str; 3] = ["celery", "emails", "reports"];
/// The Redis logical database the demo's broker uses (the cache uses 0).
pub const BROKER_DB: u8 = 1;

/// What went wrong starting the demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A throwaway service did not start.
    #[error(transparent)]
    Harness(#[from] harness::Error),
    /// Loading the sample application failed.
    #[error("loading the sample schema: {0}")]
    Database(#[from] sqlx::Error),
    /// Connecting the workload to Redis failed.
    #[error("connecting the workload to Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// How big the sample application is and how hard the workload pushes.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Rows in `users` (projects are a quarter of that).
    pub users: u32,
    /// Rows in `events`.
    pub events: u32,
    /// Pause between two steps of each workload loop.
    pub pace: Duration,
}

impl Scale {
    /// The full demo: hundreds of thousands of events.
    pub const FULL: Scale = Scale {
        users: 20_000,
        events: 400_000,
        pace: Duration::from_millis(40),
    };
    /// A small data set for end-to-end tests.
    pub const SMALL: Scale = Scale {
        users: 2_000,
        events: 20_000,
        pace: Duration::from_millis(100),
    };
}

/// The running demo. Dropping it stops the workload and throws the services away.
pub struct Demo {
    /// The sample application's PostgreSQL.
    pub postgres: PgServer,
    /// The cache and broker Redis.
    pub redis: RedisServer,
    workload: JoinSet<()>,
}

impl Demo {
    /// Starts both services, loads the sample application and starts the workload.
    pub async fn start(scale: Scale) -> Result<Self> {
        let (postgres, redis) = harness::start_both().await?;
        let mut admin = postgres.connect("postgres").await?;
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&postgres.url(DATABASE))
            .await?;
        schema::load(&pool, scale).await?;

        let cache = redis::Client::open(redis.url(0))?
            .get_connection_manager()
            .await?;
        let broker = redis::Client::open(redis.url(BROKER_DB))?
            .get_connection_manager()
            .await?;
        celery::declare_bindings(&mut broker.clone()).await?;

        let mut workload = JoinSet::new();
        workload.spawn(queries::run(pool.clone(), scale));
        workload.spawn(cache::run(pool, cache, scale));
        workload.spawn(celery::produce(broker.clone(), scale));
        workload.spawn(celery::consume(broker.clone(), scale, "worker1@demo"));
        workload.spawn(celery::consume(broker, scale, "worker2@demo"));
        Ok(Self {
            postgres,
            redis,
            workload,
        })
    }

    /// The targets a console watching the demo is configured with.
    pub fn targets(&self) -> Vec<Target> {
        let url = |s: String| SecretUrl::parse(&s).expect("harness URLs are valid");
        vec![
            Target::new(
                "app-db",
                TargetKind::Postgres,
                url(self.postgres.url(DATABASE)),
            ),
            Target {
                counters: vec![crate::cache::HitCounter {
                    name: "ai".into(),
                    hits_key: "ai_cache:hits".into(),
                    misses_key: "ai_cache:misses".into(),
                    cost_per_miss: Some(0.002),
                }],
                recipes: cache::recipes("app-db"),
                ttl_policies: cache::ttl_policies(),
                ..Target::new("cache", TargetKind::Redis, url(self.redis.url(0)))
            },
            Target {
                name: "tasks".into(),
                kind: TargetKind::Celery,
                url: url(self.redis.url(BROKER_DB)),
                celery: Some(CeleryBroker {
                    queues: QUEUES.iter().map(|q| q.to_string()).collect(),
                    global_keyprefix: String::new(),
                }),
                counters: Vec::new(),
                recipes: Vec::new(),
                ttl_policies: Vec::new(),
            },
        ]
    }

    /// Stops the workload (the services go when the demo is dropped).
    pub fn stop_workload(&mut self) {
        self.workload.abort_all();
    }
}

/// Runs `step` every `pace` forever, logging failures (a service may be stopped on purpose) and
/// backing off for a second after each.
async fn every<F, Fut, E>(what: &'static str, pace: Duration, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), step()).await {
            Ok(Ok(())) => tokio::time::sleep(pace).await,
            Ok(Err(e)) => {
                tracing::debug!("demo {what}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => {
                tracing::debug!("demo {what}: step timed out");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
