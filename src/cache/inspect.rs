//! The reads behind the Cache page's panels: one `INFO`, then `SLOWLOG GET`, `LATENCY LATEST`
//! and their `CONFIG GET` thresholds, each on its own. A command the server refuses (disabled,
//! renamed, or not allowed by the user's ACL, as on managed Redis) costs its panel or only its
//! threshold, with the server's reason, and keeps the connection; a dead connection fails the
//! read and is opened again next time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::cluster::Keyspace;
use super::recipe::Recipe;
use super::{
    CacheDetails, DbKeys, HitCounter, Latency, LatencyEvent, NodeFacts, ServerFacts, Setting,
    SlowEntry, SlowLog, TagRegistry,
};
use crate::Panel;
use crate::TargetKind;
use crate::config::Target;
use crate::format::truncate;
use crate::link::{RedisLink, info_field};
use crate::secret::SecretUrl;

/// Slow log entries read at most.
pub const SLOWLOG_ENTRIES: usize = 25;
/// Arguments of a slow command shown at most, and characters of each.
const ARGS_SHOWN: usize = 4;
const ARG_CHARS: usize = 40;

/// One Redis target, opened (as one server or a cluster) at its first read and again after a
/// failed one.
struct Watched {
    name: String,
    url: SecretUrl,
    keyspace: Mutex<Option<Keyspace>>,
    counters: Vec<HitCounter>,
    recipes: Vec<Recipe>,
}

/// The Redis (cache) targets, each with one connection (one per primary on a cluster) for the
/// page's reads. Cloning is cheap.
#[derive(Clone)]
pub struct Caches {
    watched: Arc<Vec<Watched>>,
    timeout: Duration,
}

impl Caches {
    /// The Redis targets among `targets` (Celery brokers have their own page), each read bounded
    /// by `timeout`.
    pub fn new(targets: &[Target], timeout: Duration) -> Self {
        let watched = targets
            .iter()
            .filter(|t| t.kind == TargetKind::Redis)
            .map(|t| Watched {
                name: t.name.clone(),
                url: t.url.clone(),
                keyspace: Mutex::new(None),
                counters: t.counters.clone(),
                recipes: t.recipes.clone(),
            })
            .collect();
        Self {
            watched: Arc::new(watched),
            timeout,
        }
    }

    /// Runs `read` on `target`'s keyspace, opening it first if needed; a failed read drops it,
    /// so the next one finds the topology again.
    async fn with<T>(
        &self,
        target: &str,
        read: impl AsyncFnOnce(&mut Keyspace) -> Result<T, String>,
    ) -> Result<T, String> {
        let w = self.watched(target)?;
        let mut slot = w.keyspace.lock().await;
        if slot.is_none() {
            *slot = Some(Keyspace::open(&w.url, self.timeout).await?);
        }
        let result = read(slot.as_mut().expect("opened above")).await;
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// The Redis targets' names.
    pub fn targets(&self) -> Vec<String> {
        self.watched.iter().map(|w| w.name.clone()).collect()
    }

    fn watched(&self, target: &str) -> Result<&Watched, String> {
        self.watched
            .iter()
            .find(|w| w.name == target)
            .ok_or_else(|| format!("no Redis target is named {target:?}"))
    }

    /// The tags of `target` whose names start with `start` (see [`super::tags`]); a bad `start`
    /// is refused before anything reaches the server.
    pub async fn tags(&self, target: &str, start: &str) -> Result<TagRegistry, String> {
        super::tags::check_start(start)?;
        self.with(target, async |ks| {
            super::tags::registry(ks, crate::status::now_ms() / 1000, start).await
        })
        .await
    }

    /// The panels of `target`; an error when there is no such target or it cannot be reached.
    pub async fn details(&self, target: &str) -> Result<CacheDetails, String> {
        let w = self.watched(target)?;
        let mut details = self
            .with(target, async |ks| {
                let addrs: Vec<String> = ks
                    .cluster()
                    .map(|c| c.primaries().map(|p| p.addr.clone()).collect())
                    .unwrap_or_default();
                let mut details =
                    read(target, ks.node(0), addrs.first().map(String::as_str)).await?;
                details.nodes = nodes(ks).await?;
                merge_slow_logs(ks, &addrs, &mut details.slowlog).await?;
                Ok(details)
            })
            .await?;
        details.counters = w.counters.clone();
        details.recipes = w.recipes.clone();
        Ok(details)
    }
}

/// Each primary of a cluster with its figures (`INFO` on each); `None` for one server. A node
/// that refuses `INFO` costs the panel, with the reason.
async fn nodes(ks: &mut Keyspace) -> Result<Option<Panel<Vec<NodeFacts>>>, String> {
    let Some(cluster) = ks.cluster() else {
        return Ok(None);
    };
    let primaries: Vec<_> = cluster.primaries().cloned().collect();
    let mut out = Vec::with_capacity(primaries.len());
    for (i, p) in primaries.into_iter().enumerate() {
        let info = match refusable::<String>(ks.node(i), redis::cmd("INFO")).await? {
            Ok(info) => info,
            Err(e) => {
                return Ok(Some(Err(format!(
                    "INFO is not available on {} ({e})",
                    p.addr
                ))));
            }
        };
        let num = |f: &str| info_field(&info, f).and_then(|v| v.parse::<f64>().ok());
        let (hits, misses) = (num("keyspace_hits"), num("keyspace_misses"));
        out.push(NodeFacts {
            addr: p.addr.clone(),
            id: p.id.clone(),
            slots: p.slot_count(),
            keys: keyspace(&info).iter().map(|d| d.keys).sum(),
            used_memory: num("used_memory").unwrap_or(0.0) as u64,
            ops_per_sec: num("instantaneous_ops_per_sec").unwrap_or(0.0),
            hit_rate: match (hits, misses) {
                (Some(h), Some(m)) if h + m > 0.0 => Some(h * 100.0 / (h + m)),
                _ => None,
            },
            clients: num("connected_clients").unwrap_or(0.0) as u64,
        });
    }
    Ok(Some(Ok(out)))
}

/// A target's figures over an interval beside its details: what `pitwall cache stats` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheStats {
    /// The live figures by metric name (rates and the hit rate over the interval).
    pub figures: std::collections::BTreeMap<String, f64>,
    /// Server facts, keys, slow log and latency.
    pub details: CacheDetails,
}

/// Reads `target`'s figures twice, `interval` apart (rates need two readings), then its details.
pub async fn stats(
    target: &Target,
    interval: Duration,
    timeout: Duration,
) -> Result<CacheStats, String> {
    use crate::telemetry::collect::{Collector, RedisCollector};
    let mut collector = RedisCollector::new(target, timeout)?;
    collector.collect(crate::status::now_ms()).await?;
    tokio::time::sleep(interval).await;
    let figures = collector
        .collect(crate::status::now_ms())
        .await?
        .into_iter()
        .collect();
    let details = Caches::new(std::slice::from_ref(target), timeout)
        .details(&target.name)
        .await?;
    Ok(CacheStats { figures, details })
}

/// A command whose refusal by the server is an answer (`Err` inside), not a failed connection.
pub(super) async fn refusable<T: redis::FromRedisValue>(
    link: &mut RedisLink,
    cmd: redis::Cmd,
) -> Result<Result<T, String>, String> {
    link.query(async move |c| match cmd.query_async::<T>(c).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e),
        Err(e) => Ok(Err(crate::link::redact(&e.to_string()))),
    })
    .await
}

/// A numeric setting by `CONFIG GET`, or why it is unavailable.
async fn setting(link: &mut RedisLink, name: &str) -> Result<Setting, String> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg(name);
    let got = refusable::<std::collections::HashMap<String, String>>(link, cmd).await?;
    Ok(match got {
        Ok(map) => match map.get(name).and_then(|v| v.parse().ok()) {
            Some(v) => Setting::Value(v),
            None => Setting::Unavailable(format!("CONFIG GET {name} returned no number")),
        },
        Err(e) => Setting::Unavailable(format!("CONFIG GET is not available here ({e})")),
    })
}

/// The panels of the server behind `link` (`node` names it on a cluster, in its slow log).
async fn read(
    target: &str,
    link: &mut RedisLink,
    node: Option<&str>,
) -> Result<CacheDetails, String> {
    let info: Result<String, String> = refusable(link, redis::cmd("INFO")).await?;
    let (server, keyspace) = match &info {
        Ok(info) => (
            Ok(ServerFacts {
                sentinel_master: link.master().map(str::to_owned),
                ..facts(info)
            }),
            Ok(keyspace(info)),
        ),
        Err(e) => {
            let e = format!("INFO is not available here ({e})");
            (Err(e.clone()), Err(e))
        }
    };
    let slowlog = slow_log(link, node).await?;
    let latest = redis::cmd("LATENCY").arg("LATEST").clone();
    let latency = match refusable::<Vec<(String, i64, i64, i64)>>(link, latest).await? {
        Ok(raw) => Ok(Latency {
            threshold_ms: setting(link, "latency-monitor-threshold").await?,
            events: raw
                .into_iter()
                .map(|(event, at, latest, max)| LatencyEvent {
                    event,
                    at_ms: at.max(0) as u64 * 1000,
                    latest_ms: latest.max(0) as u64,
                    max_ms: max.max(0) as u64,
                })
                .collect(),
        }),
        Err(e) => Err(format!("LATENCY is not available here ({e})")),
    };
    Ok(CacheDetails {
        target: target.to_owned(),
        read_at_ms: crate::status::now_ms(),
        server,
        keyspace,
        slowlog,
        latency,
        counters: Vec::new(),
        recipes: Vec::new(),
        nodes: None,
    })
}

/// The newest slow log entries of the server behind `link` (`node` names it on a cluster).
async fn slow_log(link: &mut RedisLink, node: Option<&str>) -> Result<Panel<SlowLog>, String> {
    let mut get = redis::cmd("SLOWLOG");
    get.arg("GET").arg(SLOWLOG_ENTRIES);
    type Raw = (i64, i64, i64, Vec<Vec<u8>>, String, String);
    Ok(match refusable::<Vec<Raw>>(link, get).await? {
        Ok(raw) => Ok(SlowLog {
            threshold_us: setting(link, "slowlog-log-slower-than").await?,
            entries: raw
                .into_iter()
                .map(|(id, at, us, args, client, client_name)| SlowEntry {
                    id,
                    at_ms: at.max(0) as u64 * 1000,
                    duration_us: us.max(0) as u64,
                    command: command_line(&args),
                    client,
                    client_name,
                    node: node.map(str::to_owned),
                })
                .collect(),
        }),
        Err(e) => Err(format!("SLOWLOG is not available here ({e})")),
    })
}

/// On a cluster, adds the slow log of every primary after the first (`addrs`, in node order)
/// to the first one's `slowlog`: one list, newest first (at most [`SLOWLOG_ENTRIES`]), each
/// entry naming its primary. A primary that refuses costs the panel.
async fn merge_slow_logs(
    ks: &mut Keyspace,
    addrs: &[String],
    slowlog: &mut Panel<SlowLog>,
) -> Result<(), String> {
    for (i, addr) in addrs.iter().enumerate().skip(1) {
        let Ok(merged) = slowlog else {
            return Ok(());
        };
        match slow_log(ks.node(i), Some(addr)).await? {
            Ok(log) => merged.entries.extend(log.entries),
            Err(e) => *slowlog = Err(format!("{addr}: {e}")),
        }
    }
    if let Ok(merged) = slowlog {
        merged
            .entries
            .sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(b.id.cmp(&a.id)));
        merged.entries.truncate(SLOWLOG_ENTRIES);
    }
    Ok(())
}

/// A slow command as shown: its name and first arguments, each cut short.
fn command_line(args: &[Vec<u8>]) -> String {
    let mut shown: Vec<String> = args
        .iter()
        .take(ARGS_SHOWN)
        .map(|a| truncate(&String::from_utf8_lossy(a), ARG_CHARS))
        .collect();
    if args.len() > ARGS_SHOWN {
        shown.push(format!("… ({} more arguments)", args.len() - ARGS_SHOWN));
    }
    shown.join(" ")
}

/// The server's facts in an `INFO` reply.
pub fn facts(info: &str) -> ServerFacts {
    let text = |f: &str| info_field(info, f).unwrap_or("unknown").to_owned();
    let num = |f: &str| {
        info_field(info, f)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ServerFacts {
        version: text("redis_version"),
        mode: text("redis_mode"),
        role: text("role"),
        uptime_s: num("uptime_in_seconds"),
        maxmemory_policy: text("maxmemory_policy"),
        maxmemory: num("maxmemory"),
        clients: num("connected_clients"),
        blocked_clients: num("blocked_clients"),
        sentinel_master: None,
    }
}

/// The `db0:keys=…,expires=…,avg_ttl=…` lines of an `INFO` reply.
pub fn keyspace(info: &str) -> Vec<DbKeys> {
    info.lines()
        .filter_map(|l| {
            let (db, fields) = l.trim().split_once(':')?;
            let db = db.strip_prefix("db")?.parse().ok()?;
            let field = |name: &str| {
                fields.split(',').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == name).then(|| v.parse::<u64>().ok()).flatten()
                })
            };
            Some(DbKeys {
                db,
                keys: field("keys")?,
                expires: field("expires").unwrap_or(0),
                avg_ttl_ms: field("avg_ttl").unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\
        uptime_in_seconds:42\r\n# Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\n\
        # Memory\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n# Replication\r\nrole:master\r\n\
        # Keyspace\r\ndb0:keys=10,expires=4,avg_ttl=3000\r\ndb3:keys=2,expires=0,avg_ttl=0\r\n";

    #[test]
    fn facts_and_keyspace_come_from_info() {
        let f = facts(INFO);
        assert_eq!(
            (f.version.as_str(), f.mode.as_str(), f.role.as_str()),
            ("7.0.15", "standalone", "master")
        );
        assert_eq!((f.uptime_s, f.clients, f.blocked_clients), (42, 3, 1));
        assert!(f.eviction_warning().unwrap().starts_with("no maxmemory"));
        let k = keyspace(INFO);
        assert_eq!(k.len(), 2);
        assert_eq!(
            (k[0].db, k[0].keys, k[0].expires, k[0].avg_ttl_ms),
            (0, 10, 4, 3000)
        );
        assert_eq!((k[1].db, k[1].persistent()), (3, 2));
    }

    #[test]
    fn slow_commands_are_cut_short() {
        let long = "x".repeat(100);
        let args: Vec<Vec<u8>> = ["SET", "k", &long, "EX", "10", "NX"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        let shown = command_line(&args);
        assert!(shown.starts_with("SET k xxxx"), "{shown}");
        assert!(shown.ends_with("EX … (2 more arguments)"), "{shown}");
        assert!(shown.len() < 80, "{shown}");
    }
}
