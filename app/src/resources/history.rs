//! The history charts of the Resources page, with the time-range picker. The range lives in the
//! URL (`?range=1h`), so a view can be linked and the picker works without JavaScript.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use pitwall::telemetry::{Family, Point, Thresholds, metric};

use crate::components::TimeChart;
use crate::live::Live;
use crate::live::api::{SeriesRequest, series};
use pitwall::Unit;

/// The ranges on offer: query value, label, length in ms. `live` is 15 minutes kept current.
const RANGES: [(&str, &str, u64); 6] = [
    ("live", "Live", 15 * 60_000),
    ("15m", "15 min", 15 * 60_000),
    ("1h", "1 hour", 3_600_000),
    ("6h", "6 hours", 6 * 3_600_000),
    ("24h", "24 hours", 24 * 3_600_000),
    ("7d", "7 days", 7 * 24 * 3_600_000),
];

const CHARTS: [(&str, &str); 2] = [("CPU", metric::CPU), ("Memory", metric::MEMORY)];

/// CPU and memory of the console's machine over the chosen range, thresholds drawn.
#[component]
pub fn HistoryPanel(thresholds: Thresholds) -> impl IntoView {
    let query = use_query_map();
    let range = move || {
        let q = query.read().get("range").unwrap_or_default();
        RANGES
            .iter()
            .find(|(key, _, _)| *key == q)
            .copied()
            .unwrap_or(RANGES[0])
    };
    let data = Resource::new(
        move || range().0,
        move |key| async move {
            let window = RANGES
                .iter()
                .find(|r| r.0 == key)
                .map_or(RANGES[0].2, |r| r.2);
            let requests = CHARTS
                .iter()
                .map(|(_, m)| SeriesRequest {
                    target: "host".into(),
                    family: Family::Host,
                    metric: (*m).into(),
                })
                .collect();
            series(requests, window).await
        },
    );
    let live = Live::get();
    view! {
        <section aria-labelledby="history-heading" class="card">
            <div class="section-head">
                <h2 id="history-heading">"History"</h2>
                <nav aria-label="Time range" class="ranges">
                    {RANGES
                        .iter()
                        .map(|(key, label, _)| {
                            let current = move || (range().0 == *key).then_some("page");
                            view! { <a href=format!("?range={key}") aria-current=current>{*label}</a> }
                        })
                        .collect_view()}
                </nav>
            </div>
            <Transition fallback=|| view! { <p>"Loading history…"</p> }>
                {move || Suspend::new(async move {
                    let is_live = range().0 == "live";
                    match data.await {
                        Ok(all) => CHARTS
                            .iter()
                            .zip(all)
                            .map(|((title, m), points)| {
                                let points = RwSignal::new(points);
                                if is_live {
                                    follow(live, m, points);
                                }
                                let threshold = if *m == metric::CPU { thresholds.cpu_pct } else { thresholds.memory_pct };
                                view! {
                                    <TimeChart
                                        id=format!("chart-host-{m}")
                                        title=*title
                                        unit=Unit::Percent
                                        points=points
                                        threshold=Some(threshold)
                                    />
                                }
                            })
                            .collect_view()
                            .into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Appends each new host value of `m` from the live snapshot to `points`, dropping what is older
/// than the live range.
fn follow(live: Live, m: &'static str, points: RwSignal<Vec<Point>>) {
    Effect::new(move |_| {
        let Some((at, v)) = live.0.with(|s| {
            let r = s.as_ref()?.reading("host", Family::Host)?;
            Some((r.at_ms, r.value(m)?))
        }) else {
            return;
        };
        points.update(|p| {
            if p.last().is_none_or(|last| last.0 < at) {
                p.push((at, v));
                let oldest = at.saturating_sub(RANGES[0].2);
                p.retain(|(t, _)| *t >= oldest);
            }
        });
    });
}
