//! What the engine's integration tests share.

use std::time::{Duration, Instant};

use pitwall::jobs::Jobs;

/// Waits until job `id` reports at least `done` units of progress (30 s at most).
pub async fn until_progress(jobs: &Jobs, id: i64, done: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = jobs.job(id).await.unwrap();
        if job.progress.as_ref().is_some_and(|p| p.done >= done) {
            return;
        }
        assert!(Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
