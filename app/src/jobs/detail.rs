//! `/jobs/{id}`: one job: parameters, plan, progress, attempts, errors, report and audit trail,
//! with cancel and retry (planned again first, and confirmed by typing the target's name when
//! the plan changes data). While the job is active it follows the tab's stream.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use pitwall::access::Role;
use pitwall::format_utc;
use pitwall::jobs::JobState;

use super::active::progress_text;
use super::api::{CancelJob, JobView, PlanRetry, RetryJob, job_detail};
use super::plan::{ConfirmField, PlanSteps};
use crate::access::{AuditTable, Session, missing_role};
use crate::components::{Col, Columns};
use crate::live::LiveJobs;

/// The job page.
#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()));
    let live = LiveJobs::get();
    let cancel = ServerAction::<CancelJob>::new();
    let plan = ServerAction::<PlanRetry>::new();
    let retry = ServerAction::<RetryJob>::new();
    // Reloaded whenever the job's live entry changes (progress, state) and after an action; and
    // every 2 s while it is unfinished, for a job that starts and ends between two events of
    // the stream (it never shows in the live list, so its entry never changes).
    let tick = RwSignal::new(0u64);
    let detail = Resource::new(
        move || {
            let id = id();
            let entry = live.0.with(|l| {
                l.as_ref()
                    .and_then(|l| l.iter().find(|j| Some(j.id) == id).cloned())
            });
            (id, entry, cancel.version().get(), tick.get())
        },
        |(id, _, _, _)| async move {
            match id {
                Some(id) => job_detail(id).await,
                None => Err(crate::error::AppError::Invalid("not a job id".into())),
            }
        },
    );
    #[cfg(feature = "hydrate")]
    if let Ok(h) = set_interval_with_handle(
        move || {
            let unfinished = detail
                .get_untracked()
                .is_some_and(|r| r.is_ok_and(|d| !d.job.state.is_finished()));
            if unfinished {
                tick.update(|t| *t += 1);
            }
        },
        std::time::Duration::from_secs(2),
    ) {
        on_cleanup(move || h.clear());
    }
    let session = Session::get();
    view! {
        <Transition fallback=|| view! { <p>"Loading the job…"</p> }>
            {move || Suspend::new(async move {
                let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Operator);
                match detail.await {
                    Ok(d) => view! { <Detail d denied cancel plan retry/> }.into_any(),
                    Err(e) => view! {
                        <Title text="Job"/>
                        <h1>"Job"</h1>
                        <p role="alert" class="error">{e.to_string()}</p>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Detail(
    d: JobView,
    denied: Option<String>,
    cancel: ServerAction<CancelJob>,
    plan: ServerAction<PlanRetry>,
    retry: ServerAction<RetryJob>,
) -> impl IntoView {
    let j = d.job;
    let id = j.id;
    let title = format!("Job {id} · {}", j.kind);
    let can_cancel = !j.state.is_finished() && !j.cancel_requested;
    let can_retry = matches!(
        j.state,
        JobState::Dead | JobState::Interrupted | JobState::Cancelled
    );
    let state = if j.cancel_requested && !j.state.is_finished() {
        "cancelling".to_owned()
    } else {
        j.state.to_string()
    };
    // What a retry that changes data is confirmed with.
    let expected = j.target.clone().unwrap_or_else(|| j.kind.clone());
    let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    view! {
        <Title text=title.clone()/>
        <h1>{title}</h1>
        <p><a href="/jobs">"All jobs"</a></p>
        <dl class="facts" aria-label="Job">
            <dt>"State"</dt><dd data-state=j.state.as_str()>{state}</dd>
            <dt>"Progress"</dt><dd>{progress_text(&j)}</dd>
            <dt>"Target"</dt><dd>{j.target.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Priority"</dt><dd>{j.priority.as_str()}</dd>
            <dt>"Attempts"</dt><dd>{format!("{} of {}", j.attempts, j.max_attempts)}</dd>
            <dt>"Requested by"</dt><dd>{j.requested_by.clone()}</dd>
            <dt>"Created"</dt><dd>{format_utc(j.created_at_ms)}</dd>
            <dt>"Runs at"</dt><dd>{format_utc(j.run_at_ms)}</dd>
            <dt>"Finished"</dt><dd>{j.finished_at_ms.map(format_utc).unwrap_or_else(|| "—".into())}</dd>
            <dt>"Last error"</dt><dd class="error">{j.last_error.clone().unwrap_or_else(|| "—".into())}</dd>
        </dl>
        <div class="row">
            <button type="button" class="danger" disabled=denied.is_some() || !can_cancel title=denied.clone().unwrap_or_default()
                on:click=move |_| { cancel.dispatch(CancelJob { id }); }>"Cancel job"</button>
            <button type="button" disabled=denied.is_some() || !can_retry title=denied.clone().unwrap_or_default()
                on:click=move |_| { retry.value().set(None); plan.dispatch(PlanRetry { id }); }>"Retry job"</button>
        </div>
        {move || plan.value().get().map(|r| match r {
            Ok(p) => view! { <RetryPlan id plan=p expected=expected.clone() retry/> }.into_any(),
            Err(e) => view! { <p role="alert" class="error">{format!("Retrying failed: {e}")}</p> }.into_any(),
        })}
        {move || cancel.value().get().and_then(Result::err).map(|e| view! { <p role="alert" class="error">{format!("Cancelling failed: {e}")}</p> })}
        {move || retry.value().get().map(|r| match r {
            Ok(new) => view! { <p role="status" class="notice">"Queued again as job " <a href=format!("/jobs/{new}")>{new}</a> "."</p> }.into_any(),
            Err(e) => view! { <p role="alert" class="error">{format!("Retrying failed: {e}")}</p> }.into_any(),
        })}
        <section aria-labelledby="parameters-heading" class="card">
            <h2 id="parameters-heading">"Parameters"</h2>
            <pre>{json(&j.parameters)}</pre>
            {j.plan.as_ref().map(|p| view! { <h3>"Plan"</h3> <pre>{json(p)}</pre> })}
            {j.report.as_ref().map(|r| view! { <h3>"Report"</h3> <pre>{json(r)}</pre> })}
        </section>
        <section aria-labelledby="attempts-heading" class="card">
            <h2 id="attempts-heading">"Attempts"</h2>
            <table aria-label="Attempts">
                <Columns of=&[
                    Col::Text("Attempt"), Col::Text("Worker"), Col::Text("Started"),
                    Col::Text("Finished"), Col::Text("Outcome"), Col::Text("Error"),
                ] />
                <tbody>
                    {d.attempts.into_iter().map(|a| view! {
                        <tr>
                            <th scope="row">{a.attempt}</th>
                            <td><code>{a.worker}</code></td>
                            <td>{format_utc(a.started_at_ms)}</td>
                            <td>{a.finished_at_ms.map(format_utc).unwrap_or_else(|| "—".into())}</td>
                            <td>{a.outcome.unwrap_or_else(|| "running".into())}</td>
                            <td class="error">{a.error.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="trail-heading" class="card">
            <h2 id="trail-heading">"Audit trail"</h2>
            <AuditTable rows=d.audit/>
        </section>
    }
}

/// The plan of a retry, and its confirmation.
#[component]
fn RetryPlan(
    id: i64,
    plan: pitwall::jobs::Plan,
    expected: String,
    retry: ServerAction<RetryJob>,
) -> impl IntoView {
    let destructive = plan.destructive;
    let confirmation = RwSignal::new(String::new());
    let matches = {
        let expected = expected.clone();
        move || !destructive || confirmation.get().trim() == expected
    };
    view! {
        <div class="plan" role="region" aria-label="Retry plan">
            <PlanSteps plan/>
            <form class="row" on:submit=move |ev| {
                ev.prevent_default();
                let confirmation = Some(confirmation.get()).filter(|_| destructive);
                retry.dispatch(RetryJob { id, confirmation });
            }>
                {destructive.then(|| view! { <ConfirmField expected=Signal::stored(expected) confirmation/> })}
                <button type="submit" disabled=move || retry.pending().get() || !matches()>"Queue again"</button>
            </form>
        </div>
    }
}
