//! `/tables`: tables and maintenance of each PostgreSQL target, as a DBA checks them before and
//! after touching a database: connections by state, cache hit rates, the wraparound margin,
//! sessions that block, wait or idle in a transaction, every table's rows, dead rows, scans,
//! vacuums and size with its growth, and sequences near overflow. Each table links to a vacuum
//! job filled in for it. Each panel fails on its own; the target is in the URL.

pub mod api;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::Unit;
use pitwall::postgres::health::{
    CacheHit, Connections, DatabaseHealth, SequenceUse, Session, TableHealth, Wraparound, XidAge,
};

use crate::components::{Col, Columns, panel_card};
use crate::components::{refresh_every, target_picker};
use crate::jobs::start_link;
use crate::queries::headline;
use api::tables_health;

/// Cache hit rates under this are flagged, percent (pghero's threshold).
const HIT_RATE_GOOD: f64 = 99.0;
/// Transactions left under this are a danger (pghero's Overview threshold).
const XIDS_LEFT_DANGER: f64 = 1_500_000_000.0;

/// The Tables page.
#[component]
pub fn TablesPage() -> impl IntoView {
    let query = use_query_map();
    let target = Memo::new(move |_| query.with(|q| q.get("target")));
    let data = Resource::new(move || target.get(), tables_health);
    refresh_every(data);
    view! {
        <Title text="Tables"/>
        <h1>"Tables and maintenance"</h1>
        <Transition fallback=|| view! { <p>"Reading the database…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => {
                        let current = view.health.as_ref().map(|h| h.target.clone()).unwrap_or_default();
                        let body = match view.health {
                            None => view! {
                                <p class="empty">"No PostgreSQL target is configured: add [[postgres]] entries to pitwall.toml."</p>
                            }.into_any(),
                            Some(health) => panels(health).into_any(),
                        };
                        view! { {target_picker("Database", &view.targets, &current)} {body} }.into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn panels(h: DatabaseHealth) -> impl IntoView {
    let now = h.read_at_ms;
    let target = h.target.clone();
    let target2 = h.target.clone();
    let settings = h.settings;
    view! {
        <p class="hint">{format!("{} as read at {}; read again every 10 s.", h.target, pitwall::format_utc(now))}</p>
        <div class="grid">
            {panel_card("Connections", h.connections, |c| connections(c).into_any())}
            {panel_card("Cache hit rate", h.cache, |c| cache(c).into_any())}
        </div>
        {panel_card("Transaction ID wraparound", h.wraparound, move |w| wraparound(&target2, w).into_any())}
        {panel_card("Sessions", h.sessions, move |s| sessions(s, settings.long_running_ms, settings.idle_in_transaction_ms).into_any())}
        {panel_card("Tables", h.tables, move |t| tables(&target, now, t).into_any())}
        {panel_card("Sequences", h.sequences, move |s| sequences(s, settings.sequence_danger).into_any())}
    }
}

fn connections(c: Connections) -> impl IntoView {
    let total = c.total();
    let usable = c.max.saturating_sub(c.reserved).max(1);
    view! {
        <p class="figure">{format!("{total} of {usable}")}</p>
        <p class="hint">{format!(
            "Client connections to the server, of max_connections {} less {} reserved for superusers.",
            c.max, c.reserved
        )}</p>
        <dl class="facts" aria-label="Connections by state">
            {c.by_state.into_iter().map(|(state, n)| view! {
                <dt>{state}</dt>
                <dd>{n}</dd>
            }).collect_view()}
        </dl>
    }
}

fn rate(label: &'static str, pct: Option<f64>) -> impl IntoView {
    let low = pct.is_some_and(|p| p < HIT_RATE_GOOD);
    view! {
        <dt>{label}</dt>
        <dd>
            {pct.map_or_else(|| "no reads yet".to_owned(), |p| Unit::Percent.format(p))}
            {low.then(|| view! { <span class="badge">"low"</span> })}
        </dd>
    }
}

fn cache(c: CacheHit) -> impl IntoView {
    view! {
        <dl class="facts" aria-label="Hit rates">
            {rate("Tables (heap)", c.heap_pct)}
            {rate("Indexes", c.index_pct)}
        </dl>
        <p class="hint">{format!(
            "Blocks found in shared buffers since statistics were reset; under {HIT_RATE_GOOD} % the working set does not fit in shared_buffers."
        )}</p>
    }
}

fn xid_rows(target: &str, list: Vec<XidAge>, freeze_max_age: f64, tables: bool) -> impl IntoView {
    list.into_iter()
        .map(|x| {
            let past_freeze = x.xid_age > freeze_max_age;
            let danger = x.left() < XIDS_LEFT_DANGER;
            let action = (tables && past_freeze).then(|| {
                let href = start_link(
                    "vacuum",
                    target,
                    &serde_json::json!({ "table": x.name, "freeze": true }),
                );
                view! { <a href=href aria-label=format!("Vacuum freeze {}", x.name)>"Vacuum freeze…"</a> }
            });
            view! {
                <tr>
                    <th scope="row">{x.name.clone()}</th>
                    <td class="num">{Unit::Count.format(x.xid_age)}</td>
                    <td class="num">{Unit::Percent.format(x.used_pct())}</td>
                    <td class="num">
                        {Unit::Count.format(x.left())}
                        {danger.then(|| view! { <span class="badge">"danger"</span> })}
                        {past_freeze.then(|| view! { <span class="badge">"freeze due"</span> })}
                    </td>
                    <td class="num">{Unit::Count.format(x.mxid_age)}</td>
                    {tables.then(|| view! { <td>{action}</td> })}
                </tr>
            }
        })
        .collect_view()
}

fn xid_table(
    target: &str,
    label: String,
    first: &'static str,
    list: Vec<XidAge>,
    freeze_max_age: f64,
    tables: bool,
) -> impl IntoView {
    view! {
        <table aria-label=label>
            <thead>
                <tr>
                    <th scope="col">{first}</th>
                    <th scope="col" class="num">"XID age"</th>
                    <th scope="col" class="num">"Used"</th>
                    <th scope="col" class="num">"Transactions left"</th>
                    <th scope="col" class="num">"Multixact age"</th>
                    {tables.then(|| view! { <th scope="col">"Fix"</th> })}
                </tr>
            </thead>
            <tbody>{xid_rows(target, list, freeze_max_age, tables)}</tbody>
        </table>
    }
}

fn wraparound(target: &str, w: Wraparound) -> impl IntoView {
    view! {
        <p class="hint">{format!(
            "PostgreSQL stops taking writes when a database's oldest unfrozen transaction ID is about 2.1 billion old; autovacuum forces a freeze past autovacuum_freeze_max_age ({}).",
            Unit::Count.format(w.freeze_max_age)
        )}</p>
        {xid_table(target, "Databases by transaction ID age".into(), "Database", w.databases, w.freeze_max_age, false)}
        {xid_table(target, format!("Oldest tables of {target}"), "Table", w.tables, w.freeze_max_age, true)}
    }
}

/// A length of time in ms, or a dash.
fn duration(ms: Option<u64>) -> String {
    Unit::Seconds.format_or_dash(ms.map(|ms| ms as f64 / 1000.0))
}

fn sessions(list: Vec<Session>, long_ms: u64, idle_ms: u64) -> impl IntoView {
    let hint = format!(
        "Sessions that wait for a lock or hold one another waits for, statements running {} or more, and sessions idle in a transaction for {} or more.",
        Unit::Seconds.format(long_ms as f64 / 1000.0),
        Unit::Seconds.format(idle_ms as f64 / 1000.0),
    );
    if list.is_empty() {
        return view! {
            <p class="hint">{hint}</p>
            <p class="empty">"No session is blocked, blocking, long-running or idle in a transaction."</p>
        }
        .into_any();
    }
    view! {
        <p class="hint">{hint}</p>
        <table aria-label="Sessions to look at">
            <Columns of=&[
                Col::Num("PID"), Col::Text("Why"), Col::Text("Who"), Col::Text("State"),
                Col::Text("Waits for"), Col::Num("Transaction"), Col::Num("Statement"),
                Col::Text("Query"),
            ] />
            <tbody>
                {list.into_iter().map(|s| {
                    let who = format!(
                        "{}@{}{}{}",
                        s.user,
                        s.database,
                        if s.application.is_empty() { String::new() } else { format!(" ({})", s.application) },
                        s.client.map(|c| format!(" from {c}")).unwrap_or_default(),
                    );
                    let waits = match (s.waiting_for, s.blocked_by.is_empty()) {
                        (w, true) => w.unwrap_or_default(),
                        (w, false) => format!(
                            "{} — blocked by {}",
                            w.unwrap_or_default(),
                            s.blocked_by.iter().map(|p| format!("PID {p}")).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    view! {
                        <tr>
                            <th scope="row" class="num">{s.pid}</th>
                            <td>{s.flags.iter().map(|f| view! { <span class="badge">{f.label()}</span> }).collect_view()}</td>
                            <td>{who}</td>
                            <td>{s.state}</td>
                            <td>{waits}</td>
                            <td class="num">{duration(s.transaction_ms)}</td>
                            <td class="num">{duration(s.statement_ms)}</td>
                            <td><code>{headline(&s.query, 160)}</code></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// `at` (Unix ms) as time before `now`, or never.
fn when(now: u64, at: Option<u64>) -> String {
    at.map_or_else(
        || "never".to_owned(),
        |at| pitwall::format::ago(now.saturating_sub(at) as f64 / 1000.0),
    )
}

fn tables(target: &str, now: u64, list: Vec<TableHealth>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"This database has no user table."</p> }.into_any();
    }
    view! {
        <p class="hint">"Biggest first. Dead rows per live row; autovacuum starts past its threshold. Scans and hit rates count since statistics were reset; growth since the oldest size this console kept over the last day."</p>
        <table aria-label=format!("Tables of {target}")>
            <Columns of=&[
                Col::Text("Table"), Col::Num("Rows"), Col::Num("Dead rows"),
                Col::Num("Index scans"), Col::Text("Vacuumed"), Col::Text("Analyzed"),
                Col::Num("Size"), Col::Num("Indexes"), Col::Num("Growth"), Col::Num("Heap hit"),
                Col::Text("Maintenance"),
            ] />
            <tbody>
                {list.into_iter().map(|t| {
                    let name = t.qualified();
                    let vacuum = start_link("vacuum", target, &serde_json::json!({ "table": name, "analyze": true }));
                    let growth = match (t.growth_bytes, t.growth_since_ms) {
                        (Some(g), Some(since)) => format!(
                            "{}{} in {}",
                            if g < 0.0 { "−" } else { "+" },
                            Unit::Bytes.format(g.abs()),
                            Unit::Seconds.format(now.saturating_sub(since) as f64 / 1000.0)
                        ),
                        _ => "—".to_owned(),
                    };
                    let scans = format!(
                        "{} of {}",
                        Unit::Percent.format_or_dash(t.index_scan_pct()),
                        Unit::Count.format(t.seq_scans + t.index_scans)
                    );
                    view! {
                        <tr>
                            <th scope="row">{name.clone()}</th>
                            <td class="num">{Unit::Count.format(t.live_rows)}</td>
                            <td class="num">
                                {Unit::Count.format(t.dead_rows)}
                                {t.dead_pct().map(|p| format!(" ({})", Unit::Percent.format(p)))}
                                {t.vacuum_due().then(|| view! { <span class="badge">"vacuum due"</span> })}
                            </td>
                            <td class="num">{scans}</td>
                            <td>{when(now, t.vacuumed_ms())}</td>
                            <td>{when(now, t.analyzed_ms())}</td>
                            <td class="num">{Unit::Bytes.format(t.table_bytes)}</td>
                            <td class="num">{Unit::Bytes.format(t.index_bytes)}</td>
                            <td class="num">{growth}</td>
                            <td class="num">{Unit::Percent.format_or_dash(t.heap_hit_pct)}</td>
                            <td><a href=vacuum aria-label=format!("Vacuum {name}")>"Vacuum…"</a></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn sequences(list: Vec<SequenceUse>, danger: f64) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"No sequence this role may read."</p> }.into_any();
    }
    view! {
        <p class="hint">{format!(
            "Fullest first; past {} of the range a column will soon refuse new rows: move it to bigint.",
            Unit::Percent.format(danger * 100.0)
        )}</p>
        <table aria-label="Sequences">
            <Columns of=&[
                Col::Text("Sequence"), Col::Text("Column"), Col::Text("Type"),
                Col::Num("Last value"), Col::Num("Limit"), Col::Num("Used"),
            ] />
            <tbody>
                {list.into_iter().map(|s| view! {
                    <tr>
                        <th scope="row">{s.sequence}</th>
                        <td>{s.column.unwrap_or_else(|| "—".to_owned())}</td>
                        <td>{s.data_type}</td>
                        <td class="num">{Unit::Count.format(s.last_value)}</td>
                        <td class="num">{Unit::Count.format(s.limit)}</td>
                        <td class="num">
                            {Unit::Percent.format(s.used * 100.0)}
                            {(s.used >= danger).then(|| view! { <span class="badge">"near overflow"</span> })}
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
