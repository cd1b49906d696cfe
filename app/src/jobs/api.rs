//! Server functions of the Jobs pages. They check the role on the server and call the engine's
//! job queue; every change is audited there.

use leptos::prelude::*;
use pitwall::access::AuditRecord;
use pitwall::jobs::{Attempt, JobFilter, JobPage, JobSummary, Plan, Priority};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{actor, fail, require, service, store_failed};

/// Every job kind this console runs, with the role that may start it, by name.
#[server(endpoint = "job_kinds", input = leptos::server_fn::codec::GetUrl)]
pub async fn job_kinds() -> Result<Vec<(String, pitwall::access::Role)>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    let kinds = service::<pitwall::jobs::Kinds>()?;
    Ok(kinds
        .names()
        .into_iter()
        .filter_map(|n| Some((n.to_owned(), kinds.get(n)?.role())))
        .collect())
}

/// A job with everything its page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job.
    pub job: JobSummary,
    /// Its attempts, first first.
    pub attempts: Vec<Attempt>,
    /// Its audit trail, newest first.
    pub audit: Vec<AuditRecord>,
}

/// What to start: kind, target, parameters (JSON), priority and attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The kind, such as `noop`.
    pub kind: String,
    /// The target it works on, if any.
    pub target: Option<String>,
    /// Its parameters, a JSON object.
    pub parameters: String,
    /// How urgent.
    pub priority: Priority,
    /// Attempts allowed.
    pub max_attempts: u32,
}

#[cfg(feature = "ssr")]
fn from_jobs(e: pitwall::jobs::Error) -> AppError {
    use pitwall::jobs::Error as E;
    fail(match e {
        E::Invalid(m) => AppError::Invalid(m),
        E::NoSuchJob(_) | E::Finished(..) | E::Unconfirmed { .. } => {
            AppError::Invalid(e.to_string())
        }
        E::Forbidden(role) => AppError::Forbidden(role),
        E::Store(err) => store_failed(&err),
    })
}

#[cfg(feature = "ssr")]
fn jobs() -> Result<pitwall::jobs::Jobs, AppError> {
    service::<pitwall::jobs::Jobs>()
}

#[cfg(feature = "ssr")]
fn new_job(request: &JobRequest) -> Result<pitwall::jobs::NewJob, AppError> {
    let parameters: serde_json::Value = serde_json::from_str(&request.parameters).map_err(|e| {
        fail(AppError::Invalid(format!(
            "the parameters are not JSON: {e}"
        )))
    })?;
    if !parameters.is_object() {
        return Err(fail(AppError::Invalid(
            "the parameters must be a JSON object".into(),
        )));
    }
    Ok(pitwall::jobs::NewJob {
        target: request.target.clone().filter(|t| !t.is_empty()),
        priority: request.priority,
        max_attempts: request.max_attempts,
        ..pitwall::jobs::NewJob::new(&request.kind, parameters)
    })
}

/// What the job would do (dry run), for whoever may start it.
#[server(endpoint = "plan_job")]
pub async fn plan_job(request: JobRequest) -> Result<Plan, AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    let kinds = service::<pitwall::jobs::Kinds>()?;
    let (plan, _) = jobs()?
        .submit(&actor, &kinds, new_job(&request)?, None)
        .await
        .map_err(from_jobs)?;
    Ok(plan)
}

/// Plans and queues the job; `confirmation` must name the target when the job changes data.
/// Returns the job's id (that of the job already queued under the same key, if any).
#[server(endpoint = "start_job")]
pub async fn start_job(request: JobRequest, confirmation: String) -> Result<i64, AppError> {
    use pitwall::jobs::Enqueued;

    let actor = actor(pitwall::access::Role::Operator)?;
    let kinds = service::<pitwall::jobs::Kinds>()?;
    let (_, queued) = jobs()?
        .submit(&actor, &kinds, new_job(&request)?, Some(&confirmation))
        .await
        .map_err(from_jobs)?;
    match queued {
        Some(Enqueued::New(id) | Enqueued::Duplicate(id)) => Ok(id),
        None => Err(fail(AppError::Server("the job was not queued".into()))),
    }
}

/// The pending and running jobs now (the stream keeps them current afterwards).
#[server(endpoint = "active_jobs")]
pub async fn active_jobs() -> Result<Vec<JobSummary>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    Ok(service::<pitwall::jobs::ActiveJobs>()?
        .snapshot()
        .as_ref()
        .clone())
}

/// `filter` with `since` (`1h`, `24h`, `7d`; empty for any time) as a start time from now.
#[cfg(feature = "ssr")]
fn since(mut filter: JobFilter, since: &str) -> Result<JobFilter, AppError> {
    filter.since_ms = match since {
        "" => None,
        s => Some(pitwall::status::now_ms().saturating_sub(
            pitwall::format::parse_duration(s).ok_or_else(|| {
                fail(AppError::Invalid(format!(
                    "`since` must be a duration such as 1h, 24h or 7d, not `{s}`"
                )))
            })?,
        )),
    };
    Ok(filter)
}

/// A page of the job history, created within `since` (`1h`, `24h`, `7d`, or empty for any).
#[server(endpoint = "job_history")]
pub async fn job_history(filter: JobFilter, since: String) -> Result<JobPage, AppError> {
    require(pitwall::access::Role::Viewer)?;
    jobs()?
        .page(&self::since(filter, &since)?)
        .await
        .map_err(from_jobs)
}

/// How many of the jobs matching `filter` (within `since`) `action` applies to (operator).
#[server(endpoint = "bulk_preview")]
pub async fn bulk_preview(
    filter: JobFilter,
    since: String,
    action: String,
) -> Result<u32, AppError> {
    actor(pitwall::access::Role::Operator)?;
    let selected = jobs()?
        .select(&self::since(filter, &since)?, &action)
        .await
        .map_err(from_jobs)?;
    Ok(selected.len() as u32)
}

/// One job with its attempts and audit trail.
#[server(endpoint = "job_detail")]
pub async fn job_detail(id: i64) -> Result<JobView, AppError> {
    require(pitwall::access::Role::Viewer)?;
    let jobs = jobs()?;
    let job = jobs.job(id).await.map_err(from_jobs)?;
    let attempts = jobs.attempts(id).await.map_err(from_jobs)?;
    let audit = crate::error::ssr::access()?
        .audit(&pitwall::access::AuditFilter {
            object: Some(format!("job {id}")),
            limit: 200,
            ..Default::default()
        })
        .await
        .map_err(crate::error::ssr::from_access)?
        .rows;
    Ok(JobView {
        job,
        attempts,
        audit,
    })
}

/// Cancels a job (operator): a pending one at once, a running one at its next checkpoint.
#[server(endpoint = "cancel_job")]
pub async fn cancel_job(id: i64) -> Result<(), AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    jobs()?.cancel(&actor, id).await.map_err(from_jobs)?;
    Ok(())
}

/// What a retry of job `id` would do, planned again (the kind's role): the page shows it and
/// asks for the typed confirmation when it changes data.
#[server(endpoint = "plan_retry")]
pub async fn plan_retry(id: i64) -> Result<Plan, AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    let kinds = service::<pitwall::jobs::Kinds>()?;
    jobs()?
        .plan_retry(&actor, &kinds, id)
        .await
        .map_err(from_jobs)
}

/// Queues a dead, interrupted or cancelled job again, planned again, with the role its kind
/// needs; `confirmation` must name the target when the plan changes data. Returns the new job's
/// id (that of the job already queued under the same key, if any).
#[server(endpoint = "retry_job")]
pub async fn retry_job(id: i64, confirmation: Option<String>) -> Result<i64, AppError> {
    use pitwall::jobs::Enqueued;

    let actor = actor(pitwall::access::Role::Operator)?;
    let kinds = service::<pitwall::jobs::Kinds>()?;
    let (_, queued) = jobs()?
        .retry(&actor, &kinds, id, confirmation.as_deref())
        .await
        .map_err(from_jobs)?;
    match queued {
        Enqueued::New(new) | Enqueued::Duplicate(new) => Ok(new),
    }
}

/// Why none of `selected` is retried in bulk, if any of them cannot be: a kind whose role the
/// actor lacks (403), a plan that changes data (it needs its typed confirmation on the job's
/// page) or one that fails (422). Every job is planned before anything is queued.
#[cfg(feature = "ssr")]
async fn bulk_retry_refusal(
    jobs: &pitwall::jobs::Jobs,
    actor: &pitwall::access::Actor,
    selected: &[i64],
) -> Result<Option<AppError>, AppError> {
    use pitwall::jobs::Error as E;

    let kinds = service::<pitwall::jobs::Kinds>()?;
    let (mut denied, mut unconfirmed, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for &id in selected {
        match jobs.plan_retry(actor, &kinds, id).await {
            Ok(plan) if plan.destructive => unconfirmed.push(format!("#{id}")),
            Ok(_) => {}
            Err(E::Forbidden(role)) => denied.push(format!("#{id} ({role})")),
            Err(e @ (E::Invalid(_) | E::NoSuchJob(_))) => failed.push(format!("#{id}: {e}")),
            Err(e) => return Err(from_jobs(e)),
        }
    }
    let total = selected.len();
    Ok(if !denied.is_empty() {
        Some(AppError::Denied(format!(
            "None of the {total} jobs was retried: jobs {} need a role you do not have.",
            denied.join(", ")
        )))
    } else if !unconfirmed.is_empty() {
        Some(AppError::Invalid(format!(
            "None of the {total} jobs was retried: jobs {} change data; retry each on its own page, \
             where its plan asks for the typed confirmation.",
            unconfirmed.join(", ")
        )))
    } else if !failed.is_empty() {
        Some(AppError::Invalid(format!(
            "None of the {total} jobs was retried: {}",
            failed.join("; ")
        )))
    } else {
        None
    })
}

/// Cancels (`action` = `cancel`) or retries (`retry`) every job matching `filter` (created
/// within `since`) that can be,
/// at most 500 (operator). `confirmation` must be the number of jobs it applies to, as the page
/// showed it, so a selection that changed meanwhile is not acted on blindly. A retry is all or
/// nothing: when any job needs a role the actor lacks, changes data or no longer plans, none is
/// queued and the answer names them. Returns how many were cancelled or retried.
#[server(endpoint = "bulk_jobs")]
pub async fn bulk_jobs(
    filter: JobFilter,
    since: String,
    action: String,
    confirmation: String,
) -> Result<u32, AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    let jobs = jobs()?;
    let selected = jobs
        .select(&self::since(filter, &since)?, &action)
        .await
        .map_err(from_jobs)?;
    if confirmation.trim() != selected.len().to_string() {
        return Err(fail(AppError::Invalid(format!(
            "{} jobs match now: type {} to confirm",
            selected.len(),
            selected.len()
        ))));
    }
    let kinds = service::<pitwall::jobs::Kinds>()?;
    if action == "retry"
        && let Some(refusal) = bulk_retry_refusal(&jobs, &actor, &selected).await?
    {
        return Err(fail(refusal));
    }
    let mut done = 0;
    for id in selected {
        let result = match action.as_str() {
            "cancel" => jobs.cancel(&actor, id).await.map(|_| ()),
            _ => jobs.retry(&actor, &kinds, id, None).await.map(|_| ()),
        };
        match result {
            Ok(()) => done += 1,
            // Finished meanwhile: nothing to cancel any more.
            Err(pitwall::jobs::Error::Finished(..)) => {}
            Err(e) => return Err(from_jobs(e)),
        }
    }
    Ok(done)
}
