//! `/queues`: each Celery broker's queues, live from the tab's stream: depth per queue (counted
//! across kombu's priority sub-lists, with the key prefix), messages delivered but not yet
//! acknowledged, and the console's own job queue.

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::Unit;
use pitwall::jobs::JobState;
use pitwall::telemetry::{Family, Reading, Snapshot, metric};

use crate::components::health_text;
use crate::jobs::api::active_jobs;
use crate::live::api::telemetry_snapshot;
use crate::live::{Live, LiveJobs};

/// `(queue, depth)` of a broker's reading, by queue name.
fn depths(r: &Reading) -> Vec<(String, f64)> {
    let prefix = metric::queue_depth("");
    let mut out: Vec<(String, f64)> = r
        .values
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), *v)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The Queues page.
#[component]
pub fn QueuesPage() -> impl IntoView {
    let live = Live::get();
    let live_jobs = LiveJobs::get();
    let first = Resource::new(
        || (),
        |_| async move {
            Ok::<_, crate::error::AppError>((telemetry_snapshot().await?, active_jobs().await?))
        },
    );
    view! {
        <Title text="Queues"/>
        <h1>"Queues"</h1>
        <Suspense fallback=|| view! { <p>"Loading queues…"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok((snapshot, jobs)) => {
                        let snapshot = move || live.0.get().unwrap_or_else(|| snapshot.clone());
                        let jobs = move || live_jobs.0.get().unwrap_or_else(|| jobs.clone());
                        view! {
                            {move || brokers(&snapshot())}
                            <section aria-labelledby="own-queue-heading" class="card">
                                <h2 id="own-queue-heading">"Pitwall's job queue"</h2>
                                <p>
                                    {move || {
                                        let list = jobs();
                                        let running = list.iter().filter(|j| j.state == JobState::Running).count();
                                        format!("{running} running, {} waiting. ", list.len() - running)
                                    }}
                                    <a href="/jobs">"See the jobs"</a>
                                </p>
                            </section>
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// One section per Celery broker in the snapshot.
fn brokers(s: &Snapshot) -> AnyView {
    let readings: Vec<Reading> = s.family(Family::Queues).cloned().collect();
    if readings.is_empty() {
        return view! { <p class="empty">"No Celery broker is configured: add [[celery]] entries to pitwall.toml."</p> }.into_any();
    }
    readings
        .into_iter()
        .map(|r| {
            let heading = format!("Queues on {}", r.target);
            let reason = health_text(&r);
            let total = r.value(metric::QUEUE_DEPTH);
            let unacked = r.value(metric::UNACKED);
            let count = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| Unit::Count.format(v));
            view! {
                <section class="card" aria-label=heading.clone()>
                    <h2>{heading.clone()}</h2>
                    {reason.map(|t| view! { <p class="reason">{t}</p> })}
                    <p>{format!("{} waiting in all, {} delivered and not yet acknowledged.", count(total), count(unacked))}</p>
                    <table aria-label=format!("Queue depths on {}", r.target)>
                        <thead><tr><th scope="col">"Queue"</th><th scope="col" class="num">"Waiting"</th></tr></thead>
                        <tbody>
                            {depths(&r).into_iter().map(|(q, d)| view! {
                                <tr><th scope="row">{q}</th><td class="num">{Unit::Count.format(d)}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            }
        })
        .collect_view()
        .into_any()
}
