//! The connections the console holds open to each target endpoint (every pool, probe and
//! client together, as the operating system counts them), live.

use leptos::prelude::*;
use pitwall::TargetStatus;
use pitwall::telemetry::{Family, Snapshot, metric};

use crate::components::{Col, Columns};
use crate::live::Live;
use crate::live::api::telemetry_snapshot;
use crate::overview::api::target_statuses;

/// `(endpoint, open connections)` from the console's reading, sorted by endpoint.
fn counts(s: &Snapshot) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = s
        .reading("console", Family::Console)
        .map(|r| {
            r.values
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(metric::CONNECTIONS_TO)?.to_owned(), *v)))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The targets reached at `endpoint` (several targets can share one server).
fn targets_at(targets: &[TargetStatus], endpoint: &str) -> String {
    targets
        .iter()
        .filter(|t| t.address.split('/').next() == Some(endpoint))
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table of open connections per endpoint.
#[component]
pub fn Connections() -> impl IntoView {
    let live = Live::get();
    let loaded = Resource::new(
        || (),
        |_| async move {
            Ok::<_, crate::error::AppError>((telemetry_snapshot().await?, target_statuses().await?))
        },
    );
    view! {
        <section aria-labelledby="connections-heading" class="card">
            <h2 id="connections-heading">"Connections to targets"</h2>
            <Suspense fallback=|| view! { <p>"Counting connections…"</p> }>
                {move || Suspend::new(async move {
                    match loaded.await {
                        Ok((first, targets)) => {
                            let rows = move || live.0.with(|s| counts(s.as_ref().unwrap_or(&first)));
                            view! {
                                <table aria-label="Connections to targets">
                                    <Columns of=&[
                                        Col::Text("Endpoint"), Col::Text("Targets"),
                                        Col::Text("Open connections"),
                                    ] />
                                    <tbody>
                                        {move || rows().into_iter().map(|(endpoint, n)| {
                                            let names = targets_at(&targets, &endpoint);
                                            view! {
                                                <tr>
                                                    <th scope="row">{endpoint}</th>
                                                    <td>{names}</td>
                                                    <td class="num">{n}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <p class="muted">"Every pool, status check and client of the console together; the console's own store is a local SQLite file."</p>
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
