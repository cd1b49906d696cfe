//! Job engine throughput on the SQLite store: jobs per second through enqueue → claim →
//! complete with 1 and with 4 workers, against enqueueing alone measured in the same run.
//!
//! `cargo bench -p pitwall --bench jobs -- 2000` (the argument is the number of jobs per run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pitwall::access::{Actor, Role};
use pitwall::jobs::{
    Backoff, JobContext, JobError, JobKind, JobState, Jobs, Kinds, NewJob, Plan, Runner,
    RunnerSettings,
};
use pitwall::store::{SqliteStore, Store};

/// A job that does nothing but pass one checkpoint.
struct Empty;

#[async_trait::async_trait]
impl JobKind for Empty {
    fn name(&self) -> &'static str {
        "empty"
    }

    async fn plan(&self, _: Option<&str>, _: &serde_json::Value) -> Result<Plan, String> {
        Err("not planned".into())
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        _: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        ctx.checkpoint(Default::default()).await?;
        Ok(serde_json::Value::Null)
    }
}

async fn enqueue(jobs: &Jobs, n: usize) -> Duration {
    let actor = Actor {
        name: "bench".into(),
        role: Role::Admin,
        client_addr: None,
    };
    let started = Instant::now();
    for i in 0..n {
        jobs.enqueue(&actor, NewJob::new("empty", serde_json::json!({ "i": i })))
            .await
            .unwrap();
    }
    started.elapsed()
}

/// Enqueues `n` jobs, then runs them with `workers` workers; returns (enqueue, run) times.
async fn run(n: usize, workers: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let enqueued = enqueue(&jobs, n).await;
    let started = Instant::now();
    let runner = Runner::spawn(
        jobs.clone(),
        Kinds::new(vec![Arc::new(Empty)]),
        RunnerSettings {
            name: "bench".into(),
            workers,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(5),
            per_target: 1,
        },
    );
    loop {
        let left = jobs.list(Some(JobState::Pending), 1).await.unwrap().len()
            + jobs.list(Some(JobState::Running), 1).await.unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    runner.stop().await;
    (enqueued, elapsed)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    println!("job engine, SQLite store (WAL), {n} jobs per run");
    let (enqueue_1, run_1) = run(n, 1).await;
    let (enqueue_4, run_4) = run(n, 4).await;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let baseline = rate(enqueue_1).max(rate(enqueue_4));
    println!(
        "enqueue alone (baseline):          {:>8.0} jobs/s",
        baseline
    );
    for (workers, d) in [(1, run_1), (4, run_4)] {
        println!(
            "claim → run → complete, {workers} worker(s): {:>8.0} jobs/s  ({:.2} × enqueue)",
            rate(d),
            rate(d) / baseline
        );
    }
}
