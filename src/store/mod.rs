//! The console's own store: users, sessions, jobs, audit log, alert state and metric history.
//!
//! Callers hold an `Arc<dyn Store>`; SQLite (a file under the data directory) is the default
//! backend, and a PostgreSQL backend for several console instances can implement the same trait.
//! Every change that is audited is written in one transaction with its audit row; the audit log
//! itself can only be appended to.

mod records;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

pub use records::{
    Bucket, Claim, LiveSession, Lockout, NewAudit, NewSession, Notification, Outgoing, StoredUser,
};
pub use sqlite::SqliteStore;

use crate::access::{AuditFilter, AuditPage, Role, UserSummary};
use crate::alerts::{Ack, Episode, Silence};
use crate::embed::TokenSummary;
use crate::jobs::{
    Attempt, Claimed, Enqueued, JobFilter, JobPage, JobState, JobSummary, NewJob, Outcome, Progress,
};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or a query failed.
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migrations failed.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The console's own persistent state.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend, such as `sqlite`.
    fn backend(&self) -> &'static str;

    /// Checks that the store answers a query.
    async fn ping(&self) -> Result<()>;

    /// The newest applied schema migration.
    async fn schema_version(&self) -> Result<i64>;

    /// How many users exist.
    async fn count_users(&self) -> Result<u64>;

    /// The user with this name, hash included.
    async fn user(&self, username: &str) -> Result<Option<StoredUser>>;

    /// Every user, for the Users page.
    async fn list_users(&self, now_ms: u64) -> Result<Vec<UserSummary>>;

    /// Adds a user; false (and nothing written) when the name is taken.
    async fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        audit: &NewAudit,
    ) -> Result<bool>;

    /// Sets a new password hash and/or role, clears any lockout and ends the user's sessions;
    /// false when there is no such user.
    async fn update_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        role: Option<Role>,
        audit: &NewAudit,
    ) -> Result<bool>;

    /// Removes a user and their sessions; false when there is no such user.
    async fn delete_user(&self, username: &str, audit: &NewAudit) -> Result<bool>;

    /// Counts a sign-in attempt at user `user_id` from `client_addr` as a failure, atomically and
    /// before its password is checked, unless that address is locked out of the account or the
    /// account is waiting (then nothing is counted).
    async fn claim_sign_in(
        &self,
        user_id: i64,
        client_addr: &str,
        now_ms: u64,
        rules: &Lockout,
    ) -> Result<Claim>;

    /// Records a refused sign-in (already counted by `claim_sign_in`, if at all); with
    /// `wait_until_ms`, every attempt at user `user_id` waits until then at least.
    async fn record_sign_in_failure(
        &self,
        user_id: Option<i64>,
        wait_until_ms: Option<u64>,
        audit: &NewAudit,
    ) -> Result<()>;

    /// Lifts every sign-in lock of a user (for each address and account-wide); false when there
    /// is no such user.
    async fn unlock_user(&self, username: &str, audit: &NewAudit) -> Result<bool>;

    /// Opens a session after a successful sign-in (closing the one it replaces, clearing the
    /// failures from its address and the account-wide count).
    async fn open_session(&self, session: &NewSession, audit: &NewAudit) -> Result<()>;

    /// The user of a live session (not past its lifetime, used within `idle_ms`) and when it was
    /// last used. Reads only: a store that takes no writes still lets its users in.
    async fn session_user(
        &self,
        id_hash: &str,
        now_ms: u64,
        idle_ms: u64,
    ) -> Result<Option<LiveSession>>;

    /// Notes activity on a session at `now_ms`, and removes the sessions that have ended.
    async fn touch_session(&self, id_hash: &str, now_ms: u64, idle_ms: u64) -> Result<()>;

    /// Which of `id_hashes` are live sessions at `now_ms`, in one read.
    async fn live_sessions(
        &self,
        id_hashes: &[String],
        now_ms: u64,
        idle_ms: u64,
    ) -> Result<std::collections::HashSet<String>>;

    /// Ends a session.
    async fn close_session(&self, id_hash: &str, audit: &NewAudit) -> Result<()>;

    /// Appends an audit row for an action that changes nothing in the store itself.
    async fn append_audit(&self, audit: &NewAudit) -> Result<()>;

    /// A page of the audit log, newest first.
    async fn audit_page(&self, filter: &AuditFilter) -> Result<AuditPage>;

    /// Saves downsampled buckets (a bucket saved again replaces the earlier one).
    async fn save_buckets(&self, buckets: &[Bucket]) -> Result<()>;

    /// The buckets of one series and width starting in `[from_ms, to_ms)`, oldest first.
    async fn buckets(
        &self,
        series: &str,
        width_ms: u64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>>;

    /// Every series' buckets starting in `[from_ms, to_ms)`, by series then time (for export).
    async fn all_buckets(&self, from_ms: u64, to_ms: u64) -> Result<Vec<Bucket>>;

    /// Removes buckets that start before `before_ms`; returns how many.
    async fn prune_buckets(&self, before_ms: u64) -> Result<u64>;

    /// The console's key named `name`, kept as `fresh` when there is none yet.
    async fn key(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>>;

    /// Records a minted embed token.
    async fn insert_embed_token(&self, token: &TokenSummary, audit: &NewAudit) -> Result<()>;

    /// Every embed token minted, newest first.
    async fn embed_tokens(&self) -> Result<Vec<TokenSummary>>;

    /// One embed token by id.
    async fn embed_token(&self, id: &str) -> Result<Option<TokenSummary>>;

    /// Revokes an embed token; false when there is no such active token.
    async fn revoke_embed_token(&self, id: &str, at_ms: u64, audit: &NewAudit) -> Result<bool>;

    /// Queues a job (its audit row gets the new id), or finds the pending or running job with
    /// the same idempotency key.
    async fn enqueue_job(
        &self,
        job: &NewJob,
        requested_by: &str,
        now_ms: u64,
        audit: &NewAudit,
    ) -> Result<Enqueued>;

    /// Atomically takes the most urgent ready job for `worker` until `lease_until_ms`, with at
    /// most `per_target` running per target, and records the attempt and its `job.start` audit
    /// row.
    async fn claim_job(
        &self,
        worker: &str,
        now_ms: u64,
        lease_until_ms: u64,
        per_target: u32,
    ) -> Result<Option<Claimed>>;

    /// Extends `worker`'s lease and saves progress; `Some(cancel_requested)` while it holds
    /// the job, `None` once it does not.
    async fn heartbeat_job(
        &self,
        id: i64,
        worker: &str,
        lease_until_ms: u64,
        progress: Option<&Progress>,
    ) -> Result<Option<bool>>;

    /// Ends `worker`'s attempt; false when it no longer held the job.
    async fn finish_job(
        &self,
        id: i64,
        worker: &str,
        outcome: &Outcome,
        now_ms: u64,
        audit: &NewAudit,
    ) -> Result<bool>;

    /// Requeues (or marks interrupted) running jobs whose lease ended before `now_ms`.
    async fn recover_expired_jobs(&self, now_ms: u64) -> Result<usize>;

    /// Cancels a pending job, or asks a running one to stop; the state after, or `None` when
    /// the job was already finished.
    async fn cancel_job(&self, id: i64, now_ms: u64, audit: &NewAudit) -> Result<Option<JobState>>;

    /// One job.
    async fn job(&self, id: i64) -> Result<Option<JobSummary>>;

    /// A page of jobs matching `filter`, newest first.
    async fn jobs(&self, filter: &JobFilter) -> Result<JobPage>;

    /// The pending and running jobs (at most `limit`): running first, then the next to run.
    async fn active_jobs(&self, limit: u32) -> Result<Vec<JobSummary>>;

    /// The attempts at job `id`, first first.
    async fn job_attempts(&self, id: i64) -> Result<Vec<Attempt>>;

    /// Removes finished jobs that finished before `before_ms`; returns how many.
    async fn prune_jobs(&self, before_ms: u64) -> Result<u64>;

    /// The alert episodes still firing, oldest first.
    async fn open_episodes(&self) -> Result<Vec<Episode>>;

    /// Records that an instance started firing and queues its `messages`, in one transaction;
    /// the new episode's id, or none (and nothing written) when one is already open for its key.
    async fn start_episode(
        &self,
        episode: &Episode,
        messages: &[Outgoing],
        now_ms: u64,
    ) -> Result<Option<i64>>;

    /// Closes episode `id` as resolved at `ended_ms` and queues `messages` for the webhooks that
    /// were sent its firing, in one transaction (nothing when it is already closed).
    async fn end_episode(
        &self,
        id: i64,
        ended_ms: u64,
        messages: &[Outgoing],
        now_ms: u64,
    ) -> Result<()>;

    /// Acknowledges the open episode of instance `key`; false when none is open.
    async fn ack_episode(&self, key: &str, ack: &Ack, audit: &NewAudit) -> Result<bool>;

    /// Alert episodes newest first, before episode `before_id` when given, at most `limit`.
    async fn episodes(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<Episode>>;

    /// Adds a silence (its `id` is ignored) and returns its number; the audit row names it.
    async fn insert_silence(&self, silence: &Silence, audit: &NewAudit) -> Result<i64>;

    /// Ends silence `id` early; false when there is no such active silence.
    async fn expire_silence(&self, id: i64, at_ms: u64, by: &str, audit: &NewAudit)
    -> Result<bool>;

    /// The silences that end (or were expired) at or after `since_ms`, newest first.
    async fn silences(&self, since_ms: u64) -> Result<Vec<Silence>>;

    /// Removes alert episodes (with their messages) that resolved before `before_ms`, and
    /// silences that ended before it; returns how many episodes went.
    async fn prune_alerts(&self, before_ms: u64) -> Result<u64>;

    /// Webhook `webhook`'s queued messages due at `now_ms`, in the order they were queued, at
    /// most `limit`.
    async fn due_notifications(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: u32,
    ) -> Result<Vec<Notification>>;

    /// Gives up every queued message to a webhook not in `configured` (one removed from the
    /// config), recording `error`; returns how many.
    async fn abandon_notifications(
        &self,
        configured: &[String],
        error: &str,
        now_ms: u64,
    ) -> Result<u64>;

    /// Marks message `id` delivered.
    async fn notification_sent(&self, id: i64, at_ms: u64) -> Result<()>;

    /// Records a failed attempt at message `id`: tried again at `retry_at`, or given up.
    async fn notification_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<u64>,
        now_ms: u64,
    ) -> Result<()>;
}

/// Opens the default store (SQLite under `data_dir`), applying migrations.
pub async fn open(data_dir: &Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::open(data_dir).await?))
}
