//! Celery queues on Redis, read the way kombu writes them: which queues a broker has, how many
//! messages wait in each, how fast they come and go, how long the oldest has waited, which
//! workers are alive, and a read-only look at the next messages.
//!
//! [`Message`] is shared with the browser; the rest talks to brokers and sits behind the
//! `services` feature.

use serde::{Deserialize, Serialize};

#[cfg(feature = "services")]
mod broker;
#[cfg(feature = "services")]
pub mod events;
#[cfg(feature = "services")]
pub mod flow;
#[cfg(feature = "services")]
pub mod kombu;

#[cfg(feature = "services")]
pub use broker::{Broker, Brokers, Error, Result};

/// The most messages one peek returns.
pub const MAX_PEEK: usize = 50;

/// What a waiting task message says, for a read-only peek (arguments cut short).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The task's name (`app.mail.send_digest`).
    pub task: String,
    /// The task's id.
    pub id: String,
    /// Positional arguments as the producer showed them, cut after 200 characters.
    pub args: String,
    /// Keyword arguments, cut the same way.
    pub kwargs: String,
    /// Its priority (on Redis 0 is the highest).
    pub priority: u8,
    /// When it should run, if it was scheduled.
    pub eta: Option<String>,
    /// How often it was retried.
    pub retries: u32,
    /// Its size on the broker in bytes.
    pub bytes: usize,
}
