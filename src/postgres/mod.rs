//! PostgreSQL beyond the live figures: the workload by statement, index advice, tables and
//! maintenance, checked names for the statements Pitwall builds.
//!
//! Types shared with the browser sit here; what talks to a database sits behind the `services`
//! feature.

#[cfg(feature = "services")]
pub mod advisor;
#[cfg(feature = "services")]
pub mod catalog;
#[cfg(feature = "services")]
pub mod create_index;
#[cfg(feature = "services")]
pub mod explain;
pub mod health;
pub mod identifier;
#[cfg(feature = "services")]
pub mod indexes;
#[cfg(feature = "services")]
pub mod reindex;
#[cfg(feature = "services")]
pub mod vacuum;
#[cfg(feature = "services")]
pub mod workload;

pub use identifier::{Identifier, Qualified};

use serde::{Deserialize, Serialize};

/// What a statement list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Total time, most first.
    #[default]
    Total,
    /// Mean time, slowest first.
    Mean,
    /// Calls, most first.
    Calls,
    /// Rows, most first.
    Rows,
    /// Buffer cache hit rate, worst first.
    Hit,
}

impl Sort {
    /// Every sort, with its URL value and label.
    pub const ALL: [(Sort, &'static str, &'static str); 5] = [
        (Sort::Total, "total", "Total time"),
        (Sort::Mean, "mean", "Mean time"),
        (Sort::Calls, "calls", "Calls"),
        (Sort::Rows, "rows", "Rows"),
        (Sort::Hit, "hit", "Cache hit rate"),
    ];

    /// The sort named `key` in a URL, or the default.
    pub fn from_key(key: &str) -> Sort {
        Self::ALL
            .iter()
            .find(|(_, k, _)| *k == key)
            .map_or(Sort::Total, |(s, _, _)| *s)
    }
}

/// One statement's figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryStats {
    /// `pg_stat_statements.queryid`.
    pub queryid: i64,
    /// The normalized text (constants as `$1`), cut after 10,000 characters.
    pub query: String,
    /// Executions.
    pub calls: f64,
    /// Planning and execution time, ms.
    pub total_ms: f64,
    /// Mean time per call, ms.
    pub mean_ms: f64,
    /// Rows returned or affected.
    pub rows: f64,
    /// Shared buffer cache hit rate, percent (none without block access).
    pub hit_pct: Option<f64>,
    /// Its share of the time of all statements, percent.
    pub share_pct: f64,
    /// Whether it is slow (mean and calls at or over the thresholds).
    pub slow: bool,
}

/// One minute of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueryPoint {
    /// The minute's start, Unix ms.
    pub at_ms: u64,
    /// Executions.
    pub calls: f64,
    /// Mean time per call, ms.
    pub mean_ms: f64,
}

/// A database's statements over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadPage {
    /// The target's name.
    pub target: String,
    /// The window, ms.
    pub window_ms: u64,
    /// Since when statements are counted (the console's first poll), Unix ms.
    pub since_ms: Option<u64>,
    /// Time of all statements in the window, ms.
    pub total_ms: f64,
    /// The statements, sorted, at most 100.
    pub statements: Vec<QueryStats>,
    /// Why the last poll failed, with the fix when there is one.
    pub problem: Option<String>,
    /// A statement is slow from this mean time, ms (`[queries] slow_query_ms`)…
    pub slow_mean_ms: f64,
    /// …over at least this many calls in the window (`[queries] slow_query_calls`).
    pub slow_calls: f64,
}

/// One node of a query plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    /// What it does: `Index Scan using events_user_idx on events`.
    pub label: String,
    /// Its conditions and keys.
    pub detail: Vec<String>,
    /// The planner's total cost.
    pub cost: f64,
    /// The rows the planner expects.
    pub rows: f64,
    /// Time it took per loop, ms (with ANALYZE).
    pub actual_ms: Option<f64>,
    /// Rows it returned per loop (with ANALYZE).
    pub actual_rows: Option<f64>,
    /// How often it ran (with ANALYZE).
    pub loops: Option<f64>,
    /// The nodes it reads from.
    pub children: Vec<PlanNode>,
}

/// A statement's plan, as text and as a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    /// The plan as text.
    pub text: String,
    /// The plan as a tree.
    pub tree: PlanNode,
    /// Whether the statement was run (EXPLAIN ANALYZE).
    pub analyzed: bool,
    /// Whether it is the generic plan of a statement with parameters.
    pub generic: bool,
}

/// When the index advisor looks at a statement, and which tables it leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdvisorSettings {
    /// A statement is analysed when its mean execution time is at least this, ms.
    pub min_mean_ms: f64,
    /// … and it ran at least this often.
    pub min_calls: f64,
    /// Tables with fewer (estimated) rows never get an index suggested.
    pub min_table_rows: f64,
}

impl Default for AdvisorSettings {
    /// pghero's thresholds: 20 ms mean, 100 calls, 500 rows.
    fn default() -> Self {
        Self {
            min_mean_ms: 20.0,
            min_calls: 100.0,
            min_table_rows: 500.0,
        }
    }
}

/// The kind of index a suggestion builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexMethod {
    /// A B-tree on the columns.
    Btree,
    /// A GiST index with `gist_trgm_ops` (the `pg_trgm` extension) for `LIKE`/`ILIKE`.
    GistTrgm,
}

/// A statement an index would help, with its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Helped {
    /// `pg_stat_statements.queryid`.
    pub queryid: i64,
    /// The normalized text.
    pub query: String,
    /// Mean execution time, ms.
    pub mean_ms: f64,
    /// Executions.
    pub calls: f64,
}

/// An index the advisor suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The table.
    pub table: Qualified,
    /// The index columns, in order.
    pub columns: Vec<Identifier>,
    /// B-tree, or trigram GiST for a pattern match.
    pub method: IndexMethod,
    /// The generated name, `<table>_<columns>_idx` cut to 63 bytes.
    pub name: Identifier,
    /// `CREATE INDEX CONCURRENTLY "name" ON "schema"."table" ("a", "b")`.
    pub statement: String,
    /// The slow statements it helps, heaviest first.
    pub helps: Vec<Helped>,
    /// Why, in sentences: row estimates per column, why each column is in, the existing indexes
    /// considered.
    pub reasoning: Vec<String>,
}

/// What the advisor concluded about one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// An index would help: the suggestion with this name.
    Suggested {
        /// The suggestion's index name.
        index: Identifier,
    },
    /// An existing index already serves it.
    Covered {
        /// The index, `schema.name`.
        index: String,
        /// Its key columns.
        columns: Vec<String>,
    },
    /// The statement is understood, but no index would help.
    NoIndexNeeded {
        /// Why.
        reason: String,
    },
    /// The statement's shape is not supported, or its table or statistics are missing.
    NotAnalysed {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// One line for a list: `covered by index public.x on (a, b)`, `not analysed: OR`.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Suggested { index } => format!("index {} suggested", index.as_str()),
            Verdict::Covered { index, columns } => {
                format!("covered by index {index} on ({})", columns.join(", "))
            }
            Verdict::NoIndexNeeded { reason } => format!("no index needed: {reason}"),
            Verdict::NotAnalysed { reason } => format!("not analysed: {reason}"),
        }
    }
}

/// The advisor's look at one slow statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementAdvice {
    /// The statement and its figures.
    pub statement: Helped,
    /// The table it reads, when it was understood.
    pub table: Option<Qualified>,
    /// The conclusion.
    pub verdict: Verdict,
    /// How it was reached, in sentences.
    pub reasoning: Vec<String>,
}

/// The index advisor's report on a database's slow statements.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Advice {
    /// Suggested indexes, one per table and column list, most helpful first.
    pub suggestions: Vec<Suggestion>,
    /// Every slow statement looked at, heaviest first.
    pub statements: Vec<StatementAdvice>,
}

/// What is wrong with an existing index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Never scanned since statistics were reset, and not enforcing uniqueness.
    Unused,
    /// Another valid index serves every search it serves.
    Duplicate,
    /// Left INVALID by a failed or cancelled build: ignored by queries, still paid for by writes.
    Invalid,
}

/// When an index counts as unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexHealthSettings {
    /// Unused indexes smaller than this are not reported, bytes.
    pub unused_min_bytes: u64,
}

impl Default for IndexHealthSettings {
    /// pghero's 10 MB.
    fn default() -> Self {
        Self {
            unused_min_bytes: 10 * 1024 * 1024,
        }
    }
}

/// An existing index that costs more than it gives, with the fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexFinding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The index's schema.
    pub schema: String,
    /// The index's name.
    pub index: String,
    /// Its table, `schema.name`.
    pub table: String,
    /// Access method (`btree`, `gin`, …).
    pub method: String,
    /// Key columns; an expression shows as `(expression)`.
    pub columns: Vec<String>,
    /// Size on disk, bytes.
    pub size_bytes: u64,
    /// Index scans since statistics were reset.
    pub scans: u64,
    /// For a duplicate: the index that covers it, `schema.name`.
    pub covered_by: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// The statement that fixes it (`DROP INDEX CONCURRENTLY …`, `REINDEX INDEX CONCURRENTLY …`);
    /// none when the name is not one Pitwall writes (not a plain lower-case name).
    pub fix: Option<String>,
}
