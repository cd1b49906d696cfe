//! A Redis server's figures from one `INFO` round trip.

use std::time::Duration;

use super::{Collector, Values};
use crate::config::Target;
use crate::link::{RedisLink, info_field};
use crate::telemetry::rate::share;
use crate::telemetry::{Counters, Family, metric};

/// Hit rate, ops, memory, evictions, clients and keys of one Redis server.
pub struct RedisCollector {
    target: String,
    link: RedisLink,
    counters: Counters,
}

impl RedisCollector {
    /// A collector for `target`.
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            target: target.name.clone(),
            link: RedisLink::new(&target.url, timeout)?,
            counters: Counters::default(),
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
        let info: String = self
            .link
            .query(async |c| redis::cmd("INFO").query_async(c).await)
            .await?;
        Ok(figures(&info, &mut self.counters, now_ms))
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
    }
}
