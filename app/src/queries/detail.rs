//! `/queries/{target}/{queryid}`: one statement over the window: its figures, its mean time and
//! calls per minute, its full text, and its plan (EXPLAIN; EXPLAIN ANALYZE for admins, behind a
//! switch).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use pitwall::Unit;
use pitwall::access::Role;
use pitwall::postgres::{Explained, PlanNode};
use pitwall::telemetry::Point;

use super::api::{ExplainQuery, query_detail};
use super::{WindowPicker, use_window};
use crate::access::{Session, missing_role};
use crate::components::TimeChart;
use crate::components::refresh_every;

/// The page of one statement.
#[component]
pub fn QueryPage() -> impl IntoView {
    let params = use_params_map();
    let window = use_window();
    let asked = Memo::new(move |_| {
        let target = params.with(|p| p.get("target").unwrap_or_default());
        let id = params.with(|p| p.get("queryid").unwrap_or_default());
        (target, id, window.get())
    });
    let data = Resource::new(
        move || asked.get(),
        |(target, id, window)| async move {
            let id: i64 = id.parse().map_err(|_| {
                crate::error::AppError::Invalid(format!("{id:?} is not a statement id"))
            })?;
            query_detail(target, id, window).await
        },
    );
    refresh_every(data);
    view! {
        <Title text="Query"/>
        <div class="section-head">
            <h1>"Query"</h1>
            <WindowPicker/>
        </div>
        <p><a href=move || format!("/queries?target={}", asked.get().0)>"All queries"</a></p>
        <Transition fallback=|| view! { <p>"Loading the statement…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((stats, points)) => {
                        let (target, _, _) = asked.get_untracked();
                        let mean: Vec<Point> = points.iter().map(|p| (p.at_ms, p.mean_ms)).collect();
                        let calls: Vec<Point> = points.iter().map(|p| (p.at_ms, p.calls)).collect();
                        view! {
                            <section class="card" aria-label="Statement">
                                <pre class="sql"><code>{stats.query.clone()}</code></pre>
                                <dl class="facts">
                                    <dt>"Calls"</dt><dd>{Unit::Count.format(stats.calls)}</dd>
                                    <dt>"Mean time"</dt><dd>{Unit::Millis.format(stats.mean_ms)}</dd>
                                    <dt>"Total time"</dt><dd>{Unit::Millis.format(stats.total_ms)}</dd>
                                    <dt>"Share of database time"</dt><dd>{Unit::Percent.format(stats.share_pct)}</dd>
                                    <dt>"Rows"</dt><dd>{Unit::Count.format(stats.rows)}</dd>
                                    <dt>"Cache hit rate"</dt><dd>{Unit::Percent.format_or_dash(stats.hit_pct)}</dd>
                                    <dt>"Slow"</dt><dd>{if stats.slow { "yes" } else { "no" }}</dd>
                                </dl>
                            </section>
                            <section class="card" aria-label="Over time">
                                <TimeChart id=format!("chart-query-mean-{}", stats.queryid) title="Mean time per minute" unit=Unit::Millis points=Signal::derive(move || mean.clone()) threshold=Some(20.0)/>
                                <TimeChart id=format!("chart-query-calls-{}", stats.queryid) title="Calls per minute" unit=Unit::Count points=Signal::derive(move || calls.clone()) threshold=None/>
                            </section>
                            <ExplainPanel target queryid=stats.queryid/>
                        }.into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// EXPLAIN and, for admins, EXPLAIN ANALYZE.
#[component]
fn ExplainPanel(target: String, queryid: i64) -> impl IntoView {
    let session = Session::get();
    let explain = ServerAction::<ExplainQuery>::new();
    let analyze = RwSignal::new(false);
    view! {
        <section class="card" aria-labelledby="explain-heading">
            <h2 id="explain-heading">"Plan"</h2>
            <Transition>
                {move || {
                    let target = target.clone();
                    Suspend::new(async move {
                        let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Admin);
                        let described = denied.is_some().then_some("analyze-denied");
                        view! {
                            <form class="row" on:submit=move |ev| {
                                ev.prevent_default();
                                explain.dispatch(ExplainQuery { target: target.clone(), queryid, analyze: analyze.get() });
                            }>
                                <label class="switch">
                                    <input type="checkbox" prop:checked=move || analyze.get()
                                        on:change=move |ev| analyze.set(event_target_checked(&ev))
                                        disabled=denied.is_some() aria-describedby=described/>
                                    "Run it (EXPLAIN ANALYZE: read-only statements without parameters, 10 s at most)"
                                </label>
                                <button type="submit" disabled=move || explain.pending().get()>"Explain"</button>
                            </form>
                            {denied.map(|why| view! { <p id="analyze-denied" class="notice">{why}</p> })}
                        }
                    })
                }}
            </Transition>
            {move || explain.value().get().map(|result| match result {
                Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                Ok(plan) => plan_view(plan).into_any(),
            })}
        </section>
    }
}

fn plan_view(plan: Explained) -> impl IntoView {
    let note = match (plan.analyzed, plan.generic) {
        (true, _) => "What happened when it ran (in a transaction that was rolled back).",
        (false, true) => {
            "The generic plan: the statement has parameters, so it was planned for any value."
        }
        (false, false) => "The planner's estimate; nothing was run.",
    };
    view! {
        <p class="hint">{note}</p>
        <ul class="plan-tree" aria-label="Plan tree">{node(plan.tree)}</ul>
        <details>
            <summary>"As text"</summary>
            <pre class="sql" aria-label="Plan as text"><code>{plan.text}</code></pre>
        </details>
    }
}

fn node(n: PlanNode) -> AnyView {
    let figures = match (n.actual_ms, n.actual_rows) {
        (Some(ms), Some(rows)) => format!(
            "cost {:.1}, {} rows expected; took {} for {} rows",
            n.cost,
            Unit::Count.format(n.rows),
            Unit::Millis.format(ms),
            Unit::Count.format(rows)
        ),
        _ => format!(
            "cost {:.1}, {} rows expected",
            n.cost,
            Unit::Count.format(n.rows)
        ),
    };
    view! {
        <li>
            <strong>{n.label}</strong>" "<span class="hint">{figures}</span>
            {(!n.detail.is_empty()).then(|| view! {
                <ul class="conditions">{n.detail.into_iter().map(|d| view! { <li><code>{d}</code></li> }).collect_view()}</ul>
            })}
            {(!n.children.is_empty()).then(|| view! {
                <ul>{n.children.into_iter().map(node).collect_view()}</ul>
            })}
        </li>
    }
    .into_any()
}
