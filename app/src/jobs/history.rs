//! The job history: filters in the URL (kind, state, target, user, since), pages of 50, and a
//! confirmed bulk cancel or retry of the filtered selection.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use pitwall::access::Role;
use pitwall::format_utc;
use pitwall::jobs::{JobFilter, JobState, JobSummary};

use super::active::progress_text;
use super::api::{BulkJobs, BulkPreview, job_history};
use crate::access::{Session, missing_role};
use crate::components::{Col, Columns, older_href};

const PAGE: u32 = 50;
const SINCE: [(&str, &str); 4] = [
    ("", "any time"),
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
];

/// The history section.
#[component]
pub fn JobHistory() -> impl IntoView {
    let query = use_query_map();
    let text = move |k: &str| {
        query.with(|q| {
            q.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    };
    let filter = move || JobFilter {
        kind: text("kind"),
        state: text("state").and_then(|s| s.parse().ok()),
        target: text("target"),
        requested_by: text("user"),
        since_ms: None,
        before_id: text("before").and_then(|v| v.parse().ok()),
        limit: PAGE,
    };
    let since = move || text("since").unwrap_or_default();
    let page = Resource::new(move || (filter(), since()), |(f, s)| job_history(f, s));
    view! {
        <section aria-labelledby="history-heading" class="card">
            <h2 id="history-heading">"History"</h2>
            <form method="get" action="/jobs" class="row filters" aria-label="Filter the job history">
                <label>"Kind" <input name="kind" size="8" value=move || text("kind").unwrap_or_default()/></label>
                <label>
                    "State"
                    <select name="state">
                        <option value="">"any"</option>
                        {JobState::ALL.into_iter().map(|s| view! {
                            <option value=s.as_str() selected=move || filter().state == Some(s)>{s.as_str()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Target" <input name="target" size="8" value=move || text("target").unwrap_or_default()/></label>
                <label>"Requested by" <input name="user" size="8" value=move || text("user").unwrap_or_default()/></label>
                <label>
                    "Since"
                    <select name="since">
                        {SINCE.into_iter().map(|(v, l)| view! { <option value=v selected=move || since() == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p>"Loading the history…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(p) => {
                            let f = filter();
                            let older = p.next_before_id.map(|id| {
                                older_href(id, [
                                    ("kind", f.kind.clone()),
                                    ("state", f.state.map(|s| s.as_str().to_owned())),
                                    ("target", f.target.clone()),
                                    ("user", f.requested_by.clone()),
                                    ("since", Some(since()).filter(|s| !s.is_empty())),
                                ])
                            });
                            view! {
                                <p class="muted">{format!("{} matching jobs", p.total)}</p>
                                <HistoryTable rows=p.rows/>
                                <nav aria-label="Job history pages" class="pager">
                                    {f.before_id.map(|_| view! { <a href="?">"Newest"</a> })}
                                    {older.map(|href| view! { <a href=href>"Older jobs"</a> })}
                                </nav>
                                <Bulk filter=JobFilter { before_id: None, ..f } since=since()/>
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
fn HistoryTable(rows: Vec<JobSummary>) -> impl IntoView {
    view! {
        <table aria-label="Job history">
            <Columns of=&[
                Col::Text("Job"), Col::Text("Kind"), Col::Text("Target"), Col::Text("State"),
                Col::Text("Attempts"), Col::Text("Requested by"), Col::Text("Created"),
                Col::Text("Finished"), Col::Text("Progress or error"),
            ] />
            <tbody>
                {rows.into_iter().map(|j| {
                    let detail = j.last_error.clone().filter(|_| j.state != JobState::Succeeded).unwrap_or_else(|| progress_text(&j));
                    view! {
                        <tr data-job=j.id>
                            <th scope="row"><a href=format!("/jobs/{}", j.id)>{format!("#{}", j.id)}</a></th>
                            <td>{j.kind.clone()}</td>
                            <td>{j.target.clone().unwrap_or_else(|| "—".into())}</td>
                            <td>{j.state.as_str()}</td>
                            <td class="num">{format!("{}/{}", j.attempts, j.max_attempts)}</td>
                            <td>{j.requested_by.clone()}</td>
                            <td>{format_utc(j.created_at_ms)}</td>
                            <td>{j.finished_at_ms.map(format_utc).unwrap_or_else(|| "—".into())}</td>
                            <td class="muted">{detail}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Cancel or retry every job of the filtered selection, after typing how many.
#[component]
fn Bulk(filter: JobFilter, since: String) -> impl IntoView {
    let session = Session::get();
    let preview = ServerAction::<BulkPreview>::new();
    let apply = ServerAction::<BulkJobs>::new();
    let action = RwSignal::new("cancel".to_owned());
    let confirmation = RwSignal::new(String::new());
    let (f1, s1, f2, s2) = (filter.clone(), since.clone(), filter, since);
    view! {
        <Transition>
            {move || {
                let (f1, s1, f2, s2) = (f1.clone(), s1.clone(), f2.clone(), s2.clone());
                Suspend::new(async move {
                    let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Operator);
                    denied.is_none().then(|| view! {
                        <form class="row bulk" aria-label="Bulk action" on:submit=move |ev| {
                            ev.prevent_default();
                            apply.value().set(None);
                            confirmation.set(String::new());
                            preview.dispatch(BulkPreview { filter: f1.clone(), since: s1.clone(), action: action.get() });
                        }>
                            <label>
                                "Bulk action"
                                <select on:change=move |ev| { action.set(event_target_value(&ev)); preview.value().set(None); }>
                                    <option value="cancel">"cancel"</option>
                                    <option value="retry">"retry"</option>
                                </select>
                            </label>
                            <button type="submit">"Select the matching jobs"</button>
                        </form>
                        {move || {
                            let (f2, s2) = (f2.clone(), s2.clone());
                            preview.value().get().map(move |r| match r {
                                Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                                Ok(n) => view! {
                                    <form class="row" aria-label="Confirm the bulk action" on:submit=move |ev| {
                                        ev.prevent_default();
                                        apply.dispatch(BulkJobs { filter: f2.clone(), since: s2.clone(), action: action.get(), confirmation: confirmation.get() });
                                    }>
                                        <label>
                                            {format!("{n} jobs to {}: type {n} to confirm", action.get())}
                                            <input size="5" prop:value=move || confirmation.get() on:input=move |ev| confirmation.set(event_target_value(&ev))/>
                                        </label>
                                        <button type="submit" class="danger" disabled=move || confirmation.get().trim() != n.to_string()>
                                            {format!("Apply to {n} jobs")}
                                        </button>
                                    </form>
                                }.into_any(),
                            })
                        }}
                        {move || apply.value().get().map(|r| match r {
                            Ok(n) => view! { <p role="status" class="notice">{format!("Done for {n} jobs.")}</p> }.into_any(),
                            Err(e) => view! { <p role="alert" class="error">{format!("The bulk action failed: {e}")}</p> }.into_any(),
                        })}
                    })
                })
            }}
        </Transition>
    }
}
