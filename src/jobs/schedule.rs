//! Jobs that run on a schedule as well as on demand (a warming recipe's `every_secs`): each entry
//! is submitted every interval, the first time one interval after start, as the `schedule`
//! actor. The kind's idempotency key keeps a run from being queued while the previous one is
//! still queued or running, so a slow run is never doubled.

use std::time::Duration;

use super::{Enqueued, Jobs, Kinds, NewJob};
use crate::access::{Actor, Role};

/// A job submitted every `every`.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The job (kind, target, parameters).
    pub job: NewJob,
    /// How often.
    pub every: Duration,
}

/// Submits each entry on its schedule until aborted.
pub async fn run(jobs: Jobs, kinds: Kinds, entries: Vec<Scheduled>) {
    let actor = Actor {
        name: "schedule".into(),
        role: Role::Admin,
        client_addr: None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for entry in entries {
        let (jobs, kinds, actor) = (jobs.clone(), kinds.clone(), actor.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval_at(
                tokio::time::Instant::now() + entry.every,
                entry.every,
            );
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let confirm = entry.job.target.clone().unwrap_or_default();
                match jobs
                    .submit(&actor, &kinds, entry.job.clone(), Some(&confirm))
                    .await
                {
                    Ok((_, Some(Enqueued::New(id)))) => {
                        tracing::info!(kind = %entry.job.kind, id, "scheduled job queued")
                    }
                    Ok(_) => tracing::debug!(kind = %entry.job.kind, "scheduled job still queued or running"),
                    Err(e) => tracing::warn!(kind = %entry.job.kind, "scheduled job not queued: {e}"),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
