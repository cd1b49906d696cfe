//! The pending and running jobs with their progress, live from the tab's stream, and cancel.

use leptos::prelude::*;
use pitwall::access::Role;
use pitwall::jobs::{JobState, JobSummary};

use super::api::{CancelJob, active_jobs};
use crate::access::{Session, missing_role};
use crate::components::{Col, Columns};
use crate::live::LiveJobs;

/// `12 / 40 · waiting · 3.9/s · 7 s left`
pub fn progress_text(job: &JobSummary) -> String {
    let Some(p) = &job.progress else {
        return if job.state == JobState::Pending {
            "waiting to run".into()
        } else {
            "starting".into()
        };
    };
    let mut parts = vec![match p.total {
        Some(t) => format!("{} / {t}", p.done),
        None => p.done.to_string(),
    }];
    if !p.phase.is_empty() {
        parts.push(p.phase.clone());
    }
    if let Some(r) = p.rate_per_sec {
        parts.push(format!("{r:.1}/s"));
    }
    if let Some(eta) = p.eta_secs {
        parts.push(format!("{eta} s left"));
    }
    parts.join(" · ")
}

/// The table of active jobs.
#[component]
pub fn ActiveJobsTable() -> impl IntoView {
    let first = Resource::new(|| (), |_| active_jobs());
    let live = LiveJobs::get();
    let cancel = ServerAction::<CancelJob>::new();
    let session = Session::get();
    view! {
        <section aria-labelledby="active-heading" class="card">
            <h2 id="active-heading">"Running and queued"</h2>
            {move || cancel.value().get().and_then(Result::err).map(|e| view! {
                <p role="alert" class="error">{format!("Cancelling failed: {e}")}</p>
            })}
            <Transition fallback=|| view! { <p>"Loading jobs…"</p> }>
                {move || Suspend::new(async move {
                    let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Operator);
                    match first.await {
                        Ok(first) => {
                            // Rows are keyed, so a row (and its Cancel button) stays put while its
                            // progress moves; it is rebuilt only when its state changes.
                            let jobs = Memo::new(move |_| live.0.get().unwrap_or_else(|| first.clone()));
                            let denied = denied.clone();
                            view! {
                                <Show
                                    when=move || jobs.with(|l| !l.is_empty())
                                    fallback=|| view! { <p class="muted">"No job is running or waiting."</p> }
                                >
                                    <table aria-label="Running and queued jobs">
                                        <Columns of=&[
                                            Col::Text("Job"), Col::Text("Kind"),
                                            Col::Text("Target"), Col::Text("Priority"),
                                            Col::Text("State"), Col::Text("Progress"),
                                            Col::Text("Requested by"), Col::Text("Actions"),
                                        ] />
                                        <tbody>
                                            <For
                                                each=move || jobs.get()
                                                key=|j| (j.id, j.state, j.cancel_requested)
                                                children={
                                                    let denied = denied.clone();
                                                    move |j| view! { <ActiveRow job=j jobs cancel denied=denied.clone()/> }
                                                }
                                            />
                                        </tbody>
                                    </table>
                                </Show>
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ActiveRow(
    job: JobSummary,
    jobs: Memo<Vec<JobSummary>>,
    cancel: ServerAction<CancelJob>,
    denied: Option<String>,
) -> impl IntoView {
    let id = job.id;
    // The newest of this job, for its progress.
    let current = {
        let job = job.clone();
        move || {
            jobs.with(|l| l.iter().find(|j| j.id == id).cloned())
                .unwrap_or_else(|| job.clone())
        }
    };
    let current = Memo::new(move |_| current());
    // A memo, so the bar is rebuilt only when the total changes, not at every step.
    let total = Memo::new(move |_| current.with(|j| j.progress.as_ref().and_then(|p| p.total)));
    let done = move || current.with(|j| j.progress.as_ref().map_or(0, |p| p.done));
    let state = if job.cancel_requested {
        "cancelling".to_owned()
    } else {
        job.state.to_string()
    };
    let disabled = denied.is_some() || job.cancel_requested;
    view! {
        <tr data-job=id>
            <th scope="row"><a href=format!("/jobs/{id}")>{format!("#{id}")}</a></th>
            <td>{job.kind.clone()}</td>
            <td>{job.target.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{job.priority.as_str()}</td>
            <td>{state}</td>
            <td>
                {move || total.get().map(|t| view! {
                    <progress max=t.to_string() value=move || done().to_string() aria-label=format!("Progress of job {id}")></progress>
                })}
                " " <span class="muted">{move || current.with(progress_text)}</span>
            </td>
            <td>{job.requested_by.clone()}</td>
            <td>
                <button type="button" class="danger" aria-label=format!("Cancel job {id}") disabled=disabled
                    title=denied.unwrap_or_default()
                    on:click=move |_| { cancel.dispatch(CancelJob { id }); }>"Cancel"</button>
            </td>
        </tr>
    }
}
