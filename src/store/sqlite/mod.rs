//! The embedded SQLite store.

mod access;
mod alerts;
mod embed;
mod history;
mod jobs;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{
    Bucket, Claim, Error, LiveSession, Lockout, NewAudit, NewSession, Notification, Outgoing,
    Result, Store, StoredUser,
};
use crate::access::{AuditFilter, AuditPage, Role, UserSummary};
use crate::alerts::{Ack, Episode, Silence};
use crate::embed::TokenSummary;
use crate::jobs::{
    Attempt, Claimed, Enqueued, JobFilter, JobPage, JobState, JobSummary, NewJob, Outcome, Progress,
};
use crate::status::now_ms;

/// The file name of the store inside the data directory.
pub const FILE_NAME: &str = "pitwall.db";

/// The console's store in a SQLite file (WAL mode, migrations applied at open).
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/pitwall.db` and applies pending migrations. The
    /// store holds password hashes and the embed signing key: a directory it creates is `0700`
    /// and the file (SQLite gives its WAL and shared-memory files the same mode) `0600`.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let file = data_dir.join(FILE_NAME);
        private_files(data_dir, &file).map_err(|source| Error::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // No cached statements: a cached statement is only reset when next used, and until
            // then it keeps its connection's WAL read snapshot open, so that pooled connection
            // would go on reading old rows (live job progress froze for seconds). Finalizing
            // each statement after use costs a re-prepare of microseconds.
            .statement_cache_capacity(0);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|conn, _| Box::pin(async move { Ok(!left_in_transaction(conn).await) }))
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Whether `conn` comes back to the pool inside a transaction, and so holding SQLite's write
/// lock: a write that failed on a full disk can leave one open (its COMMIT failed, and the
/// rollback sqlx queues at drop is refused), which would lock every other connection out until
/// this one is used again. Such a connection is closed instead of kept, which ends it.
async fn left_in_transaction(conn: &mut sqlx::SqliteConnection) -> bool {
    let Ok(mut handle) = conn.lock_handle().await else {
        return true;
    };
    // SAFETY: the locked handle gives exclusive access to a live connection for this call.
    let autocommit =
        unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
    if autocommit == 0 {
        tracing::warn!("a store connection came back inside a transaction: closed");
    }
    autocommit == 0
}

/// Creates `dir` (and missing parents) readable by the owner only, and `file` in it `0600`; an
/// existing store file that others may read is narrowed to `0600`.
fn private_files(dir: &Path, file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)?;
    let mode = opened.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}): narrowed to 0600",
            file.display(),
            mode & 0o777
        );
        opened.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn schema_version(&self) -> Result<i64> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?;
        Ok(version)
    }

    async fn count_users(&self) -> Result<u64> {
        access::count_users(&self.pool).await
    }

    async fn user(&self, username: &str) -> Result<Option<StoredUser>> {
        access::user(&self.pool, username).await
    }

    async fn list_users(&self, now_ms: u64) -> Result<Vec<UserSummary>> {
        access::list_users(&self.pool, now_ms).await
    }

    async fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        audit: &NewAudit,
    ) -> Result<bool> {
        access::insert_user(&self.pool, username, password_hash, role, audit).await
    }

    async fn update_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        role: Option<Role>,
        audit: &NewAudit,
    ) -> Result<bool> {
        access::update_user(&self.pool, username, password_hash, role, audit).await
    }

    async fn delete_user(&self, username: &str, audit: &NewAudit) -> Result<bool> {
        access::delete_user(&self.pool, username, audit).await
    }

    async fn claim_sign_in(
        &self,
        user_id: i64,
        client_addr: &str,
        now_ms: u64,
        rules: &Lockout,
    ) -> Result<Claim> {
        access::claim_sign_in(&self.pool, user_id, client_addr, now_ms, rules).await
    }

    async fn record_sign_in_failure(
        &self,
        user_id: Option<i64>,
        wait_until_ms: Option<u64>,
        audit: &NewAudit,
    ) -> Result<()> {
        access::record_sign_in_failure(&self.pool, user_id, wait_until_ms, audit).await
    }

    async fn unlock_user(&self, username: &str, audit: &NewAudit) -> Result<bool> {
        access::unlock_user(&self.pool, username, audit).await
    }

    async fn open_session(&self, session: &NewSession, audit: &NewAudit) -> Result<()> {
        access::open_session(&self.pool, session, audit).await
    }

    async fn session_user(
        &self,
        id_hash: &str,
        now_ms: u64,
        idle_ms: u64,
    ) -> Result<Option<LiveSession>> {
        access::session_user(&self.pool, id_hash, now_ms, idle_ms).await
    }

    async fn touch_session(&self, id_hash: &str, now_ms: u64, idle_ms: u64) -> Result<()> {
        access::touch_session(&self.pool, id_hash, now_ms, idle_ms).await
    }

    async fn live_sessions(
        &self,
        id_hashes: &[String],
        now_ms: u64,
        idle_ms: u64,
    ) -> Result<std::collections::HashSet<String>> {
        access::live_sessions(&self.pool, id_hashes, now_ms, idle_ms).await
    }

    async fn close_session(&self, id_hash: &str, audit: &NewAudit) -> Result<()> {
        access::close_session(&self.pool, id_hash, audit).await
    }

    async fn append_audit(&self, audit: &NewAudit) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        access::append(&mut conn, audit).await
    }

    async fn audit_page(&self, filter: &AuditFilter) -> Result<AuditPage> {
        access::audit_page(&self.pool, filter).await
    }

    async fn save_buckets(&self, buckets: &[Bucket]) -> Result<()> {
        history::save(&self.pool, buckets).await
    }

    async fn buckets(
        &self,
        series: &str,
        width_ms: u64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Bucket>> {
        history::load(&self.pool, series, width_ms, from_ms, to_ms).await
    }

    async fn all_buckets(&self, from_ms: u64, to_ms: u64) -> Result<Vec<Bucket>> {
        history::load_all(&self.pool, from_ms, to_ms).await
    }

    async fn prune_buckets(&self, before_ms: u64) -> Result<u64> {
        history::prune(&self.pool, before_ms).await
    }

    async fn key(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        embed::key(&self.pool, name, fresh, now_ms()).await
    }

    async fn insert_embed_token(&self, token: &TokenSummary, audit: &NewAudit) -> Result<()> {
        embed::insert(&self.pool, token, audit).await
    }

    async fn embed_tokens(&self) -> Result<Vec<TokenSummary>> {
        embed::list(&self.pool).await
    }

    async fn embed_token(&self, id: &str) -> Result<Option<TokenSummary>> {
        embed::get(&self.pool, id).await
    }

    async fn revoke_embed_token(&self, id: &str, at_ms: u64, audit: &NewAudit) -> Result<bool> {
        embed::revoke(&self.pool, id, at_ms, audit).await
    }

    async fn enqueue_job(
        &self,
        job: &NewJob,
        requested_by: &str,
        now_ms: u64,
        audit: &NewAudit,
    ) -> Result<Enqueued> {
        jobs::enqueue(&self.pool, job, requested_by, now_ms, audit).await
    }

    async fn claim_job(
        &self,
        worker: &str,
        now_ms: u64,
        lease_until_ms: u64,
        per_target: u32,
    ) -> Result<Option<Claimed>> {
        jobs::claim(&self.pool, worker, now_ms, lease_until_ms, per_target).await
    }

    async fn heartbeat_job(
        &self,
        id: i64,
        worker: &str,
        lease_until_ms: u64,
        progress: Option<&Progress>,
    ) -> Result<Option<bool>> {
        jobs::heartbeat(&self.pool, id, worker, lease_until_ms, progress).await
    }

    async fn finish_job(
        &self,
        id: i64,
        worker: &str,
        outcome: &Outcome,
        now_ms: u64,
        audit: &NewAudit,
    ) -> Result<bool> {
        jobs::finish(&self.pool, id, worker, outcome, now_ms, audit).await
    }

    async fn recover_expired_jobs(&self, now_ms: u64) -> Result<usize> {
        jobs::recover_expired(&self.pool, now_ms).await
    }

    async fn cancel_job(&self, id: i64, now_ms: u64, audit: &NewAudit) -> Result<Option<JobState>> {
        jobs::cancel(&self.pool, id, now_ms, audit).await
    }

    async fn job(&self, id: i64) -> Result<Option<JobSummary>> {
        jobs::get(&self.pool, id).await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<JobPage> {
        jobs::page(&self.pool, filter).await
    }

    async fn active_jobs(&self, limit: u32) -> Result<Vec<JobSummary>> {
        jobs::active(&self.pool, limit).await
    }

    async fn job_attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        jobs::attempts(&self.pool, id).await
    }

    async fn prune_jobs(&self, before_ms: u64) -> Result<u64> {
        jobs::prune(&self.pool, before_ms).await
    }

    async fn open_episodes(&self) -> Result<Vec<Episode>> {
        alerts::open_episodes(&self.pool).await
    }

    async fn start_episode(
        &self,
        episode: &Episode,
        messages: &[Outgoing],
        now_ms: u64,
    ) -> Result<Option<i64>> {
        alerts::start_episode(&self.pool, episode, messages, now_ms).await
    }

    async fn end_episode(
        &self,
        id: i64,
        ended_ms: u64,
        messages: &[Outgoing],
        now_ms: u64,
    ) -> Result<()> {
        alerts::end_episode(&self.pool, id, ended_ms, messages, now_ms).await
    }

    async fn ack_episode(&self, key: &str, ack: &Ack, audit: &NewAudit) -> Result<bool> {
        alerts::ack_episode(&self.pool, key, ack, audit).await
    }

    async fn episodes(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<Episode>> {
        alerts::episodes(&self.pool, before_id, limit).await
    }

    async fn insert_silence(&self, silence: &Silence, audit: &NewAudit) -> Result<i64> {
        alerts::insert_silence(&self.pool, silence, audit).await
    }

    async fn expire_silence(
        &self,
        id: i64,
        at_ms: u64,
        by: &str,
        audit: &NewAudit,
    ) -> Result<bool> {
        alerts::expire_silence(&self.pool, id, at_ms, by, audit).await
    }

    async fn silences(&self, since_ms: u64) -> Result<Vec<Silence>> {
        alerts::silences(&self.pool, since_ms).await
    }

    async fn prune_alerts(&self, before_ms: u64) -> Result<u64> {
        alerts::prune(&self.pool, before_ms).await
    }

    async fn due_notifications(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        alerts::due_notifications(&self.pool, webhook, now_ms, limit).await
    }

    async fn abandon_notifications(
        &self,
        configured: &[String],
        error: &str,
        now_ms: u64,
    ) -> Result<u64> {
        alerts::abandon_notifications(&self.pool, configured, error, now_ms).await
    }

    async fn notification_sent(&self, id: i64, at_ms: u64) -> Result<()> {
        alerts::notification_sent(&self.pool, id, at_ms).await
    }

    async fn notification_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<u64>,
        now_ms: u64,
    ) -> Result<()> {
        alerts::notification_failed(&self.pool, id, error, retry_at, now_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let store = SqliteStore::open(&data).await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 5);
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        for t in [
            "alert_episodes",
            "alert_notifications",
            "alert_silences",
            "audit_log",
            "console_keys",
            "embed_tokens",
            "job_attempts",
            "jobs",
            "metric_history",
            "sessions",
            "sign_in_failures",
            "users",
        ] {
            assert!(
                tables.iter().any(|n| n == t),
                "missing table {t}: {tables:?}"
            );
        }
        drop(store);
        assert!(data.join(FILE_NAME).exists());
        let again = SqliteStore::open(&data).await.unwrap();
        assert_eq!(again.schema_version().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn data_dir_and_store_files_are_private() {
        use std::os::unix::fs::PermissionsExt;

        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("made/data");
        let store = SqliteStore::open(&data).await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("made")), 0o700);
        for name in [FILE_NAME, "pitwall.db-wal", "pitwall.db-shm"] {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
        drop(store);
        // A store file left readable by others (an old version, a copy) is narrowed at open.
        std::fs::set_permissions(data.join(FILE_NAME), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        SqliteStore::open(&data).await.unwrap();
        assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
    }

    #[tokio::test]
    async fn unusable_data_dir_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = SqliteStore::open(&file.join("sub")).await.err().unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot create the data directory"),
            "{err}"
        );
        assert!(err.to_string().contains("a-file/sub"), "{err}");
    }
}
