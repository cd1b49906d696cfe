//! Live telemetry: what the collectors measured, as the pages and the stream see it.
//!
//! One collector runs per target and metric family, whoever is watching; each publishes a
//! [`Reading`] into one shared [`Snapshot`], which every open page receives over a single stream.
//! The types here are shared with the browser; the collectors, rings and the hub that schedules
//! them sit behind the `services` feature.

use serde::{Deserialize, Serialize};

#[cfg(feature = "services")]
pub mod collect;
#[cfg(feature = "services")]
mod history;
#[cfg(feature = "services")]
mod hub;
#[cfg(feature = "services")]
mod rate;
#[cfg(feature = "services")]
mod ring;

#[cfg(feature = "services")]
pub use history::{HistorySettings, downsample};
#[cfg(feature = "services")]
pub use hub::{Intervals, Rings, StreamGuard, Telemetry};
#[cfg(feature = "services")]
pub use rate::Counters;
#[cfg(feature = "services")]
pub use ring::Ring;

/// A group of metrics one collector gathers in one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// The machine the console runs on.
    Host,
    /// The console's own process.
    Console,
    /// A Redis server: hit rate, ops, memory, clients (`INFO`).
    Redis,
    /// A PostgreSQL database: transactions, cache hits, connections (`pg_stat_database`).
    Database,
    /// A PostgreSQL workload: query rate and latency from `pg_stat_statements` deltas.
    Statements,
    /// A Celery broker's queues: depth across kombu's priority lists.
    Queues,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 6] = [
        Family::Host,
        Family::Console,
        Family::Redis,
        Family::Database,
        Family::Statements,
        Family::Queues,
    ];

    /// The family named `name` (as [`Family::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The metric names this family's collector publishes (see [`metric`]).
    pub fn metrics(self) -> &'static [&'static str] {
        use metric::*;
        match self {
            Family::Host => &[
                CPU, MEMORY, SWAP, LOAD1, DISK, DISK_READ, DISK_WRITE, NET_RX, NET_TX,
            ],
            Family::Console => &[RSS, PROCESS_CPU, STREAMS],
            Family::Redis => &[
                HIT_RATE,
                OPS,
                USED_MEMORY,
                MAX_MEMORY,
                MEMORY_OF_MAX,
                FRAGMENTATION,
                EVICTIONS,
                EXPIRATIONS,
                CLIENTS,
                REJECTED,
                KEYS,
            ],
            Family::Database => &[
                TPS,
                CACHE_HIT,
                DEADLOCKS,
                CONNECTIONS,
                CONNECTIONS_OF_MAX,
                XID_MARGIN,
                INVALID_INDEXES,
            ],
            Family::Statements => &[CALLS, MEAN_MS, P95_MS],
            Family::Queues => &[
                QUEUE_DEPTH,
                IN_PER_SEC,
                OUT_PER_SEC,
                UNACKED,
                UNACKED_OLDEST,
                WORKERS_ONLINE,
            ],
        }
    }

    /// The prefixes of this family's per-item metrics (a queue, a worker, an application cache,
    /// an endpoint): the name of the item follows the prefix.
    pub fn prefixes(self) -> &'static [&'static str] {
        use metric::*;
        match self {
            Family::Host | Family::Database | Family::Statements => &[],
            Family::Console => &[CONNECTIONS_TO],
            Family::Redis => &[APP_HIT_RATE_OF, APP_HITS_OF, APP_MISSES_OF],
            Family::Queues => &[
                DEPTH_OF,
                IN_OF,
                OUT_OF,
                EXACT_OF,
                ARRIVED_OF,
                LEFT_OF,
                OLDEST_OF,
                WORKER_ONLINE_OF,
                WORKER_ACTIVE_OF,
                WORKER_RATE_OF,
                WORKER_SILENT_OF,
                WORKER_LOAD_OF,
            ],
        }
    }

    /// The name used in series keys and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Host => "host",
            Family::Console => "console",
            Family::Redis => "redis",
            Family::Database => "database",
            Family::Statements => "statements",
            Family::Queues => "queues",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a family's figures are current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Not collected yet.
    Pending,
    /// The last collection succeeded.
    Ok,
    /// The last collection did not finish in time; the figures shown are older.
    Stale {
        /// Why.
        reason: String,
    },
    /// The last collection failed.
    Down {
        /// Why, without credentials.
        reason: String,
    },
}

/// The latest figures of one family of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The target's name (`host` and `console` for the console's own machine and process).
    pub target: String,
    /// Which family.
    pub family: Family,
    /// Whether the figures are current.
    pub health: Health,
    /// Since when the family has been in this health, Unix ms.
    pub since_ms: u64,
    /// When the figures were measured, Unix ms (0 before the first success).
    pub at_ms: u64,
    /// The figures, by metric name (see [`metric`]); a rate appears from the second poll on.
    pub values: Vec<(String, f64)>,
}

impl Reading {
    /// The names after `prefix` of every metric that starts with it, with their values, by name.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .values
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), *v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The value of `metric`, if measured.
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, v)| *v)
    }
}

/// Everything the collectors know right now. `seq` grows with every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sequence number of this snapshot (the stream's event id).
    pub seq: u64,
    /// One reading per target and family.
    pub readings: Vec<Reading>,
}

impl Snapshot {
    /// The reading of one target's family.
    pub fn reading(&self, target: &str, family: Family) -> Option<&Reading> {
        self.readings
            .iter()
            .find(|r| r.target == target && r.family == family)
    }

    /// Every reading of a family.
    pub fn family(&self, family: Family) -> impl Iterator<Item = &Reading> {
        self.readings.iter().filter(move |r| r.family == family)
    }
}

/// When a resource of the console's machine deserves a recommendation, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// CPU busy.
    pub cpu_pct: f64,
    /// Memory in use.
    pub memory_pct: f64,
    /// Disk space used on the data directory's file system.
    pub disk_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cpu_pct: 70.0,
            memory_pct: 80.0,
            disk_pct: 90.0,
        }
    }
}

/// One point of a series: Unix ms and value.
pub type Point = (u64, f64);

/// The name of a series: `target/family/metric`.
pub fn series_key(target: &str, family: Family, metric: &str) -> String {
    format!("{target}/{}/{metric}", family.as_str())
}

/// Metric names, shared by collectors and pages.
pub mod metric {
    /// What it means that a current reading has no `metric`, where the reading's other values
    /// tell (`value_of` looks them up): `memory_of_max_pct` of a Redis without a `maxmemory`.
    pub fn absent_means(
        metric: &str,
        value_of: impl Fn(&str) -> Option<f64>,
    ) -> Option<&'static str> {
        match metric {
            MEMORY_OF_MAX if value_of(MAX_MEMORY) == Some(0.0) => Some("no limit"),
            _ => None,
        }
    }

    /// Share of keyspace lookups that hit, percent, over the last interval.
    pub const HIT_RATE: &str = "hit_rate";
    /// Commands per second.
    pub const OPS: &str = "ops_per_sec";
    /// Bytes of memory in use.
    pub const USED_MEMORY: &str = "used_memory_bytes";
    /// The configured memory limit in bytes (0: none).
    pub const MAX_MEMORY: &str = "max_memory_bytes";
    /// Memory in use against the limit, percent (only with a limit).
    pub const MEMORY_OF_MAX: &str = "memory_of_max_pct";
    /// RSS over used memory.
    pub const FRAGMENTATION: &str = "fragmentation_ratio";
    /// Keys evicted per second.
    pub const EVICTIONS: &str = "evictions_per_sec";
    /// Keys expired per second.
    pub const EXPIRATIONS: &str = "expirations_per_sec";
    /// Connected clients.
    pub const CLIENTS: &str = "clients";
    /// Connections rejected per second.
    pub const REJECTED: &str = "rejected_per_sec";
    /// Keys in all databases.
    pub const KEYS: &str = "keys";
    /// Transactions (commits and rollbacks) per second.
    pub const TPS: &str = "tps";
    /// Share of block reads served from shared buffers, percent, over the last interval.
    pub const CACHE_HIT: &str = "cache_hit_pct";
    /// Connections to the server.
    pub const CONNECTIONS: &str = "connections";
    /// Connections against `max_connections`, percent.
    pub const CONNECTIONS_OF_MAX: &str = "connections_of_max_pct";
    /// Deadlocks per second.
    pub const DEADLOCKS: &str = "deadlocks_per_sec";
    /// Transaction IDs left before wraparound stops writes, percent of the range, for the
    /// server's oldest database.
    pub const XID_MARGIN: &str = "xid_margin_pct";
    /// Invalid indexes in the database (not counting one a concurrent build is making).
    pub const INVALID_INDEXES: &str = "invalid_indexes";
    /// Statement executions per second.
    pub const CALLS: &str = "calls_per_sec";
    /// 95th percentile of statement latency in ms, derived from per-statement means.
    pub const P95_MS: &str = "p95_ms";
    /// Mean statement latency in ms.
    pub const MEAN_MS: &str = "mean_ms";
    /// Messages waiting in all queues.
    pub const QUEUE_DEPTH: &str = "depth";
    /// Messages delivered but not yet acknowledged.
    pub const UNACKED: &str = "unacked";
    /// CPU busy, percent of all cores.
    pub const CPU: &str = "cpu_pct";
    /// Memory in use, percent.
    pub const MEMORY: &str = "memory_pct";
    /// Swap in use, percent.
    pub const SWAP: &str = "swap_pct";
    /// One-minute load average.
    pub const LOAD1: &str = "load1";
    /// Space used on the data directory's file system, percent.
    pub const DISK: &str = "disk_pct";
    /// Bytes read from block devices per second.
    pub const DISK_READ: &str = "disk_read_bytes_per_sec";
    /// Bytes written to block devices per second.
    pub const DISK_WRITE: &str = "disk_write_bytes_per_sec";
    /// Bytes received per second (all interfaces but loopback).
    pub const NET_RX: &str = "net_rx_bytes_per_sec";
    /// Bytes sent per second (all interfaces but loopback).
    pub const NET_TX: &str = "net_tx_bytes_per_sec";
    /// Resident memory of the console process in bytes.
    pub const RSS: &str = "rss_bytes";
    /// CPU of the console process, percent of one core.
    pub const PROCESS_CPU: &str = "process_cpu_pct";
    /// Open live streams.
    pub const STREAMS: &str = "stream_clients";

    /// Connections the console holds open to `endpoint` (`host:port`), all pools and probes.
    pub fn connections_to(endpoint: &str) -> String {
        format!("{CONNECTIONS_TO}{endpoint}")
    }

    /// The prefix of [`connections_to`] metric names.
    pub const CONNECTIONS_TO: &str = "connections_to:";

    /// The hit rate of application cache `name` from its own counters, percent.
    pub fn app_hit_rate(name: &str) -> String {
        format!("{APP_HIT_RATE_OF}{name}")
    }

    /// The prefix of [`app_hit_rate`] metric names.
    pub const APP_HIT_RATE_OF: &str = "app_hit_rate:";

    /// Hits per second of application cache `name`.
    pub fn app_hits(name: &str) -> String {
        format!("{APP_HITS_OF}{name}")
    }

    /// The prefix of [`app_hits`] metric names.
    pub const APP_HITS_OF: &str = "app_hits_per_sec:";

    /// Misses per second of application cache `name`.
    pub fn app_misses(name: &str) -> String {
        format!("{APP_MISSES_OF}{name}")
    }

    /// The prefix of [`app_misses`] metric names.
    pub const APP_MISSES_OF: &str = "app_misses_per_sec:";

    /// Messages arriving in all queues per second.
    pub const IN_PER_SEC: &str = "in_per_sec";
    /// Messages leaving all queues per second.
    pub const OUT_PER_SEC: &str = "out_per_sec";
    /// How long the oldest reserved (unacknowledged) message has been held, seconds.
    pub const UNACKED_OLDEST: &str = "unacked_oldest_s";
    /// Workers whose heartbeats arrive.
    pub const WORKERS_ONLINE: &str = "workers_online";

    /// Per-queue depth metric name.
    pub fn queue_depth(queue: &str) -> String {
        format!("{DEPTH_OF}{queue}")
    }

    /// The prefix of [`queue_depth`] metric names.
    pub const DEPTH_OF: &str = "depth:";

    /// Messages arriving in `queue` per second.
    pub fn queue_in(queue: &str) -> String {
        format!("{IN_OF}{queue}")
    }

    /// The prefix of [`queue_in`] metric names.
    pub const IN_OF: &str = "in_per_sec:";

    /// Messages leaving `queue` per second.
    pub fn queue_out(queue: &str) -> String {
        format!("{OUT_OF}{queue}")
    }

    /// The prefix of [`queue_out`] metric names.
    pub const OUT_OF: &str = "out_per_sec:";

    /// 1 when `queue`'s last in/out figures are exact, 0 when they are lower bounds.
    pub fn queue_exact(queue: &str) -> String {
        format!("{EXACT_OF}{queue}")
    }

    /// The prefix of [`queue_exact`] metric names.
    pub const EXACT_OF: &str = "flow_exact:";

    /// Messages that arrived in `queue` since the console began watching.
    pub fn queue_arrived(queue: &str) -> String {
        format!("{ARRIVED_OF}{queue}")
    }

    /// The prefix of [`queue_arrived`] metric names.
    pub const ARRIVED_OF: &str = "arrived:";

    /// Messages that left `queue` since the console began watching.
    pub fn queue_left(queue: &str) -> String {
        format!("{LEFT_OF}{queue}")
    }

    /// The prefix of [`queue_left`] metric names.
    pub const LEFT_OF: &str = "left:";

    /// Seconds the oldest message of `queue` has waited, at least (since the console first saw it).
    pub fn queue_oldest(queue: &str) -> String {
        format!("{OLDEST_OF}{queue}")
    }

    /// The prefix of [`queue_oldest`] metric names.
    pub const OLDEST_OF: &str = "oldest_s:";

    /// 1 while `worker`'s heartbeats arrive, 0 once it went silent or offline.
    pub fn worker_online(worker: &str) -> String {
        format!("{WORKER_ONLINE_OF}{worker}")
    }

    /// The prefix of [`worker_online`] metric names.
    pub const WORKER_ONLINE_OF: &str = "worker_online:";

    /// Tasks `worker` is running.
    pub fn worker_active(worker: &str) -> String {
        format!("{WORKER_ACTIVE_OF}{worker}")
    }

    /// The prefix of [`worker_active`] metric names.
    pub const WORKER_ACTIVE_OF: &str = "worker_active:";

    /// Tasks per second `worker` completes.
    pub fn worker_rate(worker: &str) -> String {
        format!("{WORKER_RATE_OF}{worker}")
    }

    /// The prefix of [`worker_rate`] metric names.
    pub const WORKER_RATE_OF: &str = "worker_processed_per_sec:";

    /// Seconds since `worker`'s last heartbeat.
    pub fn worker_silent(worker: &str) -> String {
        format!("{WORKER_SILENT_OF}{worker}")
    }

    /// The prefix of [`worker_silent`] metric names.
    pub const WORKER_SILENT_OF: &str = "worker_silent_s:";

    /// `worker`'s one-minute load average.
    pub fn worker_load(worker: &str) -> String {
        format!("{WORKER_LOAD_OF}{worker}")
    }

    /// The prefix of [`worker_load`] metric names.
    pub const WORKER_LOAD_OF: &str = "worker_load1:";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_share_of_maxmemory_means_no_limit_only_when_maxmemory_is_zero() {
        let of =
            |max: Option<f64>| move |m: &str| (m == metric::MAX_MEMORY).then_some(max).flatten();
        let means = |metric_name, max| metric::absent_means(metric_name, of(max));
        assert_eq!(means(metric::MEMORY_OF_MAX, Some(0.0)), Some("no limit"));
        assert_eq!(means(metric::MEMORY_OF_MAX, Some(1024.0)), None);
        assert_eq!(means(metric::MEMORY_OF_MAX, None), None);
        assert_eq!(means(metric::HIT_RATE, Some(0.0)), None);
    }

    #[test]
    fn families_parse_back_and_list_their_per_item_metrics() {
        for f in Family::ALL {
            assert_eq!(Family::parse(f.as_str()), Some(f));
        }
        assert_eq!(Family::parse("mysql"), None);
        let item = |f: Family, name: String| {
            assert!(
                f.prefixes().iter().any(|p| name.starts_with(p)),
                "{f}: {name}"
            )
        };
        item(Family::Console, metric::connections_to("db:5432"));
        for name in [
            metric::app_hit_rate("ai"),
            metric::app_hits("ai"),
            metric::app_misses("ai"),
        ] {
            item(Family::Redis, name);
        }
        for name in [
            metric::queue_depth("q"),
            metric::queue_in("q"),
            metric::queue_out("q"),
            metric::queue_exact("q"),
            metric::queue_arrived("q"),
            metric::queue_left("q"),
            metric::queue_oldest("q"),
            metric::worker_online("w"),
            metric::worker_active("w"),
            metric::worker_rate("w"),
            metric::worker_silent("w"),
            metric::worker_load("w"),
        ] {
            item(Family::Queues, name);
        }
    }
}
