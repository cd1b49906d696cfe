//! What the console knows about one monitored target, as shown on pages and in `/health`.

use serde::{Deserialize, Serialize};

/// The kind of backing service a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A PostgreSQL database.
    Postgres,
    /// A Redis instance used as a cache.
    Redis,
    /// A Redis instance used as a Celery (kombu) broker.
    Celery,
}

impl TargetKind {
    /// The name in config sections and metric labels: `postgres`, `redis`, `celery`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Postgres => "postgres",
            TargetKind::Redis => "redis",
            TargetKind::Celery => "celery",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Postgres => "PostgreSQL",
            TargetKind::Redis => "Redis",
            TargetKind::Celery => "Celery broker",
        }
    }
}

/// Whether a target answered its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Not checked yet since the console started.
    Unknown,
    /// The last check succeeded.
    Up,
    /// The last check failed or timed out.
    Down,
}

impl TargetState {
    /// The label shown to people (and matched by tests).
    pub fn label(self) -> &'static str {
        match self {
            TargetState::Unknown => "unknown",
            TargetState::Up => "up",
            TargetState::Down => "down",
        }
    }
}

/// The latest check of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target's configured name.
    pub name: String,
    /// What kind of service it is.
    pub kind: TargetKind,
    /// `host:port/db`, never the credentials.
    pub address: String,
    /// Up, down, or not checked yet.
    pub state: TargetState,
    /// The server's version as it reports it, once it has answered.
    pub version: Option<String>,
    /// Round-trip time of the last successful check, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Why the last check failed.
    pub error: Option<String>,
    /// When the last check finished, in milliseconds since the Unix epoch (0 when never).
    pub checked_at_ms: u64,
    /// Since when the target has been in its current state, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}
