//! The history charts of the Resources page, with the time-range picker. The range lives in the
//! URL (`?range=1h`), so a view can be linked and the picker works without JavaScript.

use leptos::prelude::*;
use pitwall::telemetry::{Family, Thresholds, metric};

use crate::components::{RangePicker, TimeChart, follow, use_range};
use crate::live::Live;
use crate::live::api::{SeriesRequest, series};
use pitwall::Unit;

const CHARTS: [(&str, &str); 2] = [("CPU", metric::CPU), ("Memory", metric::MEMORY)];

/// CPU and memory of the console's machine over the chosen range, thresholds drawn.
#[component]
pub fn HistoryPanel(thresholds: Thresholds) -> impl IntoView {
    let range = use_range();
    let data = Resource::new(
        move || range.get(),
        move |range| async move {
            let requests = CHARTS
                .iter()
                .map(|(_, m)| SeriesRequest {
                    target: "host".into(),
                    family: Family::Host,
                    metric: (*m).into(),
                })
                .collect();
            series(requests, range.ms).await
        },
    );
    let live = Live::get();
    view! {
        <section aria-labelledby="history-heading" class="card">
            <div class="section-head">
                <h2 id="history-heading">"History"</h2>
                <RangePicker/>
            </div>
            <Transition fallback=|| view! { <p>"Loading history…"</p> }>
                {move || Suspend::new(async move {
                    let is_live = range.get().is_live();
                    match data.await {
                        Ok(all) => CHARTS
                            .iter()
                            .zip(all)
                            .map(|((title, m), points)| {
                                let points = RwSignal::new(points);
                                if is_live {
                                    follow(live, "host".into(), Family::Host, (*m).into(), points);
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
