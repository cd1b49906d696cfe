//! PostgreSQL figures: the database's activity (`pg_stat_database`) and the workload's latency
//! (`pg_stat_statements` deltas). Every statement carries the `/* pitwall:collector */` marker, so
//! Pitwall's own queries can be counted and are left out of the workload.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{Collector, Values};
use crate::config::Target;
use crate::link::{pg_error, pg_pool};
use crate::postgres::health::WRAPAROUND_LIMIT;
use crate::telemetry::rate::share;
use crate::telemetry::{Counters, Family, metric};

/// The marker every collector statement starts with.
pub const MARKER: &str = "/* pitwall:collector */";

const DATABASE_SQL: &str = "/* pitwall:collector */ SELECT
    d.xact_commit::float8 + d.xact_rollback::float8 AS xacts, d.blks_hit::float8 AS hit,
    d.blks_read::float8 AS read, d.deadlocks::float8 AS deadlocks,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8 AS connections,
    current_setting('max_connections')::float8 AS max_connections,
    (SELECT max(age(datfrozenxid)) FROM pg_database WHERE datallowconn)::float8 AS xid_age,
    (SELECT count(*) FROM pg_index i WHERE NOT i.indisvalid AND NOT EXISTS
        (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
    )::float8 AS invalid_indexes
    FROM pg_stat_database d WHERE d.datname = current_database()";

const STATEMENTS_SQL: &str = "/* pitwall:collector */ SELECT queryid, calls::float8 AS calls,
    total_exec_time AS total_ms FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL AND query NOT LIKE '/* pitwall:%'";

/// Transactions, buffer cache hits, connections and deadlocks of one database.
pub struct DatabaseCollector {
    target: String,
    pool: PgPool,
    timeout: Duration,
    counters: Counters,
}

impl DatabaseCollector {
    /// A collector for `target`.
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            target: target.name.clone(),
            pool: pg_pool(&target.url, timeout)?,
            timeout,
            counters: Counters::default(),
        })
    }
}

#[async_trait::async_trait]
impl Collector for DatabaseCollector {
    fn target(&self) -> &str {
        &self.target
    }

    fn family(&self) -> Family {
        Family::Database
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        let row = sqlx::query(DATABASE_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_error(&e, self.timeout))?;
        let get = |c: &str| row.try_get::<f64, _>(c).map_err(|e| e.to_string());
        let c = &mut self.counters;
        let mut out = Values::new();
        if let Some(tps) = c.rate("xacts", get("xacts")?, now_ms) {
            out.push((metric::TPS.into(), tps));
        }
        let (hit, read) = (
            c.delta("hit", get("hit")?, now_ms),
            c.delta("read", get("read")?, now_ms),
        );
        if let Some(pct) = hit.zip(read).and_then(|(h, r)| share(h, r)) {
            out.push((metric::CACHE_HIT.into(), pct));
        }
        if let Some(d) = c.rate("deadlocks", get("deadlocks")?, now_ms) {
            out.push((metric::DEADLOCKS.into(), d));
        }
        let (connections, max) = (get("connections")?, get("max_connections")?);
        out.push((metric::CONNECTIONS.into(), connections));
        if max > 0.0 {
            out.push((metric::CONNECTIONS_OF_MAX.into(), connections * 100.0 / max));
        }
        out.push((metric::XID_MARGIN.into(), xid_margin_pct(get("xid_age")?)));
        out.push((metric::INVALID_INDEXES.into(), get("invalid_indexes")?));
        Ok(out)
    }
}

/// Transaction IDs left before wraparound stops writes, in percent of the range, for the oldest
/// database's `age(datfrozenxid)`.
pub fn xid_margin_pct(xid_age: f64) -> f64 {
    (WRAPAROUND_LIMIT - xid_age).max(0.0) * 100.0 / WRAPAROUND_LIMIT
}

/// `(calls, total_exec_time ms)` per statement id, as pg_stat_statements counts them.
pub type Totals = HashMap<i64, (f64, f64)>;

/// Statement rate, mean and p95 latency of the workload, from `pg_stat_statements` deltas.
pub struct StatementsCollector {
    target: String,
    pool: PgPool,
    timeout: Duration,
    previous: Option<(u64, Totals)>,
}

impl StatementsCollector {
    /// A collector for `target`.
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            target: target.name.clone(),
            pool: pg_pool(&target.url, timeout)?,
            timeout,
            previous: None,
        })
    }
}

#[async_trait::async_trait]
impl Collector for StatementsCollector {
    fn target(&self) -> &str {
        &self.target
    }

    fn family(&self) -> Family {
        Family::Statements
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        let rows = sqlx::query(STATEMENTS_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| {
                let message = pg_error(&e, self.timeout);
                if message.contains("pg_stat_statements") {
                    format!(
                        "{message}: run CREATE EXTENSION pg_stat_statements in this database, with \
                     shared_preload_libraries = 'pg_stat_statements' in postgresql.conf"
                    )
                } else {
                    message
                }
            })?;
        let now: Totals = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("queryid").ok()?,
                    (r.try_get("calls").ok()?, r.try_get("total_ms").ok()?),
                ))
            })
            .collect();
        let previous = self.previous.replace((now_ms, now.clone()));
        let Some((then, before)) = previous else {
            return Ok(Values::new());
        };
        Ok(workload(&before, &now, now_ms.saturating_sub(then)))
    }
}

/// Rate, mean and p95 of the statements run between two snapshots of `(calls, total_ms)` per
/// statement. The p95 is taken over the per-statement means weighted by calls (a histogram of
/// single executions is not available from pg_stat_statements). A statement whose calls went
/// down was reset: it is left out of this interval.
pub fn workload(
    before: &HashMap<i64, (f64, f64)>,
    now: &HashMap<i64, (f64, f64)>,
    elapsed_ms: u64,
) -> Values {
    let mut means: Vec<(f64, f64)> = Vec::new();
    for (id, (calls, total)) in now {
        let (c0, t0) = before.get(id).copied().unwrap_or((0.0, 0.0));
        let (dc, dt) = (calls - c0, total - t0);
        if dc > 0.0 && dt >= 0.0 {
            means.push((dt / dc, dc));
        }
    }
    let calls: f64 = means.iter().map(|(_, c)| c).sum();
    let mut out = Values::new();
    if elapsed_ms > 0 {
        out.push((metric::CALLS.into(), calls * 1000.0 / elapsed_ms as f64));
    }
    if calls > 0.0 {
        let total: f64 = means.iter().map(|(m, c)| m * c).sum();
        out.push((metric::MEAN_MS.into(), total / calls));
        means.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut seen = 0.0;
        let p95 = means
            .iter()
            .find(|(_, c)| {
                seen += c;
                seen >= calls * 0.95
            })
            .map_or(0.0, |(m, _)| *m);
        out.push((metric::P95_MS.into(), p95));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_of_the_interval_weighted_by_calls() {
        let before = HashMap::from([(1, (100.0, 100.0)), (2, (10.0, 500.0))]);
        // Statement 1: 96 more calls at 1 ms; statement 2: 4 more calls at 50 ms; 3 is new: 0 calls.
        let now = HashMap::from([(1, (196.0, 196.0)), (2, (14.0, 700.0)), (3, (0.0, 0.0))]);
        let v = workload(&before, &now, 2_000);
        let get = |m: &str| v.iter().find(|(k, _)| k == m).map(|(_, x)| *x);
        assert_eq!(get(metric::CALLS), Some(50.0));
        assert_eq!(
            get(metric::P95_MS),
            Some(1.0),
            "96 % of the calls took 1 ms"
        );
        assert!((get(metric::MEAN_MS).unwrap() - 2.96).abs() < 1e-9);
    }

    #[test]
    fn wraparound_margin_in_percent_of_the_range() {
        assert_eq!(xid_margin_pct(0.0), 100.0);
        assert_eq!(xid_margin_pct(WRAPAROUND_LIMIT / 4.0), 75.0);
        assert_eq!(xid_margin_pct(WRAPAROUND_LIMIT * 2.0), 0.0);
    }

    #[test]
    fn reset_statements_are_left_out() {
        let before = HashMap::from([(1, (1_000.0, 5_000.0))]);
        let now = HashMap::from([(1, (3.0, 300.0))]);
        let v = workload(&before, &now, 1_000);
        assert_eq!(v, vec![(metric::CALLS.to_owned(), 0.0)]);
    }
}
