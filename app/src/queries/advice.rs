//! The index advisor's panel of the Queries page: suggested indexes for the window's slow
//! statements, each with its statement, its reasoning and a link that fills in the job that
//! builds it; what the advisor concluded about every slow statement; and existing indexes that
//! cost more than they give, with their fix.

use leptos::prelude::*;
use pitwall::Unit;
use pitwall::postgres::{Advice, FindingKind, IndexFinding, IndexMethod, Suggestion};

use super::api::{index_advice, index_health};
use super::headline;
use crate::components::{Col, Columns};

/// The link to the Jobs page with the `create_index` job of `s` filled in.
fn job_link(target: &str, s: &Suggestion) -> String {
    let params = serde_json::json!({
        "table": format!("{}.{}", s.table.schema.as_str(), s.table.name.as_str()),
        "columns": s.columns.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "name": s.name.as_str(),
    });
    crate::jobs::start_link("create_index", target, &params)
}

/// Suggestions and index health of `target` over `window`.
#[component]
pub fn AdvicePanel(target: String, window: String) -> impl IntoView {
    let advice = {
        let (target, window) = (target.clone(), window.clone());
        Resource::new(
            move || (target.clone(), window.clone()),
            |(t, w)| index_advice(t, w),
        )
    };
    let health = {
        let target = target.clone();
        Resource::new(move || target.clone(), index_health)
    };
    view! {
        <section class="card" aria-label="Index suggestions">
            <h2>"Index suggestions"</h2>
            <Transition fallback=|| view! { <p>"Looking at the slow statements…"</p> }>
                {
                    let target = target.clone();
                    move || {
                        let target = target.clone();
                        Suspend::new(async move {
                            match advice.await {
                                Ok(a) => suggestions(&target, a).into_any(),
                                Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
        </section>
        <section class="card" aria-label="Index health">
            <h2>"Index health"</h2>
            <Transition fallback=|| view! { <p>"Reading the indexes…"</p> }>
                {move || Suspend::new(async move {
                    match health.await {
                        Ok(list) => findings(list).into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn suggestions(target: &str, advice: Advice) -> impl IntoView {
    let looked = advice.statements.clone();
    view! {
        {if advice.suggestions.is_empty() {
            view! { <p class="empty">"No index to suggest for the slow statements of this window."</p> }.into_any()
        } else {
            advice.suggestions.iter().map(|s| {
                let title = format!(
                    "{} ({})",
                    s.table.name.as_str(),
                    s.columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                );
                let create = (s.method == IndexMethod::Btree).then(|| {
                    let href = job_link(target, s);
                    view! { <a class="button" href=href aria-label=format!("Create index {}", s.name.as_str())>"Create this index…"</a> }
                });
                let label = format!("Suggested index on {title}");
                view! {
                    <article class="suggestion" aria-label=label>
                        <h3>{title}</h3>
                        <pre class="sql"><code>{s.statement.clone()}</code></pre>
                        <ul class="reasoning">{s.reasoning.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}</ul>
                        <p>"Helps: "</p>
                        <ul>
                            {s.helps.iter().map(|h| view! {
                                <li>
                                    <code>{headline(&h.query, 120)}</code>
                                    {format!(" — {} mean over {} calls", Unit::Millis.format(h.mean_ms), Unit::Count.format(h.calls))}
                                </li>
                            }).collect_view()}
                        </ul>
                        {create}
                    </article>
                }
            }).collect_view().into_any()
        }}
        {(!looked.is_empty()).then(|| view! {
            <details>
                <summary>{format!("What the advisor concluded about {} slow statements", looked.len())}</summary>
                <ul class="verdicts">
                    {looked.into_iter().map(|s| view! {
                        <li><code>{headline(&s.statement.query, 120)}</code>": "{s.verdict.summary()}</li>
                    }).collect_view()}
                </ul>
            </details>
        })}
    }
}

fn findings(list: Vec<IndexFinding>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"No unused, duplicate or invalid index."</p> }.into_any();
    }
    view! {
        <table aria-label="Index findings">
            <Columns of=&[
                Col::Text("Index"), Col::Text("Finding"), Col::Text("Table"), Col::Num("Size"),
                Col::Num("Scans"), Col::Text("Why and the fix"),
            ] />
            <tbody>
                {list.into_iter().map(|f| {
                    let kind = match f.kind {
                        FindingKind::Unused => "unused",
                        FindingKind::Duplicate => "duplicate",
                        FindingKind::Invalid => "invalid",
                    };
                    view! {
                        <tr>
                            <th scope="row">{format!("{}.{}", f.schema, f.index)}</th>
                            <td>{kind}</td>
                            <td>{f.table}</td>
                            <td class="num">{Unit::Bytes.format(f.size_bytes as f64)}</td>
                            <td class="num">{Unit::Count.format(f.scans as f64)}</td>
                            <td>{f.reason}{f.fix.map(|fix| view! { <br/><code>{fix}</code> })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
