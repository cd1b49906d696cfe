//! What the index advisor and the index health checks read from a database: tables with their
//! estimated rows, columns with `pg_stats`, existing indexes, and the top statements of
//! `pg_stat_statements`.
//!
//! Every read runs in a read-only transaction with a short `lock_timeout`, and avoids the
//! functions that wait behind an ACCESS EXCLUSIVE lock (`pg_get_indexdef`,
//! `pg_total_relation_size`): index columns come from `pg_index.indkey` and `pg_attribute`,
//! expressions and predicates are compared as stored node trees, sizes come from
//! `pg_relation_size`. Every query has a `LIMIT`, and carries the `/* pitwall:… */` marker so the
//! workload views leave it out.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::link::pg_error;

/// Why a read failed; messages carry no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A catalog was locked longer than the `lock_timeout` (by a VACUUM FULL, a plain REINDEX, …).
    #[error("{what}: the catalog is locked (waited {lock_ms} ms): {message}")]
    Locked {
        /// What was being read.
        what: &'static str,
        /// The lock timeout, ms.
        lock_ms: u64,
        /// The server's message.
        message: String,
    },
    /// `pg_stat_statements` cannot be read, with the fix.
    #[error("pg_stat_statements is not available ({message}): {fix}")]
    NoStatements {
        /// The server's message.
        message: String,
        /// What to do.
        fix: &'static str,
    },
    /// Any other failure of a read.
    #[error("{what}: {message}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The driver's message, redacted.
        message: String,
    },
}

/// Result type of the advisor and index health modules.
pub type Result<T> = std::result::Result<T, Error>;

/// How long a read waits for a lock on a catalog before it gives up.
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(500);
/// Statements read from `pg_stat_statements` at most.
pub const STATEMENT_LIMIT: i64 = 100;
/// Indexes read at most (the whole database, for the health checks).
pub const INDEX_LIMIT: i64 = 10_000;
/// Tables (and their columns) looked up at most in one read.
pub const TABLE_LIMIT: usize = 200;

/// One statement of `pg_stat_statements`, summed over the roles that ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopStatement {
    /// `queryid`.
    pub queryid: i64,
    /// The normalized text, cut after 10,000 characters.
    pub query: String,
    /// Executions.
    pub calls: f64,
    /// Execution time of all calls, ms.
    pub total_ms: f64,
    /// Mean execution time, ms.
    pub mean_ms: f64,
}

impl From<&super::QueryStats> for TopStatement {
    /// A statement's figures over a window of the workload (see `workload.rs`).
    fn from(q: &super::QueryStats) -> Self {
        Self {
            queryid: q.queryid,
            query: q.query.clone(),
            calls: q.calls,
            total_ms: q.total_ms,
            mean_ms: q.mean_ms,
        }
    }
}

/// A table as a statement names it: the schema when it was written, the name folded as
/// PostgreSQL folds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// The schema, when the statement qualified the table.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

/// A table's estimated size and its columns with their statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `pg_class.oid`.
    pub oid: u32,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `pg_class.reltuples` (-1 or 0 when never analysed or vacuumed).
    pub reltuples: f64,
    /// Its columns, in order.
    pub columns: Vec<Column>,
}

impl Table {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A column with what `pg_stats` knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// `attnum`.
    pub attnum: i16,
    /// `pg_stats`, when the table was analysed.
    pub stats: Option<ColumnStats>,
}

/// `pg_stats` of one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnStats {
    /// Fraction of NULLs.
    pub null_frac: f64,
    /// Distinct values; negative: minus the fraction of rows.
    pub n_distinct: f64,
}

/// An existing index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// `indexrelid`.
    pub oid: u32,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its table's oid.
    pub table_oid: u32,
    /// Its table's schema.
    pub table_schema: String,
    /// Its table's name.
    pub table_name: String,
    /// Access method (`btree`, `hash`, `gist`, `gin`, `brin`, …).
    pub method: String,
    /// Enforces uniqueness.
    pub unique: bool,
    /// The primary key.
    pub primary: bool,
    /// Usable by queries (`indisvalid`).
    pub valid: bool,
    /// Key columns in order (not INCLUDE columns); `None` for an expression.
    pub columns: Vec<Option<String>>,
    /// Operator classes of the key columns, in order.
    pub opclasses: Vec<String>,
    /// The expressions as a stored node tree without token positions, when there are any.
    pub expressions: Option<String>,
    /// The partial index predicate as a stored node tree without token positions.
    pub predicate: Option<String>,
    /// Size on disk, bytes.
    pub size_bytes: u64,
    /// Index scans since statistics were reset.
    pub scans: u64,
    /// A `CREATE INDEX CONCURRENTLY` (or `REINDEX CONCURRENTLY`) is building it right now.
    pub building: bool,
}

impl Index {
    /// `schema.name`, unquoted, for people.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Key columns for people, an expression as `(expression)`.
    pub fn column_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| c.clone().unwrap_or_else(|| "(expression)".to_owned()))
            .collect()
    }
}

const STATEMENTS_SQL: &str = "/* pitwall:advisor */ SELECT queryid,
    min(left(query, 10000)) AS query, sum(calls)::float8 AS calls,
    sum(total_exec_time)::float8 AS total_ms
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL AND calls > 0 AND query NOT LIKE '/* pitwall:%'
    GROUP BY queryid ORDER BY total_ms DESC LIMIT $1";

const TABLES_SQL: &str = "/* pitwall:advisor */ SELECT r.schema AS ref_schema, r.name AS ref_name,
    c.oid::int8 AS oid, c.nspname::text AS schema,
    c.relname::text AS name, c.reltuples::float8 AS reltuples
    FROM unnest($1::text[], $2::text[]) AS r(schema, name)
    CROSS JOIN LATERAL (
        SELECT c.oid, n.nspname, c.relname, c.reltuples
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = r.name AND c.relkind IN ('r', 'p', 'm')
          AND (n.nspname = r.schema
               OR (r.schema = '' AND n.nspname = ANY (current_schemas(false))))
        ORDER BY array_position(current_schemas(false), n.nspname::text)
        LIMIT 1) AS c
    LIMIT 200";

const COLUMNS_SQL: &str = "/* pitwall:advisor */ SELECT a.attrelid::int8 AS table_oid,
    a.attname::text AS name, a.attnum, s.null_frac::float8 AS null_frac,
    s.n_distinct::float8 AS n_distinct
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN LATERAL (
        SELECT st.null_frac, st.n_distinct FROM pg_stats st
        WHERE st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname
        ORDER BY st.inherited LIMIT 1) AS s ON true
    WHERE a.attrelid = ANY ($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attrelid, a.attnum
    LIMIT 20000";

/// Indexes with their key columns; `$1` limits them to some tables (all user tables when NULL).
const INDEXES_SQL: &str = "/* pitwall:advisor */ SELECT i.indexrelid::int8 AS oid,
    n.nspname::text AS schema, ix.relname::text AS name, i.indrelid::int8 AS table_oid,
    tn.nspname::text AS table_schema, t.relname::text AS table_name, am.amname::text AS method,
    i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
    ARRAY(SELECT a.attname::text
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                  AND k.attnum > 0
          WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) AS columns,
    ARRAY(SELECT coalesce(opc.opcname::text, '')
          FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS k(opc, ord)
          LEFT JOIN pg_opclass opc ON opc.oid = k.opc
          ORDER BY k.ord) AS opclasses,
    regexp_replace(i.indexprs::text, ' :location -?[0-9]+', '', 'g') AS expressions,
    regexp_replace(i.indpred::text, ' :location -?[0-9]+', '', 'g') AS predicate,
    pg_relation_size(i.indexrelid)::int8 AS size_bytes,
    coalesce(s.idx_scan, 0)::int8 AS scans,
    EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
            WHERE p.index_relid = i.indexrelid) AS building
    FROM pg_index i
    JOIN pg_class ix ON ix.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = ix.relnamespace
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_am am ON am.oid = ix.relam
    LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
    WHERE ($1::int8[] IS NULL OR i.indrelid = ANY ($1::int8[]::oid[]))
      AND tn.nspname NOT IN ('pg_catalog', 'information_schema')
      AND tn.nspname NOT LIKE 'pg_toast%'
    ORDER BY tn.nspname, t.relname, ix.relname
    LIMIT $2";

/// A read-only transaction whose statements give up after [`LOCK_TIMEOUT`] waiting for a lock.
pub(super) async fn begin(
    pool: &PgPool,
    timeout: Duration,
) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| read("connecting", &e, timeout))?;
    sqlx::query("/* pitwall:advisor */ SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| read("starting a read-only transaction", &e, timeout))?;
    let set = format!(
        "/* pitwall:advisor */ SET LOCAL lock_timeout = {}",
        LOCK_TIMEOUT.as_millis()
    );
    sqlx::query(&set)
        .execute(&mut *tx)
        .await
        .map_err(|e| read("setting lock_timeout", &e, timeout))?;
    Ok(tx)
}

/// A driver error as an [`Error`]: a lock timeout says the catalog was locked.
pub(super) fn read(what: &'static str, e: &sqlx::Error, timeout: Duration) -> Error {
    let message = pg_error(e, timeout);
    let code = e
        .as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()));
    match code.as_deref() {
        Some("55P03") => Error::Locked {
            what,
            lock_ms: LOCK_TIMEOUT.as_millis() as u64,
            message,
        },
        _ => Error::Read { what, message },
    }
}

/// The statements of the current database by total execution time, at most `limit` (capped at
/// [`STATEMENT_LIMIT`]), without Pitwall's own.
pub async fn top_statements(
    pool: &PgPool,
    limit: i64,
    timeout: Duration,
) -> Result<Vec<TopStatement>> {
    let mut tx = begin(pool, timeout).await?;
    let rows = sqlx::query(STATEMENTS_SQL)
        .bind(limit.clamp(1, STATEMENT_LIMIT))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| statements_error(&e, timeout))?;
    tx.rollback().await.ok();
    rows.iter()
        .map(|r| {
            let calls: f64 = r.try_get("calls")?;
            let total_ms: f64 = r.try_get("total_ms")?;
            Ok(TopStatement {
                queryid: r.try_get("queryid")?,
                query: r.try_get("query")?,
                calls,
                total_ms,
                mean_ms: if calls > 0.0 { total_ms / calls } else { 0.0 },
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(|e| read("reading pg_stat_statements", &e, timeout))
}

fn statements_error(e: &sqlx::Error, timeout: Duration) -> Error {
    let code = e
        .as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()));
    let message = pg_error(e, timeout);
    match code.as_deref() {
        // undefined_table: the extension is not created in this database.
        Some("42P01") => Error::NoStatements {
            message,
            fix: "run CREATE EXTENSION pg_stat_statements in this database",
        },
        // object_not_in_prerequisite_state: the library is not preloaded.
        Some("55000") => Error::NoStatements {
            message,
            fix: "add pg_stat_statements to shared_preload_libraries and restart PostgreSQL",
        },
        _ => read("reading pg_stat_statements", e, timeout),
    }
}

/// The tables `refs` name (an unqualified name resolves through the `search_path`), each with
/// its columns and their statistics, beside the name that found it; names not found are left
/// out. At most [`TABLE_LIMIT`].
pub async fn tables(
    pool: &PgPool,
    refs: &[TableRef],
    timeout: Duration,
) -> Result<Vec<(TableRef, Table)>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let refs = &refs[..refs.len().min(TABLE_LIMIT)];
    let schemas: Vec<String> = refs
        .iter()
        .map(|r| r.schema.clone().unwrap_or_default())
        .collect();
    let names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
    let mut tx = begin(pool, timeout).await?;
    let found = sqlx::query(TABLES_SQL)
        .bind(&schemas)
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| read("reading tables", &e, timeout))?;
    let mut tables = found
        .iter()
        .map(|r| {
            let schema: String = r.try_get("ref_schema")?;
            let found = TableRef {
                schema: (!schema.is_empty()).then_some(schema),
                name: r.try_get("ref_name")?,
            };
            let table = Table {
                oid: oid(r, "oid")?,
                schema: r.try_get("schema")?,
                name: r.try_get("name")?,
                reltuples: r.try_get("reltuples")?,
                columns: Vec::new(),
            };
            Ok((found, table))
        })
        .collect::<sqlx::Result<Vec<_>>>()
        .map_err(|e| read("reading tables", &e, timeout))?;
    let mut oids: Vec<i64> = tables.iter().map(|(_, t)| i64::from(t.oid)).collect();
    oids.sort_unstable();
    oids.dedup();
    let columns = sqlx::query(COLUMNS_SQL)
        .bind(&oids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| read("reading columns and pg_stats", &e, timeout))?;
    tx.rollback().await.ok();
    for r in &columns {
        let column = (|| -> sqlx::Result<(u32, Column)> {
            let null_frac: Option<f64> = r.try_get("null_frac")?;
            let n_distinct: Option<f64> = r.try_get("n_distinct")?;
            Ok((
                oid(r, "table_oid")?,
                Column {
                    name: r.try_get("name")?,
                    attnum: r.try_get("attnum")?,
                    stats: null_frac
                        .zip(n_distinct)
                        .map(|(null_frac, n_distinct)| ColumnStats {
                            null_frac,
                            n_distinct,
                        }),
                },
            ))
        })()
        .map_err(|e| read("reading columns and pg_stats", &e, timeout))?;
        for (_, t) in tables.iter_mut().filter(|(_, t)| t.oid == column.0) {
            t.columns.push(column.1.clone());
        }
    }
    Ok(tables)
}

/// The indexes on the tables `table_oids`, or on every user table when `None`; at most
/// [`INDEX_LIMIT`].
pub async fn indexes(
    pool: &PgPool,
    table_oids: Option<&[u32]>,
    timeout: Duration,
) -> Result<Vec<Index>> {
    let oids: Option<Vec<i64>> = table_oids.map(|o| o.iter().map(|&o| i64::from(o)).collect());
    let mut tx = begin(pool, timeout).await?;
    let rows = sqlx::query(INDEXES_SQL)
        .bind(oids)
        .bind(INDEX_LIMIT)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| read("reading indexes", &e, timeout))?;
    tx.rollback().await.ok();
    rows.iter()
        .map(|r| {
            let size: i64 = r.try_get("size_bytes")?;
            let scans: i64 = r.try_get("scans")?;
            Ok(Index {
                oid: oid(r, "oid")?,
                schema: r.try_get("schema")?,
                name: r.try_get("name")?,
                table_oid: oid(r, "table_oid")?,
                table_schema: r.try_get("table_schema")?,
                table_name: r.try_get("table_name")?,
                method: r.try_get("method")?,
                unique: r.try_get("is_unique")?,
                primary: r.try_get("is_primary")?,
                valid: r.try_get("is_valid")?,
                columns: r.try_get("columns")?,
                opclasses: r.try_get("opclasses")?,
                expressions: r.try_get("expressions")?,
                predicate: r.try_get("predicate")?,
                size_bytes: size.max(0) as u64,
                scans: scans.max(0) as u64,
                building: r.try_get("building")?,
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(|e| read("reading indexes", &e, timeout))
}

fn oid(r: &PgRow, column: &str) -> sqlx::Result<u32> {
    let v: i64 = r.try_get(column)?;
    u32::try_from(v).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}
