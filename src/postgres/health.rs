//! Tables and maintenance: what a DBA checks on a database before and after touching it. Per
//! table: rows, dead tuples, scans, last (auto)vacuum and (auto)analyze, size and growth; the
//! transaction-ID wraparound margin; heap and index cache hit rates; connections by state;
//! long-running, idle-in-transaction, blocked and blocking sessions; sequences near overflow.
//!
//! Each panel is read on its own and fails on its own (a locked catalog costs one panel, not the
//! page). The types are shared with the browser; the reads sit in `health/read.rs`.

#[cfg(feature = "services")]
pub mod read;

use serde::{Deserialize, Serialize};

use crate::Panel;

/// When a session or a sequence is worth showing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthSettings {
    /// An active statement running at least this long is long-running, ms (pghero: 60 s).
    pub long_running_ms: u64,
    /// A session idle in a transaction at least this long is shown, ms.
    pub idle_in_transaction_ms: u64,
    /// A sequence at or past this share of its column's range is near overflow (pghero: 0.9).
    pub sequence_danger: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            long_running_ms: 60_000,
            idle_in_transaction_ms: 10_000,
            sequence_danger: 0.9,
        }
    }
}

/// The health of one database, panel by panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseHealth {
    /// The target's name.
    pub target: String,
    /// When it was read, Unix ms.
    pub read_at_ms: u64,
    /// The thresholds it was read with.
    pub settings: HealthSettings,
    /// User tables, biggest first.
    pub tables: Panel<Vec<TableHealth>>,
    /// How far the databases and the oldest tables are from transaction-ID wraparound.
    pub wraparound: Panel<Wraparound>,
    /// Buffer cache hit rates of tables and indexes.
    pub cache: Panel<CacheHit>,
    /// Client connections by state.
    pub connections: Panel<Connections>,
    /// Long-running, idle-in-transaction, blocked and blocking sessions.
    pub sessions: Panel<Vec<Session>>,
    /// Sequences, fullest first.
    pub sequences: Panel<Vec<SequenceUse>>,
}

/// One user table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableHealth {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Live rows (`n_live_tup`).
    pub live_rows: f64,
    /// Dead rows waiting for a vacuum (`n_dead_tup`).
    pub dead_rows: f64,
    /// Dead rows at which autovacuum starts on it, by the server's settings and the table's own.
    pub autovacuum_at: f64,
    /// Sequential scans since statistics were reset.
    pub seq_scans: f64,
    /// Index scans since statistics were reset.
    pub index_scans: f64,
    /// Last manual vacuum, Unix ms.
    pub last_vacuum_ms: Option<u64>,
    /// Last autovacuum, Unix ms.
    pub last_autovacuum_ms: Option<u64>,
    /// Last manual analyze, Unix ms.
    pub last_analyze_ms: Option<u64>,
    /// Last autoanalyze, Unix ms.
    pub last_autoanalyze_ms: Option<u64>,
    /// Heap, free space map and visibility map (with TOAST), bytes.
    pub table_bytes: f64,
    /// Its indexes, bytes.
    pub index_bytes: f64,
    /// Heap blocks found in shared buffers, percent (none before the first read).
    pub heap_hit_pct: Option<f64>,
    /// Growth of `table_bytes` since `growth_since_ms`, bytes.
    pub growth_bytes: Option<f64>,
    /// The sample growth is counted from, Unix ms (the oldest of the last day kept by this
    /// console).
    pub growth_since_ms: Option<u64>,
}

impl TableHealth {
    /// `schema.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Dead rows per live row, percent (comparable to `autovacuum_vacuum_scale_factor`).
    pub fn dead_pct(&self) -> Option<f64> {
        (self.live_rows > 0.0).then(|| 100.0 * self.dead_rows / self.live_rows)
    }

    /// Index scans among all scans, percent (none before the first scan).
    pub fn index_scan_pct(&self) -> Option<f64> {
        let all = self.seq_scans + self.index_scans;
        (all > 0.0).then(|| 100.0 * self.index_scans / all)
    }

    /// Whether autovacuum is due: more dead rows than its threshold.
    pub fn vacuum_due(&self) -> bool {
        self.dead_rows > self.autovacuum_at
    }

    /// The later of the last manual and automatic vacuum, Unix ms.
    pub fn vacuumed_ms(&self) -> Option<u64> {
        self.last_vacuum_ms.max(self.last_autovacuum_ms)
    }

    /// The later of the last manual and automatic analyze, Unix ms.
    pub fn analyzed_ms(&self) -> Option<u64> {
        self.last_analyze_ms.max(self.last_autoanalyze_ms)
    }
}

/// Transaction IDs wrap around after about 2^31: PostgreSQL stops taking writes 3 million before.
pub const WRAPAROUND_LIMIT: f64 = 2_147_483_648.0 - 3_000_000.0;

/// How far from transaction-ID wraparound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wraparound {
    /// `autovacuum_freeze_max_age`: the age at which autovacuum freezes a table whatever else.
    pub freeze_max_age: f64,
    /// Every database that takes connections, oldest first.
    pub databases: Vec<XidAge>,
    /// This database's oldest tables (TOAST included), oldest first, at most 10.
    pub tables: Vec<XidAge>,
}

/// The age of the oldest unfrozen transaction ID of a database or a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XidAge {
    /// The database, or the table as `schema.name`.
    pub name: String,
    /// `age(datfrozenxid)` or `age(relfrozenxid)`.
    pub xid_age: f64,
    /// `mxid_age(datminmxid)` or `mxid_age(relminmxid)`.
    pub mxid_age: f64,
}

impl XidAge {
    /// Transactions left before PostgreSQL stops taking writes.
    pub fn left(&self) -> f64 {
        (WRAPAROUND_LIMIT - self.xid_age).max(0.0)
    }

    /// The share of the range used, percent.
    pub fn used_pct(&self) -> f64 {
        100.0 * self.xid_age / WRAPAROUND_LIMIT
    }
}

/// Buffer cache hit rates since statistics were reset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CacheHit {
    /// Heap blocks of user tables found in shared buffers, percent.
    pub heap_pct: Option<f64>,
    /// Index blocks of user indexes found in shared buffers, percent.
    pub index_pct: Option<f64>,
}

/// Client connections to the server, by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    /// `max_connections`.
    pub max: u32,
    /// `superuser_reserved_connections`.
    pub reserved: u32,
    /// Each state (`active`, `idle`, `idle in transaction`, …) with its count, most first.
    pub by_state: Vec<(String, u32)>,
}

impl Connections {
    /// Every client connection.
    pub fn total(&self) -> u32 {
        self.by_state.iter().map(|(_, n)| n).sum()
    }
}

/// Why a session is shown; a session can be several of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionFlag {
    /// Waits for a lock another session holds.
    Blocked,
    /// Holds a lock another session waits for.
    Blocking,
    /// Runs one statement for longer than the threshold.
    LongRunning,
    /// Sits in an open transaction doing nothing: holds its locks and the xmin horizon.
    IdleInTransaction,
}

impl SessionFlag {
    /// How the page names it.
    pub fn label(self) -> &'static str {
        match self {
            SessionFlag::Blocked => "blocked",
            SessionFlag::Blocking => "blocking",
            SessionFlag::LongRunning => "long-running",
            SessionFlag::IdleInTransaction => "idle in transaction",
        }
    }
}

/// A client session worth a look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The backend's process id.
    pub pid: i32,
    /// Its database.
    pub database: String,
    /// Its role.
    pub user: String,
    /// `application_name`.
    pub application: String,
    /// The client's address (none for a Unix socket).
    pub client: Option<String>,
    /// `state`.
    pub state: String,
    /// What it waits for (`Lock: relation`, `Client: ClientRead`, …).
    pub waiting_for: Option<String>,
    /// Age of its transaction, ms.
    pub transaction_ms: Option<u64>,
    /// Time since its current or last statement started, ms.
    pub statement_ms: Option<u64>,
    /// Its current or last statement, cut after 2,000 characters.
    pub query: String,
    /// The sessions it waits for.
    pub blocked_by: Vec<i32>,
    /// Why it is shown.
    pub flags: Vec<SessionFlag>,
}

/// A sequence and how much of its range is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceUse {
    /// `schema.name`.
    pub sequence: String,
    /// The column it feeds, `schema.table.column`, when it is owned by or is the identity of one.
    pub column: Option<String>,
    /// The column's (or else the sequence's) type.
    pub data_type: String,
    /// The last value handed out (the start value before the first).
    pub last_value: f64,
    /// The largest value the sequence and its column can both hold (the smallest, for a
    /// descending sequence).
    pub limit: f64,
    /// The share of the range used, 0 to 1.
    pub used: f64,
}
