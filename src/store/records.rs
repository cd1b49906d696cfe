//! What the store keeps and takes, beyond the shared page types.

use crate::access::Role;

/// A user as stored, password hash included: never leaves the server.
#[derive(Debug, Clone)]
pub struct StoredUser {
    /// Row id.
    pub id: i64,
    /// The user name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Their role.
    pub role: Role,
    /// Consecutive failed sign-ins.
    pub failed_attempts: u32,
    /// Locked until then (Unix ms), if locked.
    pub locked_until_ms: Option<u64>,
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the token, hex.
    pub id_hash: String,
    /// Whose session.
    pub user_id: i64,
    /// Unix ms.
    pub created_at_ms: u64,
    /// Ends then at the latest (absolute lifetime).
    pub expires_at_ms: u64,
    /// The client's address.
    pub client_addr: Option<String>,
    /// A session this one replaces (closed in the same transaction).
    pub replaces: Option<String>,
}

/// An audit row to append.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// Unix ms.
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// Their role, when known.
    pub role: Option<Role>,
    /// What, such as `user.add`.
    pub action: String,
    /// Which target.
    pub target: Option<String>,
    /// Which object.
    pub object: Option<String>,
    /// Parameters, secrets already redacted.
    pub parameters: serde_json::Value,
    /// `ok` or what went wrong.
    pub outcome: String,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// One downsampled bucket of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The series key (`target/family/metric`).
    pub series: String,
    /// Start of the bucket, Unix ms.
    pub start_ms: u64,
    /// Width of the bucket in ms.
    pub width_ms: u64,
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Newest value.
    pub last: f64,
    /// How many points it summarises.
    pub samples: u32,
}

/// A webhook message to queue: for which webhook, and the body to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The webhook's name.
    pub webhook: String,
    /// The JSON body.
    pub payload: String,
}

/// A queued webhook message that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its number (the receiver sees it as the delivery id).
    pub id: i64,
    /// The webhook's name.
    pub webhook: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts so far.
    pub attempts: u32,
}
