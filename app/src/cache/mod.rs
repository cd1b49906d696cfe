//! `/cache`: each Redis target's live figures (hit rate from keyspace hit and miss deltas, ops/s,
//! memory against maxmemory, fragmentation, evictions, expirations, clients, rejected
//! connections, keys) with their sparklines, and for the chosen target the server's facts and
//! eviction policy, keys per database, the tags (with invalidate and prune), the warming recipes,
//! the slow log and latency spikes, read again every 10 s. Commands a managed Redis refuses cost
//! their panel, with the reason.

pub mod api;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::Unit;
use pitwall::cache::keyspace::{KeyspaceReport, TTL_BUCKETS};
use pitwall::cache::recipe::Recipe;
use pitwall::cache::{
    CacheDetails, DbKeys, HitCounter, Latency, NodeFacts, ServerFacts, Setting, SlowLog,
    TagRegistry,
};
use pitwall::telemetry::{Family, Reading, Snapshot, metric};

use crate::components::{Col, Columns, Figure, FigureGrid, panel_card};
use crate::components::{query_with, refresh_every, target_picker};
use crate::jobs::start_link;
use crate::live::Live;
use api::{KeyspaceAnalysis, cache_keyspace, cache_server, cache_tags};

/// The live figures of every Redis target.
fn figures(s: &Snapshot) -> Vec<Figure> {
    s.family(Family::Redis)
        .flat_map(|r| {
            let f = |title, m, unit| Figure::new(title, &r.target, Family::Redis, m, unit);
            [
                f("Hit rate", metric::HIT_RATE, Unit::Percent),
                f("Operations", metric::OPS, Unit::PerSecond),
                f("Memory used", metric::USED_MEMORY, Unit::Bytes),
                f("Memory of maxmemory", metric::MEMORY_OF_MAX, Unit::Percent),
                f("Fragmentation", metric::FRAGMENTATION, Unit::Plain),
                f("Evictions", metric::EVICTIONS, Unit::PerSecond),
                f("Expirations", metric::EXPIRATIONS, Unit::PerSecond),
                f("Clients", metric::CLIENTS, Unit::Count),
                f("Rejected connections", metric::REJECTED, Unit::PerSecond),
                f("Keys", metric::KEYS, Unit::Count),
            ]
        })
        .collect()
}

/// The Cache page.
#[component]
pub fn CachePage() -> impl IntoView {
    let query = use_query_map();
    let target = Memo::new(move |_| query.with(|q| q.get("target")));
    let data = Resource::new(move || target.get(), cache_server);
    refresh_every(data);
    view! {
        <Title text="Cache"/>
        <h1>"Cache"</h1>
        <FigureGrid label="Live cache figures" select=figures/>
        <p class="hint">"The hit rate is the server's: keyspace hits against misses between two readings, whatever the keys hold."</p>
        <Transition fallback=|| view! { <p>"Reading the server…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => {
                        let current = view.details.as_ref().map(|d| d.target.clone()).unwrap_or_default();
                        let body = match view.details {
                            None => view! {
                                <p class="empty">"No Redis target is configured: add [[redis]] entries to pitwall.toml."</p>
                            }.into_any(),
                            Some(d) => details(d, view.reading).into_any(),
                        };
                        view! { {target_picker("Redis target", &view.targets, &current)} {body} }.into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        <TagsPanel target/>
        <KeyspacePanel target/>
    }
}

fn details(d: CacheDetails, first: Option<Reading>) -> impl IntoView {
    let t = d.target.clone();
    let now = d.read_at_ms;
    let apps = (!d.counters.is_empty()).then(|| {
        view! { <AppCaches target=t.clone() counters=d.counters.clone() first/> }
    });
    view! {
        <p class="hint">{format!("{t} as read at {}; read again every 10 s.", pitwall::format_utc(now))}</p>
        {apps}
        <div class="grid">
            {panel_card(format!("Server {t}"), d.server, |s| server(s).into_any())}
            {panel_card(format!("Keys of {t}"), d.keyspace, |k| keyspace(k).into_any())}
        </div>
        {d.nodes.map(|n| panel_card(format!("Cluster nodes of {t}"), n, |list| cluster_nodes(list).into_any()))}
        {recipes(&t, d.recipes)}
        {panel_card(format!("Slow log of {t}"), d.slowlog, move |s| slowlog(now, s).into_any())}
        {panel_card(format!("Latency of {t}"), d.latency, move |l| latency(now, l).into_any())}
    }
}

/// Each application cache's own hit rate, live: hits and misses per second from its counters,
/// the calls its hits save, and what they save at the configured cost per miss.
#[component]
fn AppCaches(target: String, counters: Vec<HitCounter>, first: Option<Reading>) -> impl IntoView {
    let live = Live::get();
    let reading = {
        let target = target.clone();
        Memo::new(move |_| {
            live.0
                .with(|s| {
                    s.as_ref()
                        .and_then(|s| s.reading(&target, Family::Redis).cloned())
                })
                .or_else(|| first.clone())
        })
    };
    let value = move |m: String| reading.with(|r| r.as_ref().and_then(|r| r.value(&m)));
    view! {
        <section class="card" aria-label=format!("Application caches on {target}")>
            <h2>"Application caches"</h2>
            <p class="hint">"From each application's own hit and miss counters: the true hit rate of that cache, live. Savings are at the current rate."</p>
            <table aria-label="Application hit rates">
                <Columns of=&[
                    Col::Text("Cache"), Col::Num("Hit rate"), Col::Num("Hits"), Col::Num("Misses"),
                    Col::Num("Calls saved per hour"), Col::Num("Cost saved per hour"),
                ] />
                <tbody>
                    {counters.into_iter().map(|c| {
                        let name = c.name.clone();
                        let cost = c.cost_per_miss;
                        let hits = Memo::new(move |_| value(metric::app_hits(&name)));
                        let (n1, n2) = (c.name.clone(), c.name.clone());
                        view! {
                            <tr>
                                <th scope="row">{c.name.clone()} <span class="muted">{format!(" ({} / {})", c.hits_key, c.misses_key)}</span></th>
                                <td class="num">{move || Unit::Percent.format_or_dash(value(metric::app_hit_rate(&n1)))}</td>
                                <td class="num">{move || Unit::PerSecond.format_or_dash(hits.get())}</td>
                                <td class="num">{move || Unit::PerSecond.format_or_dash(value(metric::app_misses(&n2)))}</td>
                                <td class="num">{move || Unit::Count.format_or_dash(hits.get().map(|h| h * 3600.0))}</td>
                                <td class="num">{move || match cost {
                                    Some(cost) => hits.get().map_or_else(|| "—".to_owned(), |h| format!("{:.2}", h * 3600.0 * cost)),
                                    None => "no cost_per_miss set".to_owned(),
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The target's tags, those whose names start with the page's `tags` parameter when it has one;
/// read when the page opens or its target or that start changes, and on demand (a scan is not
/// free): outside the panels read again every 10 s, so it is never scanned again by itself.
#[component]
fn TagsPanel(target: Memo<Option<String>>) -> impl IntoView {
    let query = use_query_map();
    let start = Memo::new(move |_| {
        query.with(|q| {
            q.get("tags")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
    });
    let again = RwSignal::new(0u32);
    let tags = Resource::new(
        move || (target.get(), start.get(), again.get()),
        |(t, s, _)| cache_tags(t, s),
    );
    let find = move || {
        view! {
            <form method="get" action="/cache" role="search" aria-label="Find tags" class="row filters">
                {move || target.get().map(|t| view! { <input type="hidden" name="target" value=t/> })}
                <label>"Tags whose name starts with " <input name="tags" size="24" value=move || start.get().unwrap_or_default()/></label>
                <button type="submit">"Find"</button>
                {move || start.get().is_some().then(|| {
                    let all = query.with(|q| format!("/cache{}", query_with(q, "tags", None)));
                    view! { <a href=all>"Every tag"</a> }
                })}
            </form>
        }
    };
    view! {
        <Transition fallback=|| view! { <p>"Scanning for tags…"</p> }>
            {move || Suspend::new(async move {
                match tags.await {
                    Ok(Some(v)) => view! {
                        <section class="card" aria-label=format!("Tags on {}", v.target)>
                            <h2>"Tags"</h2>
                            {find()}
                            {tag_table(&v.target, v.registry)}
                            <button type="button" on:click=move |_| again.update(|n| *n += 1)>"Scan again"</button>
                        </section>
                    }
                    .into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! {
                        <section class="card" aria-label="Tags">
                            <h2>"Tags"</h2>
                            {find()}
                            <p role="alert" class="error">{e.to_string()}</p>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

fn tag_table(target: &str, r: TagRegistry) -> impl IntoView {
    let hint = format!(
        "Keys under {}{}*, found with a paced SCAN{}. Stale members name keys that are gone: counted from the expiry scores of a sorted set, estimated from {} random members of a set.",
        r.prefix,
        r.start,
        if r.complete {
            ""
        } else {
            " that stopped at its budget (more tags may exist)"
        },
        pitwall::cache::TAG_SAMPLE,
    );
    if r.tags.is_empty() {
        let none = if r.start.is_empty() {
            "No tag found.".to_owned()
        } else {
            format!("No tag whose name starts with {:?} found.", r.start)
        };
        return view! {
            <p class="hint">{hint}</p>
            <p class="empty">{none}</p>
        }
        .into_any();
    }
    view! {
        <p class="hint">{hint}</p>
        // Up to 200 rows: they scroll inside the panel, so the panels below stay in reach.
        <div class="scroll" role="region" aria-label="Tag list" tabindex="0">
            <table aria-label="Tags">
                <Columns of=&[
                    Col::Text("Tag"), Col::Text("Layout"), Col::Num("Members"), Col::Num("Stale"),
                    Col::Num("Memory"), Col::Text("Actions"),
                ] />
                <tbody>
                    {r.tags.into_iter().map(|t| {
                        let layout = t.layout.to_string();
                        let name = t.name.clone();
                        let invalidate = start_link("invalidate_tag", target, &serde_json::json!({ "tag": t.name }));
                        let prune = start_link("prune_tag", target, &serde_json::json!({ "tag": t.name }));
                        let stale = t.stale_text();
                        view! {
                            <tr>
                                <th scope="row">{t.name} <span class="muted">{format!(" ({})", t.key)}</span></th>
                                <td>{layout}</td>
                                <td class="num">{Unit::Count.format(t.members as f64)}</td>
                                <td class="num">{stale}</td>
                                <td class="num">{Unit::Bytes.format_or_dash(t.memory_bytes.map(|b| b as f64))}</td>
                                <td>
                                    <a href=invalidate aria-label=format!("Invalidate tag {name}")>"Invalidate…"</a>
                                    " "
                                    <a href=prune aria-label=format!("Prune tag {name}")>"Prune…"</a>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The newest keyspace analysis of the target, and a link that plans the next one; read when the
/// page opens or its target changes.
#[component]
fn KeyspacePanel(target: Memo<Option<String>>) -> impl IntoView {
    let analysis = Resource::new(move || target.get(), cache_keyspace);
    view! {
        <Transition fallback=|| view! { <p>"Reading the last analysis…"</p> }>
            {move || Suspend::new(async move {
                match analysis.await {
                    Ok(Some(v)) => {
                        let analyze = start_link(
                            "analyze_keyspace",
                            &v.target,
                            &serde_json::json!({ "separator": ":", "depth": 2, "sample": 100_000 }),
                        );
                        let body = match v.latest {
                            Some(a) => keyspace_report(a).into_any(),
                            None => view! { <p class="empty">"Not analysed yet."</p> }.into_any(),
                        };
                        view! {
                            <section class="card" aria-label=format!("Keyspace of {}", v.target)>
                                <h2>"Keyspace"</h2>
                                {body}
                                <p><a href=analyze>"Analyze keyspace…"</a>" (a job: a paced, sampled SCAN; it changes nothing)"</p>
                            </section>
                        }
                        .into_any()
                    }
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn keyspace_report(a: KeyspaceAnalysis) -> impl IntoView {
    let KeyspaceReport {
        separator,
        sampled,
        keys,
        complete,
        memory_known,
        prefixes,
        top_keys,
        policies,
        ..
    } = a.report;
    let hint = format!(
        "Job {} finished {}: {} of {} keys looked at{}; prefixes cut at `{separator}`.{}",
        a.job,
        pitwall::format_utc(a.finished_at_ms),
        Unit::Count.format(sampled as f64),
        Unit::Count.format(keys as f64),
        if complete { "" } else { " (a sample)" },
        if memory_known {
            ""
        } else {
            " MEMORY USAGE is not allowed here: no sizes."
        },
    );
    let bucket_heads = TTL_BUCKETS
        .iter()
        .map(|(_, label)| *label)
        .chain(["≥ 7 d"])
        .map(|l| view! { <th scope="col" class="num">{l}</th> })
        .collect_view();
    view! {
        <p class="hint">{hint}</p>
        <table aria-label="Keys per prefix">
            <thead>
                <tr>
                    <th scope="col">"Prefix"</th>
                    <th scope="col" class="num">"Keys"</th>
                    <th scope="col" class="num">"Memory"</th>
                    <th scope="col" class="num">"No TTL"</th>
                    {bucket_heads}
                    <th scope="col">"Types"</th>
                </tr>
            </thead>
            <tbody>
                {prefixes.into_iter().map(|p| {
                    let types: Vec<String> = p.types.iter().map(|(t, n)| format!("{t} {n}")).collect();
                    view! {
                        <tr>
                            <th scope="row">{p.prefix}</th>
                            <td class="num">{Unit::Count.format(p.keys as f64)}</td>
                            <td class="num">{if memory_known { Unit::Bytes.format(p.memory_bytes as f64) } else { "—".into() }}</td>
                            <td class="num">{Unit::Count.format(p.no_ttl as f64)}</td>
                            {p.ttl_buckets.iter().map(|n| view! { <td class="num">{Unit::Count.format(*n as f64)}</td> }).collect_view()}
                            <td>{types.join(", ")}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {(!policies.is_empty()).then(|| view! {
            <table aria-label="TTL policies">
                <Columns of=&[
                    Col::Text("Prefix"), Col::Num("Longest TTL"), Col::Num("Keys"),
                    Col::Num("No TTL"), Col::Num("TTL too long"), Col::Text("Examples"),
                ] />
                <tbody>
                    {policies.into_iter().map(|p| {
                        let kept = p.kept();
                        view! {
                            <tr class:warn=!kept>
                                <th scope="row">{p.policy.prefix.clone()}</th>
                                <td class="num">{Unit::Seconds.format(p.policy.max_ttl_secs as f64)}</td>
                                <td class="num">{Unit::Count.format(p.keys as f64)}</td>
                                <td class="num">{Unit::Count.format(p.no_ttl as f64)}</td>
                                <td class="num">{Unit::Count.format(p.too_long as f64)}</td>
                                <td>{if kept { "kept".to_owned() } else { p.samples.join(", ") }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        })}
        {(!top_keys.is_empty()).then(|| view! {
            <table aria-label="Largest keys">
                <Columns of=&[
                    Col::Text("Key"), Col::Text("Type"), Col::Num("Memory"), Col::Num("TTL"),
                ] />
                <tbody>
                    {top_keys.into_iter().map(|k| view! {
                        <tr>
                            <th scope="row">{pitwall::format::truncate(&k.key, 80)}</th>
                            <td>{k.kind}</td>
                            <td class="num">{Unit::Bytes.format(k.memory_bytes as f64)}</td>
                            <td class="num">{k.ttl_secs.map_or_else(|| "none".to_owned(), |t| Unit::Seconds.format(t as f64))}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
    }
}

/// The warming recipes writing into `target`, each with a link that plans its job.
fn recipes(target: &str, list: Vec<Recipe>) -> AnyView {
    let pattern = start_link(
        "invalidate_pattern",
        target,
        &serde_json::json!({ "pattern": "prefix:*", "cap": 100_000 }),
    );
    let table = if list.is_empty() {
        view! { <p class="empty">"No recipe writes into this target: add [[redis.recipes]] to pitwall.toml."</p> }.into_any()
    } else {
        view! {
            <table aria-label="Warming recipes">
                <Columns of=&[
                    Col::Text("Recipe"), Col::Text("Source"), Col::Text("Key"), Col::Text("TTL"),
                    Col::Text("Tags"), Col::Text("Refresh-ahead"), Col::Text("Schedule"),
                    Col::Text("Run"),
                ] />
                <tbody>
                    {list.into_iter().map(|r| {
                        let warm = start_link("warm_cache", target, &serde_json::json!({ "recipe": r.name }));
                        let tags: Vec<String> = r.tags.iter().map(|t| t.to_string()).collect();
                        view! {
                            <tr>
                                <th scope="row">{r.name.clone()}</th>
                                <td><span title=r.sql.clone()>{r.postgres.clone()}</span></td>
                                <td><code>{r.key.to_string()}</code></td>
                                <td>{r.ttl_label()}</td>
                                <td>{if tags.is_empty() { "—".to_owned() } else { tags.join(", ") }}</td>
                                <td>{r.refresh_ahead.map_or_else(|| "off".to_owned(), |f| format!("under {:.0} % of TTL left", f * 100.0))}</td>
                                <td>{r.every_secs.map_or_else(|| "on demand".to_owned(), |s| format!("every {}", Unit::Seconds.format(s as f64)))}</td>
                                <td><a href=warm aria-label=format!("Warm recipe {}", r.name)>"Warm…"</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    view! {
        <section class="card" aria-label=format!("Warming recipes of {target}")>
            <h2>"Warming"</h2>
            <p class="hint">"Each recipe runs its query read-only on its PostgreSQL target and writes one key per row, pipelined, tags after values. Warm… shows the plan (row count and sample keys) before anything is written."</p>
            {table}
            <p><a href=pattern>"Invalidate keys by pattern…"</a>" (a paced SCAN with a cap; the plan is the dry run)"</p>
        </section>
    }
    .into_any()
}

/// A cluster's primaries: the panels above are the first one's; these are each one's figures.
fn cluster_nodes(list: Vec<NodeFacts>) -> impl IntoView {
    let total: u64 = list.iter().map(|n| n.keys).sum();
    view! {
        <p class="hint">{format!("{} primaries, {} keys in all. Jobs send each key's commands to the primary serving its slot and scan every primary.", list.len(), Unit::Count.format(total as f64))}</p>
        <table aria-label="Cluster nodes">
            <Columns of=&[
                Col::Text("Primary"), Col::Num("Slots"), Col::Num("Keys"), Col::Num("Memory"),
                Col::Num("Operations"), Col::Num("Hit rate"), Col::Num("Clients"),
            ] />
            <tbody>
                {list.into_iter().map(|n| view! {
                    <tr>
                        <th scope="row">{n.addr} <span class="muted">{format!(" ({})", pitwall::format::truncate(&n.id, 8))}</span></th>
                        <td class="num">{Unit::Count.format(n.slots as f64)}</td>
                        <td class="num">{Unit::Count.format(n.keys as f64)}</td>
                        <td class="num">{Unit::Bytes.format(n.used_memory as f64)}</td>
                        <td class="num">{Unit::PerSecond.format(n.ops_per_sec)}</td>
                        <td class="num">{Unit::Percent.format_or_dash(n.hit_rate)}</td>
                        <td class="num">{Unit::Count.format(n.clients as f64)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn server(s: ServerFacts) -> impl IntoView {
    let warning = s.eviction_warning();
    view! {
        <dl class="facts">
            <dt>"Version"</dt><dd>{s.version}</dd>
            <dt>"Mode"</dt><dd>{s.mode}</dd>
            <dt>"Role"</dt><dd>{s.role}</dd>
            {s.sentinel_master.map(|m| view! { <dt>"Sentinel master"</dt><dd>{m}</dd> })}
            <dt>"Up for"</dt><dd>{Unit::Seconds.format(s.uptime_s as f64)}</dd>
            <dt>"maxmemory"</dt><dd>{if s.maxmemory == 0 { "no limit".to_owned() } else { Unit::Bytes.format(s.maxmemory as f64) }}</dd>
            <dt>"Eviction policy"</dt><dd>{s.maxmemory_policy}</dd>
            <dt>"Clients"</dt><dd>{format!("{} ({} blocked)", s.clients, s.blocked_clients)}</dd>
        </dl>
        {warning.map(|w| view! { <p class="reason">"As a cache: " {w} "."</p> })}
    }
}

fn keyspace(list: Vec<DbKeys>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"No keys."</p> }.into_any();
    }
    view! {
        <table aria-label="Keys per database">
            <Columns of=&[
                Col::Text("Database"), Col::Num("Keys"), Col::Num("With a TTL"),
                Col::Num("Without"), Col::Num("Mean TTL left"),
            ] />
            <tbody>
                {list.into_iter().map(|k| view! {
                    <tr>
                        <th scope="row">{format!("db{}", k.db)}</th>
                        <td class="num">{Unit::Count.format(k.keys as f64)}</td>
                        <td class="num">{Unit::Count.format(k.expires as f64)}</td>
                        <td class="num">{Unit::Count.format(k.persistent() as f64)}</td>
                        <td class="num">{if k.avg_ttl_ms == 0 { "—".to_owned() } else { Unit::Seconds.format(k.avg_ttl_ms as f64 / 1000.0) }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn setting(s: Setting, show: impl FnOnce(i64) -> String) -> String {
    match s {
        Setting::Value(v) => show(v),
        Setting::Unavailable(why) => format!("threshold unknown: {why}"),
    }
}

/// `at` (Unix ms) as time before `now`.
fn ago(now: u64, at: u64) -> String {
    pitwall::format::ago(now.saturating_sub(at) as f64 / 1000.0)
}

fn slowlog(now: u64, s: SlowLog) -> impl IntoView {
    let threshold = setting(s.threshold_us, |us| {
        if us < 0 {
            "The slow log is off (slowlog-log-slower-than is negative).".to_owned()
        } else {
            format!(
                "Commands that ran {} or longer (slowlog-log-slower-than), newest first.",
                Unit::Millis.format(us as f64 / 1000.0)
            )
        }
    });
    // On a cluster the entries of every primary are merged: say which logged each.
    let by_node = s.entries.iter().any(|e| e.node.is_some());
    view! {
        <p class="hint">{threshold}</p>
        {if s.entries.is_empty() {
            view! { <p class="empty">"No slow command logged."</p> }.into_any()
        } else {
            view! {
                <table aria-label="Slow commands">
                    <thead>
                        <tr>
                            <th scope="col">"Command"</th>
                            <th scope="col" class="num">"Took"</th>
                            <th scope="col">"When"</th>
                            <th scope="col">"Client"</th>
                            {by_node.then(|| view! { <th scope="col">"Node"</th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {s.entries.into_iter().map(|e| view! {
                            <tr>
                                <th scope="row"><code>{e.command}</code></th>
                                <td class="num">{Unit::Millis.format(e.duration_us as f64 / 1000.0)}</td>
                                <td>{ago(now, e.at_ms)}</td>
                                <td>{if e.client_name.is_empty() { e.client } else { format!("{} ({})", e.client, e.client_name) }}</td>
                                {by_node.then(|| view! { <td>{e.node.unwrap_or_default()}</td> })}
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}

fn latency(now: u64, l: Latency) -> impl IntoView {
    let threshold = setting(l.threshold_ms, |ms| {
        if ms == 0 {
            "The latency monitor is off: set latency-monitor-threshold (ms) to record spikes."
                .to_owned()
        } else {
            format!(
                "Spikes of {ms} ms or more (latency-monitor-threshold), the latest of each event."
            )
        }
    });
    view! {
        <p class="hint">{threshold}</p>
        {if l.events.is_empty() {
            view! { <p class="empty">"No latency spike recorded."</p> }.into_any()
        } else {
            view! {
                <table aria-label="Latency spikes">
                    <Columns of=&[
                        Col::Text("Event"), Col::Num("Latest"), Col::Text("When"),
                        Col::Num("Largest"),
                    ] />
                    <tbody>
                        {l.events.into_iter().map(|e| view! {
                            <tr>
                                <th scope="row">{e.event}</th>
                                <td class="num">{format!("{} ms", e.latest_ms)}</td>
                                <td>{ago(now, e.at_ms)}</td>
                                <td class="num">{format!("{} ms", e.max_ms)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}
