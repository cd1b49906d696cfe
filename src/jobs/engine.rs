//! `Jobs`: the durable queue on the console's store. Enqueue (with idempotency), claim under a
//! lease, heartbeat, finish with retry and backoff, recover jobs whose worker died, cancel, list,
//! and prune old history. Each transition is one store statement or transaction with its audit
//! row, so two workers (or two console processes on one store) never hold the same job.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Attempt, JobFilter, JobPage, JobState, JobSummary, Kinds, Plan, Priority, Progress};
use crate::access::{Actor, Role};
use crate::status::now_ms;
use crate::store::{self, NewAudit, Store};

/// Why a job operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable; the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The actor's role does not allow this.
    #[error("this needs the {0} role")]
    Forbidden(Role),
    /// No such job.
    #[error("no job with id {0}")]
    NoSuchJob(i64),
    /// The job is over; it cannot be cancelled.
    #[error("job {0} is already {1}")]
    Finished(i64, JobState),
    /// The plan changes data and the confirmation did not name what it works on.
    #[error("this job changes data: type `{expected}` to confirm it")]
    Unconfirmed {
        /// What to type: the target, or the kind when the job has none.
        expected: String,
        /// The plan that needs the confirmation.
        plan: Box<Plan>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its kind (a registered [`super::JobKind`]).
    pub kind: String,
    /// The target it works on: at most a set number of jobs run at once per target.
    pub target: Option<String>,
    /// How urgent.
    pub priority: Priority,
    /// What to do, as the kind reads it.
    pub parameters: serde_json::Value,
    /// While a job with this key is pending or running, another is refused.
    pub idempotency_key: Option<String>,
    /// Attempts allowed (at least 1).
    pub max_attempts: u32,
    /// Not before this time (Unix ms); now when `None`.
    pub run_at_ms: Option<u64>,
    /// The plan shown before confirmation, kept with the job.
    pub plan: Option<serde_json::Value>,
}

impl NewJob {
    /// A job of `kind` with `parameters`, normal priority, one attempt, to run now.
    pub fn new(kind: &str, parameters: serde_json::Value) -> Self {
        Self {
            kind: kind.to_owned(),
            target: None,
            priority: Priority::Normal,
            parameters,
            idempotency_key: None,
            max_attempts: 1,
            run_at_ms: None,
            plan: None,
        }
    }
}

/// What enqueueing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job with this id.
    New(i64),
    /// A job with the same idempotency key is pending or running already: this one.
    Duplicate(i64),
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its target.
    pub target: Option<String>,
    /// What to do.
    pub parameters: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Who asked for it.
    pub requested_by: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done, with its report.
    Succeeded(serde_json::Value),
    /// Stopped at a checkpoint after cancel was asked.
    Cancelled,
    /// Failed; retried at `retry_at_ms` if set, else dead-lettered.
    Failed {
        /// What went wrong.
        error: String,
        /// When to try again (Unix ms), if an attempt is left.
        retry_at_ms: Option<u64>,
    },
}

/// The wait before attempt `n + 1` after attempt `n` failed: `base × 2^(n-1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `attempt` (from 1).
    pub fn after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// The pending and running jobs, kept current by one task (see [`Jobs::watch_active`]).
#[derive(Clone)]
pub struct ActiveJobs {
    rx: watch::Receiver<Arc<Vec<JobSummary>>>,
    _task: Arc<AbortOnDrop>,
}

impl ActiveJobs {
    /// The jobs now.
    pub fn snapshot(&self) -> Arc<Vec<JobSummary>> {
        self.rx.borrow().clone()
    }

    /// Notified of every change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<JobSummary>>> {
        self.rx.clone()
    }
}

/// Stops the watching task with its last handle.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The job queue on the console's store.
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn Store>,
    backoff: Backoff,
}

fn audit(
    actor: &str,
    role: Option<Role>,
    action: &str,
    job: i64,
    target: Option<&str>,
    parameters: serde_json::Value,
) -> NewAudit {
    NewAudit {
        at_ms: now_ms(),
        actor: actor.to_owned(),
        role,
        action: action.to_owned(),
        target: target.map(str::to_owned),
        object: Some(format!("job {job}")),
        parameters,
        outcome: "ok".to_owned(),
        client_addr: None,
    }
}

impl Jobs {
    /// The queue on `store`, retrying failed attempts after `backoff`.
    pub fn new(store: Arc<dyn Store>, backoff: Backoff) -> Self {
        Self { store, backoff }
    }

    /// Enqueues `job` asked for by `actor` (audited as `job.enqueue`).
    pub async fn enqueue(&self, actor: &Actor, job: NewJob) -> Result<Enqueued> {
        if job.kind.is_empty() {
            return Err(Error::Invalid("a job needs a kind".into()));
        }
        if !(1..=100).contains(&job.max_attempts) {
            return Err(Error::Invalid(format!(
                "max_attempts must be between 1 and 100, not {}",
                job.max_attempts
            )));
        }
        let now = now_ms();
        let mut row = audit(
            &actor.name,
            Some(actor.role),
            "job.enqueue",
            0,
            job.target.as_deref(),
            serde_json::json!({
                "kind": job.kind,
                "priority": job.priority.as_str(),
                "parameters": job.parameters,
            }),
        );
        row.client_addr = actor.client_addr.clone();
        Ok(self.store.enqueue_job(&job, &actor.name, now, &row).await?)
    }

    /// Plans `job` with its kind and, if `confirmation` agrees with the plan, enqueues it with
    /// the plan kept beside it. A destructive plan must be confirmed by typing the name of what
    /// it works on (the target, or the kind when it has none); `None` only plans.
    pub async fn submit(
        &self,
        actor: &Actor,
        kinds: &Kinds,
        mut job: NewJob,
        confirmation: Option<&str>,
    ) -> Result<(Plan, Option<Enqueued>)> {
        let plan = self.prepare(actor, kinds, &mut job).await?;
        let Some(confirmation) = confirmation else {
            return Ok((plan, None));
        };
        let plan = confirmed(&job, plan, Some(confirmation))?;
        job.plan = Some(serde_json::to_value(&plan).expect("plans encode"));
        let enqueued = self.enqueue(actor, job).await?;
        Ok((plan, Some(enqueued)))
    }

    /// Checks that `actor` may run `job`'s kind, plans it and gives it the kind's idempotency
    /// key: what [`Jobs::submit`] and [`Jobs::retry`] both do before anything is queued.
    async fn prepare(&self, actor: &Actor, kinds: &Kinds, job: &mut NewJob) -> Result<Plan> {
        let kind = kinds.get(&job.kind).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown job kind `{}`: this console runs {}",
                job.kind,
                kinds.names().join(", ")
            ))
        })?;
        if !actor.role.allows(kind.role()) {
            return Err(Error::Forbidden(kind.role()));
        }
        let plan = kind
            .plan(job.target.as_deref(), &job.parameters)
            .await
            .map_err(Error::Invalid)?;
        if job.idempotency_key.is_none() {
            job.idempotency_key = kind.key(job.target.as_deref(), &job.parameters);
        }
        Ok(plan)
    }

    /// Plans job `id` again for a retry, as [`Jobs::retry`] would, without queueing anything:
    /// what the page shows before the retry is confirmed.
    pub async fn plan_retry(&self, actor: &Actor, kinds: &Kinds, id: i64) -> Result<Plan> {
        let mut job = self.retried(actor, id).await?;
        self.prepare(actor, kinds, &mut job).await
    }

    /// Queues job `id` again as a new job with the same kind, target, priority and parameters
    /// (the original stays in the history), exactly as [`Jobs::submit`] would: the kind's role,
    /// a new plan, its idempotency key (a job with the same key pending or running is the
    /// answer, a duplicate), and, when the plan changes data, `confirmation` naming what it works
    /// on ([`Error::Unconfirmed`] otherwise, nothing queued).
    pub async fn retry(
        &self,
        actor: &Actor,
        kinds: &Kinds,
        id: i64,
        confirmation: Option<&str>,
    ) -> Result<(Plan, Enqueued)> {
        let mut job = self.retried(actor, id).await?;
        let plan = self.prepare(actor, kinds, &mut job).await?;
        let plan = confirmed(&job, plan, confirmation)?;
        job.plan = Some(serde_json::to_value(&plan).expect("plans encode"));
        let enqueued = self.enqueue(actor, job).await?;
        Ok((plan, enqueued))
    }

    /// The job a retry of `id` queues, once `id` is known to be over without success.
    async fn retried(&self, actor: &Actor, id: i64) -> Result<NewJob> {
        if !actor.role.allows(Role::Operator) {
            return Err(Error::Forbidden(Role::Operator));
        }
        let old = self.job(id).await?;
        if !retryable(old.state) {
            return Err(Error::Invalid(format!(
                "job {id} is {}: only dead, interrupted or cancelled jobs can be retried",
                old.state
            )));
        }
        Ok(NewJob {
            kind: old.kind,
            target: old.target,
            priority: old.priority,
            parameters: old.parameters,
            idempotency_key: None,
            max_attempts: old.max_attempts,
            run_at_ms: None,
            plan: None,
        })
    }

    /// Claims the most urgent ready job for `worker` under a lease of `lease`, keeping at most
    /// `per_target` jobs running on one target. `None` when nothing is ready.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        per_target: u32,
    ) -> Result<Option<Claimed>> {
        let now = now_ms();
        Ok(self
            .store
            .claim_job(worker, now, now + lease.as_millis() as u64, per_target)
            .await?)
    }

    /// Renews `worker`'s lease on job `id` until now + `lease`, saving `progress`. Returns
    /// `Some(cancel_requested)`, or `None` when the worker no longer holds the job.
    pub async fn heartbeat(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: Option<&Progress>,
    ) -> Result<Option<bool>> {
        let until = now_ms() + lease.as_millis() as u64;
        Ok(self
            .store
            .heartbeat_job(id, worker, until, progress)
            .await?)
    }

    /// Ends `worker`'s attempt on `job` with `outcome`; a failure with attempts left goes back
    /// to the queue after the backoff. False when the worker no longer held the job.
    pub async fn finish(&self, job: &Claimed, worker: &str, outcome: Outcome) -> Result<bool> {
        let outcome = match outcome {
            Outcome::Failed { error, .. } => Outcome::Failed {
                retry_at_ms: (job.attempt < job.max_attempts)
                    .then(|| now_ms() + self.backoff.after(job.attempt).as_millis() as u64),
                error,
            },
            other => other,
        };
        let (action, parameters) = match &outcome {
            Outcome::Succeeded(_) => ("job.succeed", serde_json::json!({ "attempt": job.attempt })),
            Outcome::Cancelled => (
                "job.cancelled",
                serde_json::json!({ "attempt": job.attempt }),
            ),
            Outcome::Failed {
                error,
                retry_at_ms: Some(at),
            } => (
                "job.retry",
                serde_json::json!({ "attempt": job.attempt, "error": error, "retry_at": crate::format_utc(*at) }),
            ),
            Outcome::Failed { error, .. } => (
                "job.dead",
                serde_json::json!({ "attempt": job.attempt, "error": error }),
            ),
        };
        let row = audit(
            &job.requested_by,
            None,
            action,
            job.id,
            job.target.as_deref(),
            parameters,
        );
        Ok(self
            .store
            .finish_job(job.id, worker, &outcome, now_ms(), &row)
            .await?)
    }

    /// Returns running jobs whose lease ran out (their worker or console died) to the queue, or
    /// marks them interrupted when no attempt is left. Returns how many it found.
    pub async fn recover_expired(&self) -> Result<usize> {
        Ok(self.store.recover_expired_jobs(now_ms()).await?)
    }

    /// Cancels job `id` (operator): a pending job at once, a running one at its next checkpoint.
    /// Returns the state it is in now.
    pub async fn cancel(&self, actor: &Actor, id: i64) -> Result<JobState> {
        if !actor.role.allows(Role::Operator) {
            return Err(Error::Forbidden(Role::Operator));
        }
        let Some(job) = self.store.job(id).await? else {
            return Err(Error::NoSuchJob(id));
        };
        if job.state.is_finished() {
            return Err(Error::Finished(id, job.state));
        }
        let mut row = audit(
            &actor.name,
            Some(actor.role),
            "job.cancel",
            id,
            job.target.as_deref(),
            serde_json::json!({ "state": job.state.as_str() }),
        );
        row.client_addr = actor.client_addr.clone();
        match self.store.cancel_job(id, now_ms(), &row).await? {
            Some(state) => Ok(state),
            // It finished between the read and the cancel.
            None => {
                let state = self.store.job(id).await?.map_or(job.state, |j| j.state);
                Err(Error::Finished(id, state))
            }
        }
    }

    /// One job.
    pub async fn job(&self, id: i64) -> Result<JobSummary> {
        self.store.job(id).await?.ok_or(Error::NoSuchJob(id))
    }

    /// The newest jobs (at most `limit`, capped at 200), optionally in one state.
    pub async fn list(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobSummary>> {
        let filter = JobFilter {
            state,
            limit,
            ..Default::default()
        };
        Ok(self.store.jobs(&filter).await?.rows)
    }

    /// A page of jobs matching `filter`, newest first.
    pub async fn page(&self, filter: &JobFilter) -> Result<JobPage> {
        Ok(self.store.jobs(filter).await?)
    }

    /// The ids of the jobs matching `filter` that `action` (`cancel` or `retry`) applies to:
    /// pending or running ones to cancel; dead, interrupted or cancelled ones to retry. At
    /// most 500, newest first.
    pub async fn select(&self, filter: &JobFilter, action: &str) -> Result<Vec<i64>> {
        let applies: fn(JobState) -> bool = match action {
            "cancel" => |s| !s.is_finished(),
            "retry" => retryable,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown bulk action `{action}`: use cancel or retry"
                )));
            }
        };
        let mut filter = JobFilter {
            limit: 200,
            before_id: None,
            ..filter.clone()
        };
        let mut ids = Vec::new();
        loop {
            let page = self.store.jobs(&filter).await?;
            ids.extend(page.rows.iter().filter(|j| applies(j.state)).map(|j| j.id));
            match page.next_before_id {
                Some(next) if ids.len() < 500 => filter.before_id = Some(next),
                _ => break,
            }
        }
        ids.truncate(500);
        Ok(ids)
    }

    /// The attempts at job `id`.
    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        Ok(self.store.job_attempts(id).await?)
    }

    /// Watches the pending and running jobs (at most 100, the next to run first), read every
    /// `every` and published when they change: one reader for every open page, whatever
    /// console runs the jobs.
    pub fn watch_active(&self, every: Duration) -> ActiveJobs {
        let (tx, rx) = watch::channel(Arc::new(Vec::new()));
        let store = self.store.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store.active_jobs(100).await {
                    Ok(list) => {
                        tx.send_if_modified(|current| {
                            let changed = **current != list;
                            if changed {
                                *current = Arc::new(list);
                            }
                            changed
                        });
                    }
                    Err(e) => tracing::warn!("reading active jobs: {e}"),
                }
            }
        });
        ActiveJobs {
            rx,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Removes finished jobs that finished before `before_ms`; returns how many.
    pub async fn prune(&self, before_ms: u64) -> Result<u64> {
        Ok(self.store.prune_jobs(before_ms).await?)
    }
}

/// Whether a job in `state` can be queued again.
fn retryable(state: JobState) -> bool {
    matches!(
        state,
        JobState::Dead | JobState::Interrupted | JobState::Cancelled
    )
}

/// `plan` when it changes nothing or `confirmation` names what `job` works on (the target, or the
/// kind when it has none).
fn confirmed(job: &NewJob, plan: Plan, confirmation: Option<&str>) -> Result<Plan> {
    let expected = job.target.clone().unwrap_or_else(|| job.kind.clone());
    if plan.destructive && confirmation.map(str::trim) != Some(expected.as_str()) {
        return Err(Error::Unconfirmed {
            expected,
            plan: Box::new(plan),
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_limit() {
        let b = Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=6).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(b.after(100), Duration::from_secs(60));
    }
}
