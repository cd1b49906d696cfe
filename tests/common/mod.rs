//! What the engine's integration tests share.

use std::time::{Duration, Instant};

use pitwall::jobs::{JobState, JobSummary, Jobs};

/// Reads job `id` every 5 ms until `wanted` holds of it and returns it; fails when `within`
/// runs out or the job finishes without it.
pub async fn until_job(
    jobs: &Jobs,
    id: i64,
    within: Duration,
    mut wanted: impl FnMut(&JobSummary) -> bool,
) -> JobSummary {
    let deadline = Instant::now() + within;
    loop {
        let job = jobs.job(id).await.unwrap();
        if wanted(&job) {
            return job;
        }
        assert!(
            !job.state.is_finished() && Instant::now() < deadline,
            "job {id} is {} and not yet as wanted: {job:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until job `id` is in `state` (two minutes at most).
#[allow(
    dead_code,
    reason = "each test crate uses its own share of these helpers"
)]
pub async fn until_state(jobs: &Jobs, id: i64, state: JobState) -> JobSummary {
    until_job(jobs, id, Duration::from_secs(120), |j| j.state == state).await
}

/// Waits until job `id` is over, however it ended (two minutes at most).
#[allow(
    dead_code,
    reason = "each test crate uses its own share of these helpers"
)]
pub async fn until_finished(jobs: &Jobs, id: i64) -> JobSummary {
    until_job(jobs, id, Duration::from_secs(120), |j| {
        j.state.is_finished()
    })
    .await
}

/// Waits until job `id` reports at least `done` units of progress (30 s at most).
#[allow(
    dead_code,
    reason = "each test crate uses its own share of these helpers"
)]
pub async fn until_progress(jobs: &Jobs, id: i64, done: u64) {
    until_job(jobs, id, Duration::from_secs(30), |j| {
        j.progress.as_ref().is_some_and(|p| p.done >= done)
    })
    .await;
}
