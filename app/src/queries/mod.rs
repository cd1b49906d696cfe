//! `/queries`: the workload of each PostgreSQL target from `pg_stat_statements` deltas: top
//! statements over a window by total or mean time, calls, rows or cache hit rate, the slow ones
//! marked; `/queries/{target}/{queryid}` shows one statement over time with its plan. The target,
//! window and sort are in the URL, so a view can be linked and works without JavaScript.

mod advice;
pub mod api;
mod detail;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::postgres::{QueryStats, Sort, WorkloadPage};
use pitwall::{Unit, format_utc};

use crate::components::{query_with, refresh_every, target_picker};
use advice::AdvicePanel;
use api::{WINDOWS, workload};
pub use detail::QueryPage;

/// The first line of a statement, cut to `max` characters.
pub(crate) fn headline(query: &str, max: usize) -> String {
    let flat: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    pitwall::format::truncate(&flat, max)
}

/// The window the URL asks for (`?window=`), or the default.
pub(crate) fn use_window() -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| {
        query
            .with(|q| q.get("window"))
            .filter(|w| api::window(w).is_some())
            .unwrap_or_else(|| WINDOWS[0].0.to_owned())
    })
}

/// Links to each window, the current one marked; other query parameters are kept.
#[component]
pub(crate) fn WindowPicker() -> impl IntoView {
    let query = use_query_map();
    let window = use_window();
    view! {
        <nav aria-label="Window" class="ranges">
            {WINDOWS
                .iter()
                .map(|(key, label, _)| {
                    let href = move || query.with(|q| query_with(q, "window", Some(key)));
                    let current = move || (window.get() == *key).then_some("page");
                    view! { <a href=href aria-current=current>{*label}</a> }
                })
                .collect_view()}
        </nav>
    }
}

/// The Queries page.
#[component]
pub fn QueriesPage() -> impl IntoView {
    let query = use_query_map();
    let window = use_window();
    let asked = Memo::new(move |_| {
        query.with(|q| {
            (
                q.get("target"),
                window.get(),
                Sort::from_key(&q.get("sort").unwrap_or_default()),
            )
        })
    });
    let data = Resource::new(
        move || asked.get(),
        |(target, window, sort)| workload(target, window, sort),
    );
    refresh_every(data);
    view! {
        <Title text="Queries"/>
        <div class="section-head">
            <h1>"Queries"</h1>
            <WindowPicker/>
        </div>
        <Transition fallback=|| view! { <p>"Loading the workload…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => {
                        let current = view.page.as_ref().map(|p| p.target.clone()).unwrap_or_default();
                        let chooser = target_picker("Database", &view.targets, &current);
                        let body = match view.page {
                            None => view! {
                                <p class="empty">"No PostgreSQL target is configured: add [[postgres]] entries to pitwall.toml."</p>
                            }.into_any(),
                            Some(page) => {
                                let (_, window, sort) = asked.get_untracked();
                                let target = page.target.clone();
                                view! {
                                    {workload_view(page, sort)}
                                    <AdvicePanel target window/>
                                }.into_any()
                            }
                        };
                        view! { {chooser} {body} }.into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn workload_view(page: WorkloadPage, sort: Sort) -> impl IntoView {
    let query = use_query_map();
    let window_label = WINDOWS
        .iter()
        .find(|w| w.2 == page.window_ms)
        .map_or("window", |w| w.1);
    let since = page.since_ms.map_or_else(
        || "no figures yet: the first two polls are 10 s apart".to_owned(),
        |s| format!("counted since {}", format_utc(s)),
    );
    let slow: Vec<QueryStats> = page.statements.iter().filter(|s| s.slow).cloned().collect();
    let target = page.target.clone();
    let link = move |s: &QueryStats| format!("/queries/{}/{}", target, s.queryid);
    let link2 = link.clone();
    view! {
        {page.problem.clone().map(|p| view! { <p role="alert" class="error">{p}</p> })}
        <p>
            {format!(
                "{} statements on {}, {} of database time in the last {window_label}; {since}.",
                page.statements.len(),
                page.target,
                Unit::Millis.format(page.total_ms),
            )}
        </p>
        <section class="card" aria-label="Slow queries">
            <h2>"Slow queries"</h2>
            <p class="hint">{format!(
                "A mean of {} or more over at least {} calls in the window.",
                Unit::Millis.format(page.slow_mean_ms),
                Unit::Count.format(page.slow_calls)
            )}</p>
            {if slow.is_empty() {
                view! { <p class="empty">"No slow query in this window."</p> }.into_any()
            } else {
                view! {
                    <ul class="slow">
                        {slow.iter().map(|s| view! {
                            <li>
                                <a href=link(s)><code>{headline(&s.query, 120)}</code></a>
                                {format!(" — {} mean over {} calls", Unit::Millis.format(s.mean_ms), Unit::Count.format(s.calls))}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <div class="wide">
            <table aria-label=format!("Top queries on {}", page.target)>
                <thead>
                    <tr>
                        <th scope="col">"Statement"</th>
                        {Sort::ALL.iter().map(|(s, key, label)| {
                            let href = query.with_untracked(|q| query_with(q, "sort", Some(key)));
                            let aria = (*s == sort).then_some("descending");
                            view! { <th scope="col" class="num" aria-sort=aria><a href=href>{*label}</a></th> }
                        }).collect_view()}
                        <th scope="col" class="num">"Share"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.statements.iter().map(|s| view! {
                        <tr class:slow=s.slow>
                            <th scope="row">
                                <a href=link2(s)><code>{headline(&s.query, 160)}</code></a>
                                {s.slow.then(|| view! { <span class="badge">"slow"</span> })}
                            </th>
                            <td class="num">{Unit::Millis.format(s.total_ms)}</td>
                            <td class="num">{Unit::Millis.format(s.mean_ms)}</td>
                            <td class="num">{Unit::Count.format(s.calls)}</td>
                            <td class="num">{Unit::Count.format(s.rows)}</td>
                            <td class="num">{Unit::Percent.format_or_dash(s.hit_pct)}</td>
                            <td class="num">{Unit::Percent.format(s.share_pct)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
