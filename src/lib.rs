//! Pitwall's engine.
//!
//! The types at the top level are shared with the browser: they only derive serde and compile to
//! wasm. Everything that talks to PostgreSQL, Redis or the console's own store sits behind the
//! default `services` feature, so the hydrate build never pulls in sqlx, redis or tokio.

pub mod access;
pub mod alerts;
pub mod cache;
pub mod embed;
pub mod format;
pub mod jobs;
pub mod postgres;
pub mod queues;
pub mod target;
pub mod telemetry;
pub mod writable;

#[cfg(feature = "services")]
pub mod config;
#[cfg(feature = "services")]
pub mod demo;
#[cfg(feature = "services")]
pub mod harness;
#[cfg(feature = "services")]
pub mod link;
#[cfg(feature = "services")]
pub mod probe;
#[cfg(feature = "services")]
pub mod secret;
#[cfg(feature = "services")]
pub mod sentinel;
#[cfg(feature = "services")]
pub mod status;
#[cfg(feature = "services")]
pub mod store;

pub use format::{Unit, format_utc, percent_encode};
pub use target::{TargetKind, TargetState, TargetStatus};

/// One panel of a page, read on its own: its figures, or why they could not be read (so one
/// failed read costs its panel, never the page).
pub type Panel<T> = Result<T, String>;
