//! The Overview: the headline figures, and every configured target with its kind, address,
//! version and state, live from the tab's stream.

pub mod api;
mod headline;

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::{TargetState, TargetStatus, format_utc};

use api::{RecheckTargets, target_statuses};
use pitwall::access::Role;

use crate::access::{Session, missing_role};
use crate::components::{Col, Columns, FigureGrid};
use crate::live::LiveTargets;
use headline::headlines;

/// The Overview page.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let recheck = ServerAction::<RecheckTargets>::new();
    // The first paint; the tab's stream keeps it current from then on.
    let statuses = Resource::new(|| (), |_| target_statuses());
    let live = LiveTargets::get();
    let session = Session::get();
    view! {
        <Title text="Overview"/>
        <h1>"Overview"</h1>
        <FigureGrid label="Headline figures" select=headlines/>
        <section aria-labelledby="targets-heading">
            <div class="section-head">
                <h2 id="targets-heading">"Targets"</h2>
                <Transition>
                    {move || Suspend::new(async move {
                        let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Operator);
                        let disabled = denied.is_some();
                        view! {
                            <ActionForm action=recheck attr:class="inline">
                                <button
                                    type="submit"
                                    disabled=disabled
                                    aria-describedby=disabled.then_some("recheck-denied")
                                >
                                    "Check now"
                                </button>
                                {denied.map(|why| view! { <span id="recheck-denied" class="muted">{why}</span> })}
                            </ActionForm>
                        }
                    })}
                </Transition>
            </div>
            {move || {
                recheck.value().get().and_then(Result::err).map(|e| {
                    view! { <p role="alert" class="error">{format!("Checking now failed: {e}")}</p> }
                })
            }}
            <Transition fallback=|| view! { <p>"Checking targets…"</p> }>
                {move || Suspend::new(async move {
                    match statuses.await {
                        Ok(first) => {
                            let current = move || live.0.get().unwrap_or_else(|| first.clone());
                            (move || view! { <TargetTable statuses=current()/> }).into_any()
                        }
                        Err(e) => view! {
                            <p role="alert" class="error">"Cannot load target status: " {e.to_string()}</p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TargetTable(statuses: Vec<TargetStatus>) -> impl IntoView {
    if statuses.is_empty() {
        return view! {
            <p class="empty">
                "No targets are configured. Add [[postgres]], [[redis]] or [[celery]] entries to pitwall.toml, "
                "or set DATABASE_URL / REDIS_URL, and restart Pitwall."
            </p>
        }
        .into_any();
    }
    view! {
        <div class="wide">
            <table class="targets" aria-label="Targets">
                <Columns of=&[
                    Col::Text("Target"), Col::Text("Kind"), Col::Text("Address"),
                    Col::Text("State"), Col::Text("Version"), Col::Num("Latency"),
                    Col::Text("Since"),
                ] />
                <tbody>
                    {statuses.into_iter().map(|s| view! { <TargetRow status=s/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn TargetRow(status: TargetStatus) -> impl IntoView {
    let state = status.state.label();
    let latency = status
        .latency_ms
        .map(|ms| format!("{ms:.1} ms"))
        .unwrap_or_else(|| "—".into());
    let since = if status.state == TargetState::Unknown {
        "—".to_owned()
    } else {
        format_utc(status.since_ms)
    };
    let name = status.name.clone();
    view! {
        <tr data-target=name data-state=state>
            <th scope="row">{status.name}</th>
            <td>{status.kind.label()}</td>
            <td><code>{status.address}</code></td>
            <td>
                <span class=format!("state state-{state}")>{state}</span>
                {status.error.map(|e| view! { <div class="reason">{e}</div> })}
            </td>
            <td>{status.version.unwrap_or_else(|| "—".into())}</td>
            <td class="num">{latency}</td>
            <td>{since}</td>
        </tr>
    }
}
