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
}

/// A live session: whose it is and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The signed-in user.
    pub user: crate::access::CurrentUser,
    /// When activity was last noted, Unix ms.
    pub last_seen_ms: u64,
}

/// The limits a sign-in attempt is counted against.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures in a row from one client address that lock that address out of the account.
    pub per_address: u32,
    /// How long such a lock lasts; failures older than this are forgotten (ms).
    pub lock_ms: u64,
    /// Failures from all addresses after which every attempt at the account waits its turn.
    pub backoff_after: u32,
    /// The longest such wait (ms).
    pub backoff_max_ms: u64,
}

impl Lockout {
    /// How long the account waits after its `failures`-th failure: nothing up to
    /// `backoff_after`, then 1 s, doubling with each failure, at most `backoff_max_ms`.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        match failures.checked_sub(self.backoff_after + 1) {
            None => 0,
            Some(beyond) => 1000u64
                .saturating_mul(1 << beyond.min(30))
                .min(self.backoff_max_ms),
        }
    }
}

/// What counting a sign-in attempt against an account decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Counted as a failure until the password proves right (a session clears it): check it.
    Granted {
        /// Failures from this address in a row, this one included.
        here: u32,
        /// Failures from all addresses, this one included.
        account: u32,
    },
    /// This address is locked out of the account until then (Unix ms); nothing was counted.
    LockedOut {
        /// When the lock ends.
        until_ms: u64,
    },
    /// The account waits after many failures until then (Unix ms); nothing was counted.
    Waiting {
        /// When the wait ends.
        until_ms: u64,
    },
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
