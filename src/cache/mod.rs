//! Redis as a cache beyond the live figures: what the Cache page reads on demand from each Redis
//! target — the server's facts, keys per database, the slow log and latency events — each panel
//! on its own, so a command a managed Redis disables costs its panel (or only its threshold),
//! with the reason.
//!
//! The types are shared with the browser; the reads sit in `inspect.rs`.

#[cfg(feature = "services")]
pub mod analyze;
#[cfg(feature = "services")]
pub mod cluster;
#[cfg(feature = "services")]
mod inflight;
#[cfg(feature = "services")]
pub mod inspect;
#[cfg(feature = "services")]
pub mod invalidate;
pub mod keyspace;
#[cfg(feature = "services")]
pub mod pattern;
#[cfg(feature = "services")]
pub mod prune;
pub mod recipe;
#[cfg(feature = "services")]
pub mod tags;
#[cfg(feature = "services")]
pub mod warm;

use serde::{Deserialize, Serialize};

use crate::Panel;

/// An application's own hit and miss counters for one cache it keeps in Redis (`INCR`ed by the
/// application): the true hit rate of that cache, which the server-wide rate mixes with queues,
/// sessions and tag sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitCounter {
    /// The cache's name (`ai`, `pages`): lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The key counting hits (`ai_cache:hits`).
    pub hits_key: String,
    /// The key counting misses (`ai_cache:misses`).
    pub misses_key: String,
    /// What one miss costs (a model call, a query), in the team's own unit; hits times it is
    /// the cost saved.
    pub cost_per_miss: Option<f64>,
}

/// What the Cache page shows of one Redis target beside the live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheDetails {
    /// The target's name.
    pub target: String,
    /// When it was read, Unix ms.
    pub read_at_ms: u64,
    /// Version, mode, role, eviction policy (from `INFO`).
    pub server: Panel<ServerFacts>,
    /// Keys per logical database (from `INFO keyspace`).
    pub keyspace: Panel<Vec<DbKeys>>,
    /// The newest slow log entries (`SLOWLOG GET`).
    pub slowlog: Panel<SlowLog>,
    /// The latest latency spikes per event (`LATENCY LATEST`).
    pub latency: Panel<Latency>,
    /// The application hit counters configured for this target (their figures are live).
    pub counters: Vec<HitCounter>,
    /// The warming recipes writing into this target.
    pub recipes: Vec<recipe::Recipe>,
    /// A cluster's primaries with their figures (the panels above are the first primary's);
    /// `None` for one server.
    pub nodes: Option<Panel<Vec<NodeFacts>>>,
}

/// One primary of a cluster as the Cache page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// `host:port`.
    pub addr: String,
    /// Its node id.
    pub id: String,
    /// Hash slots it serves.
    pub slots: u32,
    /// Keys it holds.
    pub keys: u64,
    /// Memory in use, bytes.
    pub used_memory: u64,
    /// Commands per second (`instantaneous_ops_per_sec`).
    pub ops_per_sec: f64,
    /// Keyspace hits against lookups since it started, percent.
    pub hit_rate: Option<f64>,
    /// Connected clients.
    pub clients: u64,
}

/// The server's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// `redis_version`.
    pub version: String,
    /// `redis_mode`: standalone, cluster or sentinel.
    pub mode: String,
    /// `role`: master or slave.
    pub role: String,
    /// `uptime_in_seconds`.
    pub uptime_s: u64,
    /// `maxmemory_policy`.
    pub maxmemory_policy: String,
    /// `maxmemory`, bytes (0: no limit).
    pub maxmemory: u64,
    /// `connected_clients`.
    pub clients: u64,
    /// `blocked_clients` (waiting in BLPOP and the like).
    pub blocked_clients: u64,
    /// For a `redis+sentinel://` target: the master's address the sentinels named.
    pub sentinel_master: Option<String>,
}

impl ServerFacts {
    /// What is wrong with the eviction settings for a cache, if anything.
    pub fn eviction_warning(&self) -> Option<&'static str> {
        if self.maxmemory == 0 {
            Some("no maxmemory: the cache grows until the machine runs out of memory")
        } else if self.maxmemory_policy == "noeviction" {
            Some("noeviction: when memory is full, writes fail instead of old keys going")
        } else {
            None
        }
    }
}

/// Keys of one logical database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbKeys {
    /// The database number.
    pub db: u32,
    /// Keys.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Mean remaining TTL of the keys with one, ms (a sample, as Redis estimates it).
    pub avg_ttl_ms: u64,
}

impl DbKeys {
    /// Keys without a TTL.
    pub fn persistent(&self) -> u64 {
        self.keys.saturating_sub(self.expires)
    }
}

/// A server setting read with `CONFIG GET`, or why it could not be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Setting {
    /// The value.
    Value(i64),
    /// `CONFIG` is disabled, renamed or not allowed for this user (managed Redis).
    Unavailable(String),
}

/// The slow log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowLog {
    /// `slowlog-log-slower-than`, µs (negative: the log is off).
    pub threshold_us: Setting,
    /// The newest entries, newest first.
    pub entries: Vec<SlowEntry>,
}

/// One command the slow log kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowEntry {
    /// Its id.
    pub id: i64,
    /// When it ran, Unix ms.
    pub at_ms: u64,
    /// How long it ran, µs.
    pub duration_us: u64,
    /// The command and its first arguments, each cut short (values can be personal data).
    pub command: String,
    /// The client's address.
    pub client: String,
    /// The client's name (`CLIENT SETNAME`).
    pub client_name: String,
    /// On a cluster: the primary that logged it.
    pub node: Option<String>,
}

/// Latency spikes the server recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// `latency-monitor-threshold`, ms (0: the monitor is off).
    pub threshold_ms: Setting,
    /// The latest spike of each event.
    pub events: Vec<LatencyEvent>,
}

/// The latest spike of one event (`command`, `fast-command`, `fork`, `expire-cycle`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyEvent {
    /// The event.
    pub event: String,
    /// When the latest spike happened, Unix ms.
    pub at_ms: u64,
    /// The latest spike, ms.
    pub latest_ms: u64,
    /// The largest spike since the server started or the history was reset, ms.
    pub max_ms: u64,
}

/// Members of a set tag looked at to estimate its stale members.
pub const TAG_SAMPLE: usize = 50;

/// How a tag keeps its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagLayout {
    /// A set of keys (`SADD tag:{name} key`): stale members can only be found by looking.
    Set,
    /// A sorted set scored by each key's expiry, Unix seconds (`-1` for none), as Laravel keeps
    /// `tag:{name}:entries`: stale members are those scored in the past.
    SortedSet,
}

impl std::fmt::Display for TagLayout {
    /// How the console and the CLI name the layout.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Set => "set",
            Self::SortedSet => "sorted set (by expiry)",
        })
    }
}

/// One tag and the state of its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagInfo {
    /// The tag's name (its key without the prefix, and without `:entries` for a sorted set).
    pub name: String,
    /// Its key.
    pub key: String,
    /// How it keeps its members.
    pub layout: TagLayout,
    /// Members.
    pub members: u64,
    /// Members whose key is gone: exact for a sorted set (scored in the past), estimated from
    /// a random sample for a set.
    pub stale: u64,
    /// Members looked at for the estimate (0 for a sorted set: its scores tell).
    pub sampled: u64,
    /// The tag's own memory (`MEMORY USAGE`), when the server allows it.
    pub memory_bytes: Option<u64>,
}

impl TagInfo {
    /// [`TagInfo::stale`] as people should read it: `≈ 1,200` when it is an estimate (a set
    /// with more members than were looked at), the count alone when exact.
    pub fn stale_text(&self) -> String {
        let exact = self.layout == TagLayout::SortedSet || self.sampled >= self.members;
        let count = crate::Unit::Count.format(self.stale as f64);
        if exact { count } else { format!("≈ {count}") }
    }
}

/// The tags found on a target, most members first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagRegistry {
    /// The key prefix tags are found under.
    pub prefix: String,
    /// What the names of the tags looked for start with (empty: every tag).
    pub start: String,
    /// The tags, most members first.
    pub tags: Vec<TagInfo>,
    /// Whether the scan saw the whole keyspace; otherwise it stopped at its budget and more tags
    /// may exist.
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sets_stale_count_is_exact_only_when_every_member_was_looked_at() {
        let tag = |layout, members, sampled| TagInfo {
            name: "t".into(),
            key: "tag:t".into(),
            layout,
            members,
            stale: 1_200,
            sampled,
            memory_bytes: None,
        };
        assert_eq!(tag(TagLayout::SortedSet, 2_000, 0).stale_text(), "1,200");
        assert_eq!(tag(TagLayout::Set, 2_000, 2_000).stale_text(), "1,200");
        assert_eq!(tag(TagLayout::Set, 2_000, 50).stale_text(), "≈ 1,200");
    }
}
