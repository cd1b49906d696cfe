//! `/alerts`: what is firing, pending, without data or in error, most urgent first, each with
//! since when, the value against the threshold, the summary and the runbook; then what resolved
//! in the last quarter of an hour. Read again every 10 s.

pub mod api;

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::alerts::{Alert, AlertState};

use crate::components::refresh_every;
use api::alerts_now;

/// The Alerts page.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let alerts = Resource::new(|| (), |()| alerts_now());
    refresh_every(alerts);
    view! {
        <Title text="Alerts"/>
        <h1>"Alerts"</h1>
        <p class="hint">"Judged on every collection round from the figures already collected (never an extra query to a target). A target that is down puts its rules in no data, never in the clear."</p>
        <Transition fallback=|| view! { <p>"Reading the alerts…"</p> }>
            {move || Suspend::new(async move {
                match alerts.await {
                    Ok(view) => {
                        let now = view.read_at_ms;
                        let (resolved, active): (Vec<Alert>, Vec<Alert>) =
                            view.alerts.into_iter().partition(|a| a.state == AlertState::Resolved);
                        view! {
                            {table("Active alerts", active, now, "Nothing is firing, pending, without data or in error.")}
                            {table("Recently resolved", resolved, now, "Nothing resolved in the last 15 minutes.")}
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One table of alerts, or `empty` when there are none.
fn table(label: &'static str, list: Vec<Alert>, now: u64, empty: &'static str) -> impl IntoView {
    let body = if list.is_empty() {
        view! { <p class="empty">{empty}</p> }.into_any()
    } else {
        view! {
            <table aria-label=label>
                <thead>
                    <tr>
                        <th scope="col">"Alert"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Severity"</th>
                        <th scope="col">"Target"</th>
                        <th scope="col">"Since"</th>
                        <th scope="col" class="num">"Value"</th>
                        <th scope="col" class="num">"Threshold"</th>
                        <th scope="col">"Summary"</th>
                        <th scope="col">"Runbook"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.into_iter().map(|a| row(a, now)).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-label=label>
            <h2>{label}</h2>
            {body}
        </section>
    }
}

fn row(a: Alert, now: u64) -> impl IntoView {
    let metric = a
        .labels
        .iter()
        .find(|(k, _)| k == "metric")
        .map(|(_, v)| format!(" ({v})"))
        .unwrap_or_default();
    let since = format!(
        "{} ({})",
        pitwall::format_utc(a.since_ms),
        pitwall::format::ago(now.saturating_sub(a.since_ms) as f64 / 1000.0)
    );
    let summary = match &a.reason {
        Some(reason) => format!("{} — {reason}", a.summary),
        None => a.summary.clone(),
    };
    let runbook = a.runbook_url.clone().map(|url| {
        let label = format!("Runbook for {}", a.rule);
        view! { <a href=url aria-label=label>"Runbook"</a> }
    });
    view! {
        <tr class:warn=a.state == AlertState::Firing>
            <th scope="row">{a.rule.clone()}</th>
            <td>{a.state.as_str().replace('_', " ")}</td>
            <td>{a.severity.as_str()}</td>
            <td>{a.target.clone()}{metric}</td>
            <td>{since}</td>
            <td class="num">{a.value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))}</td>
            <td class="num">{format!("{:.2}", a.threshold)}</td>
            <td>{summary}</td>
            <td>{runbook}</td>
        </tr>
    }
}
