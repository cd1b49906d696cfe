//! `/queues`: each Celery broker's queues, live from the tab's stream: depth per queue (counted
//! across kombu's priority sub-lists, with the key prefix) with its history, messages in and out
//! per second, how long the oldest has waited, reserved messages, the workers' heartbeats, a
//! read-only peek at the next messages, and the console's own job queue.

mod api;
mod broker;
mod peek;

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::jobs::JobState;
use pitwall::telemetry::{Family, Point, Snapshot, metric};

use crate::components::{RangePicker, use_range};
use crate::jobs::api::active_jobs;
use crate::live::api::{SeriesRequest, series, telemetry_snapshot};
use crate::live::{Live, LiveJobs};
use broker::BrokerSection;
use peek::PeekPanel;

/// The series the page charts: each broker's total depth, then each of its queues' depths.
fn requests(s: &Snapshot) -> Vec<SeriesRequest> {
    let mut out = Vec::new();
    for r in s.family(Family::Queues) {
        let depth = |metric: String| SeriesRequest {
            target: r.target.clone(),
            family: Family::Queues,
            metric,
        };
        out.push(depth(metric::QUEUE_DEPTH.into()));
        out.extend(
            r.prefixed(metric::DEPTH_OF)
                .into_iter()
                .map(|(q, _)| depth(metric::queue_depth(&q))),
        );
    }
    out.truncate(32);
    out
}

/// The Queues page.
#[component]
pub fn QueuesPage() -> impl IntoView {
    let live = Live::get();
    let live_jobs = LiveJobs::get();
    let range = use_range();
    let first = Resource::new(
        move || range.get(),
        |range| async move {
            let snapshot = telemetry_snapshot().await?;
            let jobs = active_jobs().await?;
            let wanted = requests(&snapshot);
            let points = series(wanted.clone(), range.ms).await?;
            let history: Vec<(SeriesRequest, Vec<Point>)> =
                wanted.into_iter().zip(points).collect();
            Ok::<_, crate::error::AppError>((snapshot, jobs, history))
        },
    );
    view! {
        <Title text="Queues"/>
        <div class="section-head">
            <h1>"Queues"</h1>
            <RangePicker/>
        </div>
        <PeekPanel/>
        <Transition fallback=|| view! { <p>"Loading queues…"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok((snapshot, jobs, history)) => {
                        let brokers: Vec<String> = snapshot.family(Family::Queues).map(|r| r.target.clone()).collect();
                        let first_snapshot = snapshot.clone();
                        let snapshot = Signal::derive(move || live.0.get().unwrap_or_else(|| first_snapshot.clone()));
                        let jobs = move || live_jobs.0.get().unwrap_or_else(|| jobs.clone());
                        let is_live = range.get().is_live();
                        view! {
                            {if brokers.is_empty() {
                                view! { <p class="empty">"No Celery broker is configured: add [[celery]] entries to pitwall.toml."</p> }.into_any()
                            } else {
                                brokers
                                    .into_iter()
                                    .map(|name| {
                                        let history: Vec<(String, Vec<Point>)> = history
                                            .iter()
                                            .filter(|(r, _)| r.target == name)
                                            .map(|(r, p)| (r.metric.clone(), p.clone()))
                                            .collect();
                                        view! { <BrokerSection name snapshot history is_live/> }
                                    })
                                    .collect_view()
                                    .into_any()
                            }}
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
        </Transition>
    }
}
