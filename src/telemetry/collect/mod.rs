//! The collectors: one per target and metric family, each owning its connection and its
//! counters, each round bounded by the hub's timeout.

mod host;
mod postgres;
mod queues;
mod redis;
mod sockets;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

pub use host::{CONSOLE, ConsoleCollector, HOST, HostCollector};
pub use postgres::{DatabaseCollector, MARKER, StatementsCollector};
pub use queues::QueuesCollector;
pub use redis::RedisCollector;

use super::Family;
use crate::TargetKind;
use crate::config::Target;

/// Figures by metric name.
pub type Values = Vec<(String, f64)>;

/// Gathers one family of figures from one target.
#[async_trait::async_trait]
pub trait Collector: Send {
    /// The target's name.
    fn target(&self) -> &str;

    /// The family it gathers.
    fn family(&self) -> Family;

    /// One round: the figures, or why there are none (without credentials).
    async fn collect(&mut self, now_ms: u64) -> Result<Values, String>;

    /// Called when a round did not finish in time, so the next one starts afresh.
    fn abandon(&mut self) {}
}

/// A collector with how often it runs.
pub struct Scheduled {
    /// The collector.
    pub collector: Box<dyn Collector>,
    /// Time between rounds.
    pub interval: Duration,
}

/// Every collector for the console's own machine and process and for `targets`: `live` is the
/// interval of cheap families, `slow` of expensive ones (`pg_stat_statements`).
pub fn for_targets(
    targets: &[Target],
    data_dir: &Path,
    streams: Arc<AtomicUsize>,
    live: Duration,
    slow: Duration,
    timeout: Duration,
) -> Vec<Scheduled> {
    let mut all: Vec<Scheduled> = vec![
        Scheduled {
            collector: Box::new(HostCollector::new(data_dir)),
            interval: live,
        },
        Scheduled {
            collector: Box::new(ConsoleCollector::new(
                streams,
                &targets
                    .iter()
                    .filter_map(|t| t.url.endpoint())
                    .collect::<Vec<_>>(),
            )),
            interval: live,
        },
    ];
    for target in targets {
        let made: Result<Vec<Scheduled>, String> = (|| {
            Ok(match target.kind {
                TargetKind::Postgres => vec![
                    Scheduled {
                        collector: Box::new(DatabaseCollector::new(target, timeout)?),
                        interval: live,
                    },
                    Scheduled {
                        collector: Box::new(StatementsCollector::new(target, timeout)?),
                        interval: slow,
                    },
                ],
                TargetKind::Redis => {
                    vec![Scheduled {
                        collector: Box::new(RedisCollector::new(target, timeout)?),
                        interval: live,
                    }]
                }
                TargetKind::Celery => {
                    vec![Scheduled {
                        collector: Box::new(QueuesCollector::new(target, timeout)?),
                        interval: live,
                    }]
                }
            })
        })();
        match made {
            Ok(mut scheduled) => all.append(&mut scheduled),
            Err(e) => tracing::error!(target_name = %target.name, "no collectors: {e}"),
        }
    }
    all
}
