//! A Redis server's figures from one round trip: `INFO`, and with it an `MGET` of the
//! application hit counters configured for the target.

use std::time::Duration;

use super::{Collector, Values};
use crate::cache::HitCounter;
use crate::config::Target;
use crate::link::{RedisLink, info_field};
use crate::telemetry::rate::share;
use crate::telemetry::{Counters, Family, metric};

/// Hit rate, ops, memory, evictions, clients and keys of one Redis server, and the hit rates of
/// the application caches it holds.
pub struct RedisCollector {
    target: String,
    link: RedisLink,
    counters: Counters,
    apps: Vec<HitCounter>,
}

impl RedisCollector {
    /// A collector for `target`.
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            target: target.name.clone(),
            link: RedisLink::new(&target.url, timeout)?,
            counters: Counters::default(),
            apps: target.counters.clone(),
        })
    }
}

#[async_trait::async_trait]
impl Collector for RedisCollector {
    fn target(&self) -> &str {
        &self.target
    }

    fn family(&self) -> Family {
        Family::Redis
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        if self.apps.is_empty() {
            let info: String = self
                .link
                .query(async |c| redis::cmd("INFO").query_async(c).await)
                .await?;
            return Ok(figures(&info, &mut self.counters, now_ms));
        }
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").cmd("MGET");
        for app in &self.apps {
            pipe.arg(&app.hits_key).arg(&app.misses_key);
        }
        let (info, counts): (String, Vec<Option<String>>) =
            self.link.query(async |c| pipe.query_async(c).await).await?;
        let mut out = figures(&info, &mut self.counters, now_ms);
        out.extend(app_figures(&self.apps, &counts, &mut self.counters, now_ms));
        Ok(out)
    }

    fn abandon(&mut self) {
        self.link.reset();
    }
}

/// The figures in an `INFO` reply; rates and the hit rate need the previous reply's counters.
pub fn figures(info: &str, counters: &mut Counters, now_ms: u64) -> Values {
    let num = |field: &str| info_field(info, field).and_then(|v| v.parse::<f64>().ok());
    let mut out: Values = Vec::new();
    let mut put = |name: &str, value: Option<f64>| {
        if let Some(v) = value {
            out.push((name.to_owned(), v));
        }
    };
    if let (Some(hits), Some(misses)) = (num("keyspace_hits"), num("keyspace_misses")) {
        let dh = counters.delta("keyspace_hits", hits, now_ms);
        let dm = counters.delta("keyspace_misses", misses, now_ms);
        put(metric::HIT_RATE, dh.zip(dm).and_then(|(h, m)| share(h, m)));
    }
    put(
        metric::OPS,
        num("total_commands_processed").and_then(|v| counters.rate("commands", v, now_ms)),
    );
    let used = num("used_memory");
    let max = num("maxmemory");
    put(metric::USED_MEMORY, used);
    put(metric::MAX_MEMORY, max);
    put(
        metric::MEMORY_OF_MAX,
        used.zip(max.filter(|m| *m > 0.0))
            .map(|(u, m)| u * 100.0 / m),
    );
    put(metric::FRAGMENTATION, num("mem_fragmentation_ratio"));
    put(
        metric::EVICTIONS,
        num("evicted_keys").and_then(|v| counters.rate("evicted", v, now_ms)),
    );
    put(
        metric::EXPIRATIONS,
        num("expired_keys").and_then(|v| counters.rate("expired", v, now_ms)),
    );
    put(metric::CLIENTS, num("connected_clients"));
    put(
        metric::REJECTED,
        num("rejected_connections").and_then(|v| counters.rate("rejected", v, now_ms)),
    );
    let keys: f64 = info
        .lines()
        .filter(|l| l.starts_with("db"))
        .filter_map(|l| {
            l.split_once(':')?
                .1
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys=")?.parse::<f64>().ok())
        })
        .sum();
    put(metric::KEYS, Some(keys));
    out
}

/// Each application cache's hits and misses per second and hit rate, from its counters' values
/// (`counts`: hits then misses, in the order of `apps`; a missing key counts zero).
pub fn app_figures(
    apps: &[HitCounter],
    counts: &[Option<String>],
    counters: &mut Counters,
    now_ms: u64,
) -> Values {
    let count = |i: usize| {
        counts
            .get(i)
            .and_then(|v| v.as_deref())
            .map_or(Some(0.0), |v| v.trim().parse::<f64>().ok())
    };
    let mut out = Values::new();
    for (i, app) in apps.iter().enumerate() {
        let hits =
            count(2 * i).and_then(|v| counters.rate(&metric::app_hits(&app.name), v, now_ms));
        let misses =
            count(2 * i + 1).and_then(|v| counters.rate(&metric::app_misses(&app.name), v, now_ms));
        if let Some(h) = hits {
            out.push((metric::app_hits(&app.name), h));
        }
        if let Some(m) = misses {
            out.push((metric::app_misses(&app.name), m));
        }
        if let Some(rate) = hits.zip(misses).and_then(|(h, m)| share(h, m)) {
            out.push((metric::app_hit_rate(&app.name), rate));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Stats\r\ntotal_commands_processed:1000\r\nkeyspace_hits:80\r\nkeyspace_misses:20\r\n\
        evicted_keys:0\r\nexpired_keys:5\r\nrejected_connections:0\r\n# Memory\r\nused_memory:1000\r\n\
        maxmemory:4000\r\nmem_fragmentation_ratio:1.5\r\n# Clients\r\nconnected_clients:7\r\n\
        # Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=0\r\ndb1:keys=5,expires=0,avg_ttl=0\r\n";

    #[test]
    fn reads_gauges_at_once_and_rates_from_the_second_round() {
        let mut c = Counters::default();
        let first = figures(INFO, &mut c, 1_000);
        let get = |v: &Values, m: &str| v.iter().find(|(k, _)| k == m).map(|(_, x)| *x);
        assert_eq!(get(&first, metric::KEYS), Some(15.0));
        assert_eq!(get(&first, metric::MEMORY_OF_MAX), Some(25.0));
        assert_eq!(get(&first, metric::CLIENTS), Some(7.0));
        assert_eq!(
            get(&first, metric::HIT_RATE),
            None,
            "no hit rate from one round"
        );
        assert_eq!(get(&first, metric::OPS), None);
        let second = INFO
            .replace(
                "total_commands_processed:1000",
                "total_commands_processed:1400",
            )
            .replace("keyspace_hits:80", "keyspace_hits:170")
            .replace("keyspace_misses:20", "keyspace_misses:30");
        let next = figures(&second, &mut c, 3_000);
        assert_eq!(get(&next, metric::OPS), Some(200.0));
        assert_eq!(
            get(&next, metric::HIT_RATE),
            Some(90.0),
            "hit rate of the interval, not since start"
        );
        for (name, _) in &next {
            assert!(
                Family::Redis.metrics().contains(&name.as_str()),
                "{name} is listed for alert rules"
            );
        }
    }

    #[test]
    fn application_hit_rates_come_from_their_own_counters() {
        let apps = [
            HitCounter {
                name: "ai".into(),
                hits_key: "ai:h".into(),
                misses_key: "ai:m".into(),
                cost_per_miss: None,
            },
            HitCounter {
                name: "pages".into(),
                hits_key: "p:h".into(),
                misses_key: "p:m".into(),
                cost_per_miss: None,
            },
        ];
        let mut c = Counters::default();
        let first = [Some("10".into()), Some("10".into()), None, None];
        assert!(app_figures(&apps, &first, &mut c, 1_000).is_empty());
        let next = [Some("40".into()), Some("20".into()), None, Some("4".into())];
        let v = app_figures(&apps, &next, &mut c, 3_000);
        let get = |m: String| v.iter().find(|(k, _)| *k == m).map(|(_, x)| *x);
        assert_eq!(get(metric::app_hits("ai")), Some(15.0));
        assert_eq!(get(metric::app_misses("ai")), Some(5.0));
        assert_eq!(get(metric::app_hit_rate("ai")), Some(75.0));
        // A cache that only missed: a hit rate of zero, not none.
        assert_eq!(get(metric::app_hit_rate("pages")), Some(0.0));
        // A counter that is not a number gives no figure rather than a wrong one.
        let junk = [Some("x".into()), Some("30".into()), None, Some("4".into())];
        let v = app_figures(&apps, &junk, &mut c, 5_000);
        assert!(
            v.iter()
                .all(|(k, _)| !k.ends_with(":ai") || k.starts_with("app_misses"))
        );
    }
}
