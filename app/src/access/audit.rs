//! `/audit` (admins): the append-only audit log with filters and pagination. Filters live in the
//! URL, so a filtered view can be linked and works without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::access::{AuditFilter, AuditRecord};
use pitwall::format_utc;

use crate::components::{Col, Columns, older_href};

use super::api::audit_log;

const PAGE: u32 = 50;

/// The Audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        let text = |k: &str| {
            q.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        AuditFilter {
            actor: text("actor"),
            action: text("action"),
            outcome: text("outcome"),
            object: text("object"),
            before_id: text("before").and_then(|v| v.parse().ok()),
            limit: PAGE,
        }
    };
    let page = Resource::new(filter, audit_log);
    view! {
        <Title text="Audit"/>
        <h1>"Audit log"</h1>
        <form method="get" action="/audit" class="row filters" aria-label="Filter the audit log">
            <label>"Actor" <input name="actor" value=move || filter().actor.unwrap_or_default() prop:value=move || filter().actor.unwrap_or_default()/></label>
            <label>"Action starts with" <input name="action" value=move || filter().action.unwrap_or_default() prop:value=move || filter().action.unwrap_or_default()/></label>
            <label>
                "Outcome"
                <select name="outcome">
                    {[("", "any"), ("ok", "ok"), ("failed", "failed")].into_iter().map(|(v, l)| view! {
                        <option value=v selected=move || filter().outcome.as_deref().unwrap_or("") == v>{l}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => {
                        let f = filter();
                        let older = p.next_before_id.map(|id| {
                            older_href(id, [("actor", f.actor), ("action", f.action), ("outcome", f.outcome), ("object", f.object)])
                        });
                        view! {
                            <p class="muted">{format!("{} matching entries", p.total)}</p>
                            <AuditTable rows=p.rows/>
                            <nav aria-label="Audit pages" class="pager">
                                {f.before_id.map(|_| view! { <a href="?">"Newest"</a> })}
                                {older.map(|href| view! { <a href=href>"Older entries"</a> })}
                            </nav>
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn AuditTable(rows: Vec<AuditRecord>) -> impl IntoView {
    view! {
        <div class="wide">
            <table aria-label="Audit log">
                <Columns of=&[
                    Col::Text("Time"), Col::Text("Actor"), Col::Text("Role"), Col::Text("Action"),
                    Col::Text("Object"), Col::Text("Parameters"), Col::Text("Outcome"),
                    Col::Text("Client"),
                ] />
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| {
                            let outcome_class = if r.outcome == "ok" { "" } else { "error" };
                            view! {
                            <tr>
                                <td>{format_utc(r.at_ms)}</td>
                                <td>{r.actor}</td>
                                <td>{r.role.map(|x| x.as_str()).unwrap_or("—")}</td>
                                <td><code>{r.action}</code></td>
                                <td>{[r.target, r.object].into_iter().flatten().collect::<Vec<_>>().join(" / ")}</td>
                                <td><code>{r.parameters}</code></td>
                                <td class=outcome_class>{r.outcome}</td>
                                <td>{r.client_addr.unwrap_or_default()}</td>
                            </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
