//! The job contract and the workers that run jobs: a kind plans (dry run) and runs; while it runs
//! it reports progress at checkpoints, where a cancel takes effect; a heartbeat keeps its lease,
//! and a worker that loses the lease stops the job at once (another worker now owns it).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Claimed, Jobs, Outcome, Plan, Progress};

/// Why an attempt ended without success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Cancel was asked; the job stopped at a safe point.
    #[error("cancelled")]
    Cancelled,
    /// It failed; retried while attempts are left.
    #[error("{0}")]
    Failed(String),
}

/// A kind of job: the no-op demo kind, cache warming, tag invalidation, index creation, VACUUM.
#[async_trait::async_trait]
pub trait JobKind: Send + Sync + 'static {
    /// Its name, as jobs store it.
    fn name(&self) -> &'static str;

    /// The role that may start it (operators warm and invalidate caches; only admins build
    /// indexes or vacuum).
    fn role(&self) -> crate::access::Role {
        crate::access::Role::Operator
    }

    /// What running it on `target` with `parameters` would do, without doing any of it; the
    /// refusal names what is wrong.
    async fn plan(
        &self,
        target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String>;

    /// The key that keeps two of its jobs from being queued or run at once on the same object
    /// (such as `vacuum:{target}:{table}`); `None` lets any number run.
    fn key(&self, _target: Option<&str>, _parameters: &serde_json::Value) -> Option<String> {
        None
    }

    /// Does the work, calling [`JobContext::checkpoint`] at every safe point; returns the
    /// outcome report.
    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError>;
}

/// The job kinds a console knows, by name.
#[derive(Clone, Default)]
pub struct Kinds(Arc<HashMap<&'static str, Arc<dyn JobKind>>>);

impl Kinds {
    /// These kinds.
    pub fn new(kinds: Vec<Arc<dyn JobKind>>) -> Self {
        Self(Arc::new(kinds.into_iter().map(|k| (k.name(), k)).collect()))
    }

    /// The kind named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn JobKind>> {
        self.0.get(name).cloned()
    }

    /// Every kind's name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.0.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

/// How often progress is written to the store at most (the last checkpoint always is).
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// A running job's link to the engine.
pub struct JobContext {
    jobs: Jobs,
    job: Claimed,
    worker: String,
    lease: Duration,
    cancel: Arc<AtomicBool>,
    started: Instant,
    saved_at: Option<Instant>,
}

/// What a checkpoint reports.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Units done.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// What it is doing now.
    pub phase: String,
}

impl JobContext {
    /// The job being run.
    pub fn job(&self) -> &Claimed {
        &self.job
    }

    /// Records progress (rate and ETA derived) and stops the job here if cancel was asked.
    pub async fn checkpoint(&mut self, at: Checkpoint) -> Result<(), JobError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(JobError::Cancelled);
        }
        let finished = at.total.is_some_and(|t| at.done >= t);
        if finished || self.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            let secs = self.started.elapsed().as_secs_f64();
            let rate = (secs > 0.0).then(|| at.done as f64 / secs);
            let progress = Progress {
                done: at.done,
                total: at.total,
                phase: at.phase,
                rate_per_sec: rate,
                eta_secs: match (at.total, rate) {
                    (Some(t), Some(r)) if r > 0.0 => {
                        Some((t.saturating_sub(at.done) as f64 / r) as u64)
                    }
                    _ => None,
                },
            };
            self.saved_at = Some(Instant::now());
            match self
                .jobs
                .heartbeat(self.job.id, &self.worker, self.lease, Some(&progress))
                .await
            {
                Ok(Some(true)) => self.cancel.store(true, Ordering::Relaxed),
                Ok(Some(false)) => {}
                // The lease is gone: stop here; the heartbeat task aborts the attempt too.
                Ok(None) => return Err(JobError::Cancelled),
                Err(e) => tracing::warn!(job = self.job.id, "saving progress: {e}"),
            }
            if self.cancel.load(Ordering::Relaxed) {
                return Err(JobError::Cancelled);
            }
        }
        Ok(())
    }
}

/// How the workers run.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// A name for this process's workers (in leases and the audit log).
    pub name: String,
    /// Jobs run at once by this process.
    pub workers: usize,
    /// How long a lease lasts without a heartbeat (heartbeats come every third of it).
    pub lease: Duration,
    /// How long an idle worker waits before looking again.
    pub poll: Duration,
    /// Jobs running at once on one target, across all processes.
    pub per_target: u32,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            name: format!("pitwall-{}", std::process::id()),
            workers: 2,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            per_target: 1,
        }
    }
}

/// This process's workers; they stop when it is dropped or [`Runner::stop`]ped.
pub struct Runner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Starts `settings.workers` workers running the `kinds` given.
    pub fn spawn(jobs: Jobs, kinds: Kinds, settings: RunnerSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..settings.workers)
            .map(|n| {
                let worker = Worker {
                    id: format!("{}:{n}", settings.name),
                    jobs: jobs.clone(),
                    kinds: kinds.clone(),
                    settings: settings.clone(),
                };
                tokio::spawn(worker.run(stopped.clone()))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops taking jobs and ends the running ones where they are; their leases run out and
    /// another worker (or this console after a restart) takes them up again.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Worker {
    id: String,
    jobs: Jobs,
    kinds: Kinds,
    settings: RunnerSettings,
}

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut recovered_at: Option<Instant> = None;
        while !*stopped.borrow() {
            if recovered_at.is_none_or(|t| t.elapsed() >= self.settings.lease / 2) {
                recovered_at = Some(Instant::now());
                match self.jobs.recover_expired().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(worker = %self.id, "took back {n} job(s) whose lease ran out")
                    }
                    Err(e) => tracing::warn!(worker = %self.id, "recovering jobs: {e}"),
                }
            }
            match self
                .jobs
                .claim(&self.id, self.settings.lease, self.settings.per_target)
                .await
            {
                Ok(Some(job)) => self.attempt(job).await,
                Ok(None) => {
                    let _ = tokio::time::timeout(self.settings.poll, stopped.changed()).await;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.id, "claiming a job: {e}");
                    let _ = tokio::time::timeout(self.settings.poll, stopped.changed()).await;
                }
            }
        }
    }

    async fn attempt(&self, job: Claimed) {
        let Some(kind) = self.kinds.get(&job.kind) else {
            let error = format!("no worker knows the job kind `{}`", job.kind);
            let _ = self
                .jobs
                .finish(
                    &job,
                    &self.id,
                    Outcome::Failed {
                        error,
                        retry_at_ms: None,
                    },
                )
                .await;
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let (lost_tx, mut lost) = watch::channel(false);
        let heartbeat = tokio::spawn({
            let (jobs, id, worker, lease, cancel) = (
                self.jobs.clone(),
                job.id,
                self.id.clone(),
                self.settings.lease,
                cancel.clone(),
            );
            async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match jobs.heartbeat(id, &worker, lease, None).await {
                        Ok(Some(asked)) => {
                            if asked {
                                cancel.store(true, Ordering::Relaxed);
                            }
                        }
                        Ok(None) => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(e) => tracing::warn!(job = id, "heartbeat: {e}"),
                    }
                }
            }
        });
        let mut ctx = JobContext {
            jobs: self.jobs.clone(),
            job: job.clone(),
            worker: self.id.clone(),
            lease: self.settings.lease,
            cancel,
            started: Instant::now(),
            saved_at: None,
        };
        let parameters = job.parameters.clone();
        let result = tokio::select! {
            r = kind.run(&mut ctx, &parameters) => Some(r),
            _ = lost.wait_for(|l| *l) => None,
        };
        heartbeat.abort();
        let outcome = match result {
            None => {
                tracing::warn!(job = job.id, worker = %self.id, "lost the lease; stopped the job");
                return;
            }
            Some(Ok(report)) => Outcome::Succeeded(report),
            Some(Err(JobError::Cancelled)) => Outcome::Cancelled,
            Some(Err(JobError::Failed(error))) => Outcome::Failed {
                error,
                retry_at_ms: None,
            },
        };
        if let Err(e) = self.jobs.finish(&job, &self.id, outcome).await {
            tracing::error!(job = job.id, "finishing: {e}");
        }
    }
}
