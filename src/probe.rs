//! One cheap liveness and version check of a target, bounded by a timeout.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;

use crate::TargetKind;
use crate::config::Target;
use crate::link::{RedisLink, info_field, no_answer, pg_error, pg_pool};

/// The answer to one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The target answered.
    Up {
        /// The server version it reports.
        version: String,
        /// The round trip.
        latency: Duration,
    },
    /// The target failed to answer in time, or answered with an error.
    Down {
        /// Why, without credentials.
        reason: String,
    },
}

/// Keeps one small connection to a target and checks it on demand.
pub struct Prober {
    timeout: Duration,
    client: Client,
}

enum Client {
    Postgres(PgPool),
    Redis(Box<RedisLink>),
}

impl Prober {
    /// A prober for `target`; nothing connects until the first [`Prober::check`].
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        let client = match target.kind {
            TargetKind::Postgres => Client::Postgres(pg_pool(&target.url, timeout)?),
            TargetKind::Redis | TargetKind::Celery => {
                Client::Redis(Box::new(RedisLink::new(&target.url, timeout)?))
            }
        };
        Ok(Self { timeout, client })
    }

    /// Checks the target once; never takes much longer than the timeout.
    pub async fn check(&mut self) -> Probe {
        let started = Instant::now();
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.version()).await {
            Ok(Ok(version)) => Probe::Up {
                version,
                latency: started.elapsed(),
            },
            Ok(Err(reason)) => Probe::Down { reason },
            Err(_) => {
                if let Client::Redis(link) = &mut self.client {
                    link.reset();
                }
                Probe::Down {
                    reason: no_answer(timeout),
                }
            }
        }
    }

    async fn version(&mut self) -> Result<String, String> {
        match &mut self.client {
            Client::Postgres(pool) => sqlx::query_scalar::<_, String>("SHOW server_version")
                .fetch_one(&*pool)
                .await
                .map_err(|e| pg_error(&e, self.timeout)),
            Client::Redis(link) => {
                let info: String = link
                    .query(async |c| redis::cmd("INFO").arg("server").query_async(c).await)
                    .await?;
                Ok(info_field(&info, "redis_version")
                    .unwrap_or("unknown")
                    .to_owned())
            }
        }
    }
}
