//! One Celery broker's section of the Queues page: its figures, the chart of everything waiting,
//! a row per queue and a row per worker, all following the tab's stream.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use pitwall::Unit;
use pitwall::telemetry::{Family, Point, Reading, Snapshot, metric};

use crate::components::{Col, Columns, Sparkline, TimeChart, follow, health_text, query_with};
use crate::live::Live;

/// A rate, marked as a lower bound when the broker could not count it exactly.
fn rate(r: Option<&Reading>, queue: &str, v: Option<f64>) -> String {
    let exact = r.and_then(|r| r.value(&metric::queue_exact(queue))) != Some(0.0);
    match v {
        Some(v) if !exact => format!("≥ {}", Unit::PerSecond.format(v)),
        v => Unit::PerSecond.format_or_dash(v),
    }
}

/// A broker's section; `history` holds the charted series by metric name.
#[component]
pub fn BrokerSection(
    name: String,
    snapshot: Signal<Snapshot>,
    history: Vec<(String, Vec<Point>)>,
    is_live: bool,
) -> impl IntoView {
    let live = Live::get();
    let reading = {
        let name = name.clone();
        Memo::new(move |_| snapshot.with(|s| s.reading(&name, Family::Queues).cloned()))
    };
    let series: HashMap<String, RwSignal<Vec<Point>>> = history
        .into_iter()
        .map(|(m, p)| (m, RwSignal::new(p)))
        .collect();
    if is_live {
        for (m, points) in &series {
            follow(live, name.clone(), Family::Queues, m.clone(), *points);
        }
    }
    let value = move |m: &str| reading.with(|r| r.as_ref().and_then(|r| r.value(m)));
    let queues = Memo::new(move |_| {
        reading.with(|r| {
            r.as_ref().map_or_else(Vec::new, |r| {
                r.prefixed(metric::DEPTH_OF)
                    .into_iter()
                    .map(|(q, _)| q)
                    .collect::<Vec<_>>()
            })
        })
    });
    let workers = Memo::new(move |_| {
        reading.with(|r| {
            r.as_ref().map_or_else(Vec::new, |r| {
                r.prefixed(metric::WORKER_ONLINE_OF)
                    .into_iter()
                    .map(|(w, _)| w)
                    .collect::<Vec<_>>()
            })
        })
    });
    let total = series
        .get(metric::QUEUE_DEPTH)
        .copied()
        .unwrap_or_else(|| RwSignal::new(Vec::new()));
    let heading = format!("Queues on {name}");
    let summary = move || {
        let held = value(metric::UNACKED_OLDEST)
            .map(|s| format!(" (the oldest held {})", Unit::Seconds.format(s)))
            .unwrap_or_default();
        format!(
            "{} waiting in all, {} in and {} out; {} delivered and not yet acknowledged{held}; {} workers online.",
            Unit::Count.format_or_dash(value(metric::QUEUE_DEPTH)),
            Unit::PerSecond.format_or_dash(value(metric::IN_PER_SEC)),
            Unit::PerSecond.format_or_dash(value(metric::OUT_PER_SEC)),
            Unit::Count.format_or_dash(value(metric::UNACKED)),
            Unit::Count.format_or_dash(value(metric::WORKERS_ONLINE)),
        )
    };
    let broker = name.clone();
    let sparks = series.clone();
    view! {
        <section class="card" aria-label=heading.clone()>
            <h2>{heading.clone()}</h2>
            {move || reading.with(|r| r.as_ref().and_then(health_text)).map(|t| view! { <p class="reason">{t}</p> })}
            <p>{summary}</p>
            <TimeChart
                id=format!("chart-queues-{name}")
                title=format!("Waiting on {name}")
                unit=Unit::Count
                points=total
                threshold=None
            />
            <table aria-label=format!("Queues on {name}")>
                <thead>
                    <tr>
                        <th scope="col">"Queue"</th>
                        <th scope="col" class="num">"Waiting"</th>
                        <th scope="col" class="num">"In"</th>
                        <th scope="col" class="num">"Out"</th>
                        <th scope="col" class="num">"Oldest waiting"</th>
                        <th scope="col">"Trend"</th>
                        <th scope="col"><span class="sr-only">"Messages"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || queues.get() key=|q| q.clone() let:queue>
                        <QueueRow broker=broker.clone() queue reading points=sparks.clone()/>
                    </For>
                </tbody>
            </table>
            <h3>"Workers"</h3>
            <Show
                when=move || !workers.get().is_empty()
                fallback=|| view! {
                    <p class="empty">
                        "No worker heartbeat seen yet. Celery workers send one every 2 s on the broker's celeryev channel."
                    </p>
                }
            >
                <table aria-label=format!("Workers on {name}")>
                    <Columns of=&[
                        Col::Text("Worker"), Col::Text("State"), Col::Num("Running"),
                        Col::Num("Completed"), Col::Num("Last heartbeat"), Col::Num("Load"),
                    ] />
                    <tbody>
                        <For each=move || workers.get() key=|w| w.clone() let:worker>
                            {
                                let w = worker.clone();
                                let get = move |m: String| reading.with(|r| r.as_ref().and_then(|r| r.value(&m)));
                                let state = {
                                    let w = w.clone();
                                    Signal::derive(move || if get(metric::worker_online(&w)) == Some(1.0) { "online" } else { "offline" })
                                };
                                let (a, b, c, d) = (w.clone(), w.clone(), w.clone(), w);
                                view! {
                                    <tr>
                                        <th scope="row">{worker}</th>
                                        <td><span class=move || format!("state state-{}", state.get())>{state}</span></td>
                                        <td class="num">{move || Unit::Count.format_or_dash(get(metric::worker_active(&a)))}</td>
                                        <td class="num">{move || Unit::PerSecond.format_or_dash(get(metric::worker_rate(&b)))}</td>
                                        <td class="num">{move || get(metric::worker_silent(&c)).map_or_else(|| "—".to_owned(), pitwall::format::ago)}</td>
                                        <td class="num">{move || Unit::Plain.format_or_dash(get(metric::worker_load(&d)))}</td>
                                    </tr>
                                }
                            }
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// One queue's row.
#[component]
fn QueueRow(
    broker: String,
    queue: String,
    reading: Memo<Option<Reading>>,
    points: HashMap<String, RwSignal<Vec<Point>>>,
) -> impl IntoView {
    let query = use_query_map();
    let q = queue.clone();
    let get = move |m: String| reading.with(|r| r.as_ref().and_then(|r| r.value(&m)));
    let flow = move |m: String| {
        let q = q.clone();
        move || reading.with(|r| rate(r.as_ref(), &q, r.as_ref().and_then(|r| r.value(&m))))
    };
    let trend = points
        .get(&metric::queue_depth(&queue))
        .copied()
        .unwrap_or_else(|| RwSignal::new(Vec::new()));
    let href = {
        let target = format!("{broker}/{queue}");
        move || query.with(|q| query_with(q, "peek", Some(&target)))
    };
    let (depth, oldest) = (metric::queue_depth(&queue), metric::queue_oldest(&queue));
    view! {
        <tr>
            <th scope="row">{queue.clone()}</th>
            <td class="num">{move || Unit::Count.format_or_dash(get(depth.clone()))}</td>
            <td class="num">{flow(metric::queue_in(&queue))}</td>
            <td class="num">{flow(metric::queue_out(&queue))}</td>
            <td class="num">{move || Unit::Seconds.format_or_dash(get(oldest.clone()))}</td>
            <td><Sparkline points=trend label=format!("Waiting on {queue} over the range")/></td>
            <td><a href=href aria-label=format!("Peek at {queue}")>"Peek"</a></td>
        </tr>
    }
}
