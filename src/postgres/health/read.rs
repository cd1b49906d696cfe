//! The reads behind each health panel. Each runs in its own read-only transaction with the
//! catalog reads' short `lock_timeout`, carries the `/* pitwall:health */` marker and a `LIMIT`.
//! `pg_blocking_pids` is only called for sessions that wait for a lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::{
    CacheHit, Connections, DatabaseHealth, HealthSettings, SequenceUse, Session, SessionFlag,
    TableHealth, Wraparound, XidAge,
};
use crate::postgres::catalog::{Result, begin, read};

/// Tables read at most, biggest first.
pub const TABLE_LIMIT: i64 = 200;
/// Sessions read at most, oldest first.
pub const SESSION_LIMIT: i64 = 100;
/// Sequences read at most, fullest first.
pub const SEQUENCE_LIMIT: i64 = 50;

const TABLES_SQL: &str = "/* pitwall:health */ SELECT s.relid::int8 AS oid,
    s.schemaname::text AS schema, s.relname::text AS name,
    s.n_live_tup::float8 AS live, s.n_dead_tup::float8 AS dead,
    COALESCE((SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
              WHERE o.option_name = 'autovacuum_vacuum_threshold'),
             current_setting('autovacuum_vacuum_threshold')::float8)
      + COALESCE((SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
                  WHERE o.option_name = 'autovacuum_vacuum_scale_factor'),
                 current_setting('autovacuum_vacuum_scale_factor')::float8)
        * GREATEST(c.reltuples, 0)::float8 AS autovacuum_at,
    COALESCE(s.seq_scan, 0)::float8 AS seq_scans, COALESCE(s.idx_scan, 0)::float8 AS index_scans,
    floor(extract(epoch FROM s.last_vacuum) * 1000)::int8 AS last_vacuum,
    floor(extract(epoch FROM s.last_autovacuum) * 1000)::int8 AS last_autovacuum,
    floor(extract(epoch FROM s.last_analyze) * 1000)::int8 AS last_analyze,
    floor(extract(epoch FROM s.last_autoanalyze) * 1000)::int8 AS last_autoanalyze,
    pg_table_size(s.relid)::float8 AS table_bytes, pg_indexes_size(s.relid)::float8 AS index_bytes,
    io.heap_blks_hit::float8 AS heap_hit, io.heap_blks_read::float8 AS heap_read
    FROM pg_stat_user_tables s
    JOIN pg_class c ON c.oid = s.relid
    LEFT JOIN pg_statio_user_tables io ON io.relid = s.relid
    ORDER BY table_bytes DESC, schema, name
    LIMIT $1";

const DATABASES_XID_SQL: &str = "/* pitwall:health */ SELECT datname::text AS name,
    age(datfrozenxid)::float8 AS xid_age, mxid_age(datminmxid)::float8 AS mxid_age,
    current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age
    FROM pg_database WHERE datallowconn ORDER BY 2 DESC LIMIT 100";

const TABLES_XID_SQL: &str = "/* pitwall:health */ SELECT n.nspname || '.' || c.relname AS name,
    GREATEST(age(c.relfrozenxid), age(t.relfrozenxid))::float8 AS xid_age,
    GREATEST(mxid_age(c.relminmxid), mxid_age(t.relminmxid))::float8 AS mxid_age
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    WHERE c.relkind IN ('r', 'm')
    ORDER BY 2 DESC, 1 LIMIT 10";

const CACHE_SQL: &str = "/* pitwall:health */ SELECT
    (SELECT sum(heap_blks_hit)::float8 FROM pg_statio_user_tables) AS heap_hit,
    (SELECT sum(heap_blks_read)::float8 FROM pg_statio_user_tables) AS heap_read,
    (SELECT sum(idx_blks_hit)::float8 FROM pg_statio_user_indexes) AS idx_hit,
    (SELECT sum(idx_blks_read)::float8 FROM pg_statio_user_indexes) AS idx_read";

const CONNECTIONS_SQL: &str = "/* pitwall:health */ SELECT COALESCE(state, 'unknown') AS state,
    count(*)::int8 AS n,
    current_setting('max_connections')::int8 AS max,
    current_setting('superuser_reserved_connections')::int8 AS reserved
    FROM pg_stat_activity WHERE backend_type = 'client backend'
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20";

const SESSIONS_SQL: &str = "/* pitwall:health */ WITH a AS (
      SELECT *, CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid)
                     ELSE '{}'::int4[] END AS blocked_by
      FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    ), blockers AS (SELECT DISTINCT unnest(blocked_by) AS pid FROM a)
    SELECT pid, COALESCE(datname::text, '') AS database, COALESCE(usename::text, '') AS usr,
      COALESCE(application_name, '') AS application, host(client_addr) AS client,
      COALESCE(state, 'unknown') AS state,
      wait_event_type || ': ' || wait_event AS waiting_for,
      (extract(epoch FROM now() - xact_start) * 1000)::int8 AS transaction_ms,
      (extract(epoch FROM now() - query_start) * 1000)::int8 AS statement_ms,
      (extract(epoch FROM now() - state_change) * 1000)::int8 AS state_ms,
      left(COALESCE(query, ''), 2000) AS query, blocked_by,
      pid IN (SELECT pid FROM blockers) AS blocking
    FROM a
    WHERE cardinality(blocked_by) > 0 OR pid IN (SELECT pid FROM blockers)
       OR (state = 'active' AND now() - query_start >= make_interval(secs => $1))
       OR (state LIKE 'idle in transaction%' AND now() - state_change >= make_interval(secs => $2))
    ORDER BY COALESCE(xact_start, query_start) NULLS LAST, pid
    LIMIT $3";

const SEQUENCES_SQL: &str = "/* pitwall:health */ SELECT * FROM (SELECT
    s.schemaname || '.' || s.sequencename AS sequence,
    col.name AS column_name, COALESCE(col.type, s.data_type::text) AS data_type,
    COALESCE(s.last_value, s.start_value)::float8 AS last_value,
    CASE WHEN s.increment_by > 0
      THEN LEAST(s.max_value::numeric, CASE col.type WHEN 'smallint' THEN 32767
                                                 WHEN 'integer' THEN 2147483647
                                                 ELSE 9223372036854775807 END)
      ELSE GREATEST(s.min_value::numeric, CASE col.type WHEN 'smallint' THEN -32768
                                                    WHEN 'integer' THEN -2147483648
                                                    ELSE -9223372036854775808 END)
    END::float8 AS lim
    FROM pg_sequences s
    JOIN pg_namespace sn ON sn.nspname = s.schemaname
    JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename
    LEFT JOIN LATERAL (
      SELECT tn.nspname || '.' || tc.relname || '.' || a.attname AS name,
             format_type(a.atttypid, NULL) AS type
      FROM pg_depend d
      JOIN pg_class tc ON tc.oid = d.refobjid
      JOIN pg_namespace tn ON tn.oid = tc.relnamespace
      JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.objid = sc.oid AND d.deptype IN ('a', 'i')
      LIMIT 1
    ) col ON true
    WHERE has_sequence_privilege(sc.oid, 'SELECT')) q
    ORDER BY last_value / NULLIF(lim, 0) DESC NULLS LAST, sequence
    LIMIT $1";

/// How long table sizes are kept for growth, ms.
const GROWTH_SPAN_MS: u64 = 24 * 3_600_000;
/// The least time between two kept samples of a table's size, ms.
const SAMPLE_EVERY_MS: u64 = 60_000;

/// Table sizes of one database sampled at most once a minute over the last day, so growth can be
/// told without a history table in the watched database.
#[derive(Debug, Default)]
pub struct Sizes {
    samples: HashMap<u32, VecDeque<(u64, f64)>>,
}

impl Sizes {
    /// Keeps the sizes of `tables` read at `now_ms` and sets each one's growth since the oldest
    /// sample kept; tables no longer there are forgotten.
    pub fn record(&mut self, now_ms: u64, tables: &mut [(u32, TableHealth)]) {
        self.samples
            .retain(|oid, _| tables.iter().any(|(o, _)| o == oid));
        for (oid, table) in tables.iter_mut() {
            let kept = self.samples.entry(*oid).or_default();
            while kept
                .front()
                .is_some_and(|(at, _)| now_ms.saturating_sub(*at) > GROWTH_SPAN_MS)
            {
                kept.pop_front();
            }
            if kept
                .back()
                .is_none_or(|(at, _)| now_ms.saturating_sub(*at) >= SAMPLE_EVERY_MS)
            {
                kept.push_back((now_ms, table.table_bytes));
            }
            if let Some(&(at, bytes)) = kept.front().filter(|(at, _)| *at < now_ms) {
                table.growth_bytes = Some(table.table_bytes - bytes);
                table.growth_since_ms = Some(at);
            }
        }
    }
}

/// Reads the tables and keeps their sizes in `sizes`.
pub async fn sample(
    pool: &PgPool,
    sizes: &Mutex<Sizes>,
    timeout: Duration,
) -> Result<Vec<TableHealth>> {
    let mut read = tables(pool, timeout).await?;
    sizes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(crate::status::now_ms(), &mut read);
    Ok(read.into_iter().map(|(_, t)| t).collect())
}

/// Every panel of `target`'s health, each read on its own: a failed read fills its panel with
/// the reason. Table sizes are kept in `sizes` for growth.
pub async fn health(
    pool: &PgPool,
    target: &str,
    settings: HealthSettings,
    sizes: &Mutex<Sizes>,
    timeout: Duration,
) -> DatabaseHealth {
    DatabaseHealth {
        target: target.to_owned(),
        read_at_ms: crate::status::now_ms(),
        settings,
        tables: text(sample(pool, sizes, timeout).await),
        wraparound: text(wraparound(pool, timeout).await),
        cache: text(cache(pool, timeout).await),
        connections: text(connections(pool, timeout).await),
        sessions: text(sessions(pool, &settings, timeout).await),
        sequences: text(sequences(pool, timeout).await),
    }
}

/// The rows of `query`, run alone in a read-only transaction with the short lock timeout.
async fn rows(
    pool: &PgPool,
    what: &'static str,
    query: Query<'_, Postgres, PgArguments>,
    timeout: Duration,
) -> Result<Vec<PgRow>> {
    let mut tx = begin(pool, timeout).await?;
    let rows = query
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| read(what, &e, timeout))?;
    tx.rollback().await.ok();
    Ok(rows)
}

/// A read as a panel: its figures, or the error's message.
fn text<T>(read: Result<T>) -> crate::Panel<T> {
    read.map_err(|e| e.to_string())
}

/// A cumulative hit count and read count as a hit rate, percent.
fn hit_pct(hit: Option<f64>, read: Option<f64>) -> Option<f64> {
    let (hit, read) = (hit?, read?);
    (hit + read > 0.0).then(|| 100.0 * hit / (hit + read))
}

fn ms(row: &PgRow, column: &str) -> sqlx::Result<Option<u64>> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(|v| v.max(0) as u64))
}

/// The user tables, biggest first, without growth (see `Workloads::health`).
pub async fn tables(pool: &PgPool, timeout: Duration) -> Result<Vec<(u32, TableHealth)>> {
    let what = "reading the tables";
    let rows = rows(
        pool,
        what,
        sqlx::query(TABLES_SQL).bind(TABLE_LIMIT),
        timeout,
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>("oid")? as u32,
                TableHealth {
                    schema: r.try_get("schema")?,
                    name: r.try_get("name")?,
                    live_rows: r.try_get("live")?,
                    dead_rows: r.try_get("dead")?,
                    autovacuum_at: r.try_get("autovacuum_at")?,
                    seq_scans: r.try_get("seq_scans")?,
                    index_scans: r.try_get("index_scans")?,
                    last_vacuum_ms: ms(r, "last_vacuum")?,
                    last_autovacuum_ms: ms(r, "last_autovacuum")?,
                    last_analyze_ms: ms(r, "last_analyze")?,
                    last_autoanalyze_ms: ms(r, "last_autoanalyze")?,
                    table_bytes: r.try_get("table_bytes")?,
                    index_bytes: r.try_get("index_bytes")?,
                    heap_hit_pct: hit_pct(r.try_get("heap_hit")?, r.try_get("heap_read")?),
                    growth_bytes: None,
                    growth_since_ms: None,
                },
            ))
        })
        .collect::<sqlx::Result<_>>()
        .map_err(|e| read(what, &e, timeout))
}

fn xid_ages(rows: &[PgRow]) -> sqlx::Result<Vec<XidAge>> {
    rows.iter()
        .map(|r| {
            Ok(XidAge {
                name: r.try_get("name")?,
                xid_age: r.try_get::<Option<f64>, _>("xid_age")?.unwrap_or(0.0),
                mxid_age: r.try_get::<Option<f64>, _>("mxid_age")?.unwrap_or(0.0),
            })
        })
        .collect()
}

/// The wraparound margin of every database and of this database's oldest tables.
pub async fn wraparound(pool: &PgPool, timeout: Duration) -> Result<Wraparound> {
    let what = "reading transaction ID ages";
    let databases = rows(pool, what, sqlx::query(DATABASES_XID_SQL), timeout).await?;
    let tables = rows(pool, what, sqlx::query(TABLES_XID_SQL), timeout).await?;
    let freeze_max_age = match databases.first() {
        Some(r) => r.try_get("freeze_max_age"),
        None => Ok(200_000_000.0),
    };
    (|| {
        Ok(Wraparound {
            freeze_max_age: freeze_max_age?,
            databases: xid_ages(&databases)?,
            tables: xid_ages(&tables)?,
        })
    })()
    .map_err(|e| read(what, &e, timeout))
}

/// Heap and index hit rates of the user tables since statistics were reset.
pub async fn cache(pool: &PgPool, timeout: Duration) -> Result<CacheHit> {
    let what = "reading the cache hit rates";
    let read_rows = rows(pool, what, sqlx::query(CACHE_SQL), timeout).await?;
    let r = read_rows
        .first()
        .ok_or_else(|| crate::postgres::catalog::Error::Read {
            what,
            message: "no row".into(),
        })?;
    (|| {
        Ok(CacheHit {
            heap_pct: hit_pct(r.try_get("heap_hit")?, r.try_get("heap_read")?),
            index_pct: hit_pct(r.try_get("idx_hit")?, r.try_get("idx_read")?),
        })
    })()
    .map_err(|e| read(what, &e, timeout))
}

/// Client connections to the server by state, with its limits.
pub async fn connections(pool: &PgPool, timeout: Duration) -> Result<Connections> {
    let what = "reading the connections";
    let rows = rows(pool, what, sqlx::query(CONNECTIONS_SQL), timeout).await?;
    (|| {
        let limit = |c: &str| -> sqlx::Result<u32> {
            Ok(rows
                .first()
                .map(|r| r.try_get::<i64, _>(c))
                .transpose()?
                .unwrap_or(0) as u32)
        };
        Ok(Connections {
            max: limit("max")?,
            reserved: limit("reserved")?,
            by_state: rows
                .iter()
                .map(|r| Ok((r.try_get("state")?, r.try_get::<i64, _>("n")? as u32)))
                .collect::<sqlx::Result<_>>()?,
        })
    })()
    .map_err(|e| read(what, &e, timeout))
}

/// Sessions that block or are blocked, run long or sit idle in a transaction, oldest
/// transaction first.
pub async fn sessions(
    pool: &PgPool,
    settings: &HealthSettings,
    timeout: Duration,
) -> Result<Vec<Session>> {
    let what = "reading the sessions";
    let rows = rows(
        pool,
        what,
        sqlx::query(SESSIONS_SQL)
            .bind(settings.long_running_ms as f64 / 1000.0)
            .bind(settings.idle_in_transaction_ms as f64 / 1000.0)
            .bind(SESSION_LIMIT),
        timeout,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            let statement_ms = ms(r, "statement_ms")?;
            let state_ms = ms(r, "state_ms")?.unwrap_or(0);
            let blocked_by: Vec<i32> = r.try_get("blocked_by")?;
            let mut flags = Vec::new();
            if !blocked_by.is_empty() {
                flags.push(SessionFlag::Blocked);
            }
            if r.try_get::<bool, _>("blocking")? {
                flags.push(SessionFlag::Blocking);
            }
            if state == "active" && statement_ms.unwrap_or(0) >= settings.long_running_ms {
                flags.push(SessionFlag::LongRunning);
            }
            if state.starts_with("idle in transaction")
                && state_ms >= settings.idle_in_transaction_ms
            {
                flags.push(SessionFlag::IdleInTransaction);
            }
            Ok(Session {
                pid: r.try_get("pid")?,
                database: r.try_get("database")?,
                user: r.try_get("usr")?,
                application: r.try_get("application")?,
                client: r.try_get("client")?,
                state,
                waiting_for: r.try_get("waiting_for")?,
                transaction_ms: ms(r, "transaction_ms")?,
                statement_ms,
                query: r.try_get("query")?,
                blocked_by,
                flags,
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(|e| read(what, &e, timeout))
}

/// The sequences this role may read, fullest first.
pub async fn sequences(pool: &PgPool, timeout: Duration) -> Result<Vec<SequenceUse>> {
    let what = "reading the sequences";
    let rows = rows(
        pool,
        what,
        sqlx::query(SEQUENCES_SQL).bind(SEQUENCE_LIMIT),
        timeout,
    )
    .await?;
    rows.iter()
        .map(|r| {
            let last_value: f64 = r.try_get("last_value")?;
            let limit: f64 = r.try_get("lim")?;
            Ok(SequenceUse {
                sequence: r.try_get("sequence")?,
                column: r.try_get("column_name")?,
                data_type: r.try_get("data_type")?,
                last_value,
                limit,
                used: if limit == 0.0 {
                    0.0
                } else {
                    (last_value / limit).max(0.0)
                },
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(|e| read(what, &e, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rates_need_both_counts_and_some_blocks() {
        assert_eq!(hit_pct(Some(99.0), Some(1.0)), Some(99.0));
        assert_eq!(hit_pct(Some(0.0), Some(0.0)), None);
        assert_eq!(hit_pct(None, Some(3.0)), None);
    }

    fn table(bytes: f64) -> TableHealth {
        TableHealth {
            schema: "public".into(),
            name: "t".into(),
            live_rows: 0.0,
            dead_rows: 0.0,
            autovacuum_at: 50.0,
            seq_scans: 0.0,
            index_scans: 0.0,
            last_vacuum_ms: None,
            last_autovacuum_ms: None,
            last_analyze_ms: None,
            last_autoanalyze_ms: None,
            table_bytes: bytes,
            index_bytes: 0.0,
            heap_hit_pct: None,
            growth_bytes: None,
            growth_since_ms: None,
        }
    }

    #[test]
    fn growth_counts_from_the_oldest_sample_of_the_last_day() {
        let mut sizes = Sizes::default();
        let mut read = vec![(1, table(100.0))];
        sizes.record(1_000, &mut read);
        assert_eq!(read[0].1.growth_bytes, None, "one sample tells no growth");

        // Reads within the minute are not kept, but still measured against the first.
        let mut read = vec![(1, table(150.0))];
        sizes.record(31_000, &mut read);
        assert_eq!(read[0].1.growth_bytes, Some(50.0));
        assert_eq!(read[0].1.growth_since_ms, Some(1_000));
        assert_eq!(sizes.samples[&1].len(), 1);

        let mut read = vec![(1, table(400.0))];
        sizes.record(61_000, &mut read);
        assert_eq!(sizes.samples[&1].len(), 2);

        // A day later the first sample is gone; the second is the base.
        let mut read = vec![(1, table(500.0)), (2, table(8.0))];
        sizes.record(61_000 + GROWTH_SPAN_MS, &mut read);
        assert_eq!(read[0].1.growth_bytes, Some(100.0));
        assert_eq!(read[0].1.growth_since_ms, Some(61_000));

        // A dropped table is forgotten.
        sizes.record(62_000 + GROWTH_SPAN_MS, &mut [(2, table(8.0))]);
        assert!(!sizes.samples.contains_key(&1));
    }
}
