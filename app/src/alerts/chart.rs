//! `/alerts/chart`: one alert's series from an hour before its start, the start marked and the
//! threshold drawn, as linked from the Alerts page, its history and its notifications.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::Unit;
use pitwall::telemetry::Point;

use super::api::alert_chart;
use crate::components::TimeChart;

/// What the chart's address asks for.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    rule: String,
    target: String,
    family: String,
    metric: String,
    at_ms: u64,
    threshold: Option<f64>,
}

/// The chart page.
#[component]
pub fn AlertChartPage() -> impl IntoView {
    let query = use_query_map();
    let asked = Memo::new(move |_| {
        let q = query.get();
        let get = |k: &str| q.get(k).unwrap_or_default();
        Asked {
            rule: get("rule"),
            target: get("target"),
            family: get("family"),
            metric: get("metric"),
            at_ms: get("at").parse().unwrap_or(0),
            threshold: get("threshold").parse().ok(),
        }
    });
    let points = Resource::new(
        move || asked.get(),
        |a| alert_chart(a.target, a.family, a.metric, a.at_ms),
    );
    view! {
        <Title text="Alert chart"/>
        <p><a href="/alerts">"← Alerts"</a></p>
        {move || {
            let a = asked.get();
            let heading = format!("{} on {}", a.rule, a.target);
            let when = pitwall::format_utc(a.at_ms);
            let threshold = a.threshold.map_or_else(String::new, |t| format!(", the threshold {t} drawn across"));
            view! {
                <h1>{heading}</h1>
                <p class="hint">{format!("{}/{} from an hour before the alert started at {when} (the vertical line){threshold}.", a.family, a.metric)}</p>
            }
        }}
        <Transition fallback=|| view! { <p>"Reading the series…"</p> }>
            {move || Suspend::new(async move {
                let a = asked.get_untracked();
                match points.await {
                    Ok(list) => {
                        let unit = unit_of(&a.metric);
                        let title = format!("{}/{} on {}", a.family, a.metric, a.target);
                        let list: Signal<Vec<Point>> = Signal::stored(list);
                        view! {
                            <section class="card" aria-label="Alert chart">
                                <TimeChart id="alert-chart".to_owned() title unit points=list threshold=a.threshold marker=(a.at_ms, "alert start")/>
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

/// The unit a metric's name implies.
fn unit_of(metric: &str) -> Unit {
    if metric.ends_with("_pct") || metric == "hit_rate" {
        Unit::Percent
    } else if metric.ends_with("_ms") {
        Unit::Millis
    } else {
        Unit::Plain
    }
}
