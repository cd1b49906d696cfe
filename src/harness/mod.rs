//! Throwaway PostgreSQL and Redis servers for tests, the demo and benchmarks.
//!
//! Each server runs from the installed binaries on a free loopback port, in a temporary directory,
//! in its own process group so it can be stopped, paused (`SIGSTOP`), resumed and restarted on
//! demand. Dropping the handle kills the server and removes its directory, also when a test panics.
//! PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.

mod postgres;
mod process;
mod redis;

pub use postgres::PgServer;
pub use redis::{RedisCluster, RedisSentinel, RedisServer};

/// Why a throwaway service could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server binary is not installed.
    #[error("{what} not found: {hint}")]
    NotFound {
        /// The binary looked for.
        what: &'static str,
        /// Where it was looked for and how to point at it.
        hint: String,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A server did not come up.
    #[error("{service} did not start: {reason}\n--- last lines of its log ---\n{log}")]
    Start {
        /// Which server.
        service: &'static str,
        /// Why it is considered failed.
        reason: String,
        /// The tail of its log.
        log: String,
    },
    /// A signal could not be delivered.
    #[error("cannot signal {service}: {source}")]
    Signal {
        /// Which server.
        service: &'static str,
        /// The errno.
        source: nix::Error,
    },
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Starts one throwaway PostgreSQL and one Redis in parallel.
pub async fn start_both() -> Result<(PgServer, RedisServer)> {
    tokio::try_join!(PgServer::start(), RedisServer::start())
}
