//! Who may do what: roles, users, sessions, sign-in protection and the audit log.
//!
//! The types at the top are shared with the browser. The service that signs people in, keeps their
//! sessions and writes the audit trail sits behind the `services` feature.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod next;
#[cfg(feature = "services")]
mod password;
#[cfg(feature = "services")]
mod service;
#[cfg(feature = "services")]
mod streams;
#[cfg(feature = "services")]
mod throttle;
#[cfg(feature = "services")]
mod username;

pub use next::safe_next;
#[cfg(feature = "services")]
pub use service::{
    Access, AccessSettings, Actor, Bootstrap, Error, Result, STREAMS_PER_SESSION, SessionToken,
    SignInError,
};
#[cfg(feature = "services")]
pub use streams::{Holder, StreamError, StreamLease, Streams};
#[cfg(feature = "services")]
pub use username::Username;

/// What a user may do. Each role includes everything the roles before it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also acknowledges and silences alerts, warms caches and invalidates tags.
    Operator,
    /// Also creates indexes, runs VACUUM and manages users.
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name as written in config, CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`: expected viewer, operator or admin"))
    }
}

/// The signed-in user, as pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// The user name.
    pub username: String,
    /// Their role.
    pub role: Role,
}

/// A console user, as the Users page lists them (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The user name.
    pub username: String,
    /// Their role.
    pub role: Role,
    /// When the account was created, Unix milliseconds.
    pub created_at_ms: u64,
    /// Until when the last lock in force ends (for an address, or the account-wide wait), if any.
    pub locked_until_ms: Option<u64>,
    /// The client addresses locked out of the account after failed sign-ins from them.
    pub locked_from: Vec<String>,
    /// Until when every address waits before its next attempt after many failures, if it does.
    pub waiting_until_ms: Option<u64>,
    /// How many sessions are open.
    pub sessions: u32,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log.
    pub id: i64,
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// Who (a user name, or what they typed at a failed sign-in).
    pub actor: String,
    /// Their role at the time, when known.
    pub role: Option<Role>,
    /// What was done, such as `sign-in` or `user.add`.
    pub action: String,
    /// Which target, when the action touched one.
    pub target: Option<String>,
    /// Which object (a user, a key, an index).
    pub object: Option<String>,
    /// Parameters as JSON, secrets redacted.
    pub parameters: String,
    /// `ok`, or what went wrong.
    pub outcome: String,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// Which audit rows to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only actions starting with this, such as `user.` or `sign-in`.
    pub action: Option<String>,
    /// Only rows whose outcome is (`ok`) or is not (`failed`) success.
    pub outcome: Option<String>,
    /// Only rows about this object, such as `job 42`.
    pub object: Option<String>,
    /// Rows before this id (the next page).
    pub before_id: Option<i64>,
    /// At most this many rows (capped at 200).
    pub limit: u32,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The rows.
    pub rows: Vec<AuditRecord>,
    /// How many rows match the filter in all.
    pub total: u64,
    /// Where the next page starts, if there is one.
    pub next_before_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
    }

    #[test]
    fn roles_parse_with_a_clear_error() {
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert_eq!(
            "root".parse::<Role>().unwrap_err(),
            "unknown role `root`: expected viewer, operator or admin"
        );
    }
}
