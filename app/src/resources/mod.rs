//! `/resources`: the console's machine and process, live, with recommendations when a resource
//! passes its threshold.

mod advice;
mod api;
mod connections;
mod history;

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::telemetry::{Family, Snapshot, metric};

use crate::components::{Figure, FigureGrid};
use crate::live::Live;
use advice::advise;
use api::resource_thresholds;
use connections::Connections;
use history::HistoryPanel;
use pitwall::Unit;

fn host(_: &Snapshot) -> Vec<Figure> {
    let f = |title, m, unit| Figure::new(title, "host", Family::Host, m, unit);
    vec![
        f("CPU", metric::CPU, Unit::Percent),
        f("Memory", metric::MEMORY, Unit::Percent),
        f("Swap", metric::SWAP, Unit::Percent),
        f("Load (1 min)", metric::LOAD1, Unit::Plain),
        f("Disk space", metric::DISK, Unit::Percent),
        f("Disk reads", metric::DISK_READ, Unit::BytesPerSecond),
        f("Disk writes", metric::DISK_WRITE, Unit::BytesPerSecond),
        f("Network in", metric::NET_RX, Unit::BytesPerSecond),
        f("Network out", metric::NET_TX, Unit::BytesPerSecond),
    ]
}

fn console(_: &Snapshot) -> Vec<Figure> {
    let f = |title, m, unit| Figure::new(title, "console", Family::Console, m, unit);
    vec![
        f("Resident memory", metric::RSS, Unit::Bytes),
        f("CPU (one core = 100 %)", metric::PROCESS_CPU, Unit::Percent),
        f("Open streams", metric::STREAMS, Unit::Count),
    ]
}

/// The Resources page.
#[component]
pub fn ResourcesPage() -> impl IntoView {
    let live = Live::get();
    let loaded = Resource::new(
        || (),
        |_| async move {
            let thresholds = resource_thresholds().await?;
            let first = crate::live::api::telemetry_snapshot().await?;
            Ok::<_, crate::error::AppError>((thresholds, first))
        },
    );
    view! {
        <Title text="Resources"/>
        <h1>"Resources"</h1>
        <section aria-labelledby="advice-heading" class="card">
            <h2 id="advice-heading">"Recommendations"</h2>
            <Suspense fallback=|| view! { <p>"Checking thresholds…"</p> }>
                {move || Suspend::new(async move {
                    match loaded.await {
                        Ok((thresholds, first)) => {
                            let advice = move || {
                                live.0.with(|s| advise(s.as_ref().unwrap_or(&first), &thresholds))
                            };
                            view! {
                                {move || {
                                    let list = advice();
                                    if list.is_empty() {
                                        view! {
                                            <p class="muted">
                                                {format!(
                                                    "No resource is past its threshold (CPU {} %, memory {} %, disk {} %).",
                                                    thresholds.cpu_pct, thresholds.memory_pct, thresholds.disk_pct,
                                                )}
                                            </p>
                                        }
                                        .into_any()
                                    } else {
                                        view! {
                                            <ul class="advice">
                                                {list.into_iter().map(|a| view! { <li>{a}</li> }).collect_view()}
                                            </ul>
                                        }
                                        .into_any()
                                    }
                                }}
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
        <Suspense>
            {move || Suspend::new(async move {
                loaded.await.ok().map(|(thresholds, _)| view! { <HistoryPanel thresholds/> })
            })}
        </Suspense>
        <h2>"This machine"</h2>
        <FigureGrid label="Host figures" select=host/>
        <h2>"The console"</h2>
        <FigureGrid label="Console figures" select=console/>
        <Connections/>
    }
}
