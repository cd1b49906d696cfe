//! `/alerts`, the on-call page: what is firing, pending, without data or in error, most urgent
//! first, each with since when, the value against the threshold, the summary, the runbook and a
//! chart at the alert's start; acknowledgements and silences for operators; the recently
//! resolved; the silences; then the history of firing episodes with how long each lasted.
//! Read again every 10 s. `/alerts/chart` draws one alert's series around its start.

pub mod api;
mod banner;
mod chart;

pub use banner::CriticalBanner;
pub use chart::AlertChartPage;

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::Unit;
use pitwall::access::Role;
use pitwall::alerts::{AlertState, Episode, OnCallAlert, Silence};

use crate::access::Session;
use crate::components::{ActionResult, Col, Columns, card, refresh_every};
use api::{AckAlert, ExpireSilence, SilenceAlerts, alert_history, alerts_now};

/// What an operator chose to act on from a row: its key and how people call it.
#[derive(Debug, Clone, PartialEq)]
struct Chosen {
    key: String,
    label: String,
}

/// The Alerts page.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let ack = ServerAction::<AckAlert>::new();
    let silence = ServerAction::<SilenceAlerts>::new();
    let expire = ServerAction::<ExpireSilence>::new();
    let alerts = Resource::new(
        move || {
            (
                ack.version().get(),
                silence.version().get(),
                expire.version().get(),
            )
        },
        |_| alerts_now(),
    );
    refresh_every(alerts);
    let before = RwSignal::new(None::<i64>);
    let history = Resource::new(
        move || (before.get(), ack.version().get()),
        |(before, _)| alert_history(before),
    );
    let chosen = RwSignal::new(None::<Chosen>);
    let matchers = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(())) = ack.value().get() {
            chosen.set(None);
        }
    });
    let session = Session::get();
    let operator = Signal::derive(move || {
        session
            .0
            .get()
            .and_then(|r| r.ok())
            .flatten()
            .is_some_and(|u| u.role.allows(Role::Operator))
    });
    view! {
        <Title text="Alerts"/>
        <h1>"Alerts"</h1>
        <p class="hint">"Judged on every collection round from the figures already collected (never an extra query to a target). A target that is down puts its rules in no data, never in the clear. Firing and resolved alerts go to the configured webhooks unless silenced."</p>
        <ActionResult label="Acknowledging" value=Signal::derive(move || ack.value().get())/>
        <ActionResult label="Silencing" value=Signal::derive(move || silence.value().get().map(|r| r.map(|_| ())))/>
        <ActionResult label="Ending the silence" value=Signal::derive(move || expire.value().get())/>
        <AckForm action=ack chosen/>
        <Transition fallback=|| view! { <p>"Reading the alerts…"</p> }>
            {move || Suspend::new(async move {
                match alerts.await {
                    Ok(view) => {
                        let now = view.read_at_ms;
                        let (resolved, active): (Vec<OnCallAlert>, Vec<OnCallAlert>) = view
                            .alerts
                            .into_iter()
                            .partition(|a| a.alert.state == AlertState::Resolved);
                        let act = operator.get();
                        view! {
                            {table("Active alerts", active, now, act, chosen, matchers, "Nothing is firing, pending, without data or in error.")}
                            {table("Recently resolved", resolved, now, false, chosen, matchers, "Nothing resolved in the last 15 minutes.")}
                            {silences(view.silences, now, act, expire)}
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        {move || operator.get().then(|| view! { <SilenceForm action=silence matchers/> })}
        <Transition fallback=|| view! { <p>"Reading the history…"</p> }>
            {move || Suspend::new(async move {
                match history.await {
                    Ok(list) => history_table(list, before).into_any(),
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The acknowledgement form for the alert an operator chose (outside the refreshing tables, so
/// a redraw never loses what they typed).
#[component]
fn AckForm(action: ServerAction<AckAlert>, chosen: RwSignal<Option<Chosen>>) -> impl IntoView {
    move || {
        chosen.get().map(|c| {
            let title = format!("Acknowledge {}", c.label);
            let label = title.clone();
            view! {
                <section class="card" aria-label=label>
                    <h2>{title}</h2>
                    <ActionForm action>
                        <input type="hidden" name="key" value=c.key/>
                        <label>
                            "Comment "
                            <textarea name="comment" required maxlength="500" rows="2" placeholder="What you are doing about it"></textarea>
                        </label>
                        <button type="submit">"Acknowledge"</button>
                        <button type="button" class="link" on:click=move |_| chosen.set(None)>"Cancel"</button>
                    </ActionForm>
                </section>
            }
        })
    }
}

/// The form that makes a silence; a row's "Silence…" fills in its matchers.
#[component]
fn SilenceForm(action: ServerAction<SilenceAlerts>, matchers: RwSignal<String>) -> impl IntoView {
    view! {
        <section class="card" aria-label="New silence">
            <h2>"New silence"</h2>
            <p class="hint">"Silenced alerts stay listed but notify nobody and raise no banner until the silence ends. Match on alertname, target, severity or metric."</p>
            <ActionForm action>
                <label>
                    "Matchers "
                    <input name="matchers" required placeholder="alertname=queue_backlog, target=broker" size="40"
                        prop:value=move || matchers.get()
                        on:input=move |ev| matchers.set(event_target_value(&ev))/>
                </label>
                <label>"For " <input name="lasting" required value="2h" size="5"/></label>
                <label>"Comment " <input name="comment" required maxlength="500" size="30"/></label>
                <button type="submit">"Silence"</button>
            </ActionForm>
        </section>
    }
}

/// One table of alerts, or `empty` when there are none; with actions when `act`.
fn table(
    label: &'static str,
    list: Vec<OnCallAlert>,
    now: u64,
    act: bool,
    chosen: RwSignal<Option<Chosen>>,
    matchers: RwSignal<String>,
    empty: &'static str,
) -> impl IntoView {
    let body = if list.is_empty() {
        view! { <p class="empty">{empty}</p> }.into_any()
    } else {
        view! {
            <table aria-label=label>
                <Columns of=&[
                    Col::Text("Alert"), Col::Text("State"), Col::Text("Severity"),
                    Col::Text("Target"), Col::Text("Since"), Col::Num("Value"),
                    Col::Num("Threshold"), Col::Text("Summary"), Col::Text("Links"),
                    Col::Text("On it"),
                ] />
                <tbody>
                    {list.into_iter().map(|a| row(a, now, act, chosen, matchers)).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    card(label, body)
}

fn row(
    entry: OnCallAlert,
    now: u64,
    act: bool,
    chosen: RwSignal<Option<Chosen>>,
    matchers: RwSignal<String>,
) -> impl IntoView {
    let a = &entry.alert;
    let metric = a
        .labels
        .iter()
        .find(|(k, _)| k == "metric")
        .map(|(_, v)| format!(" ({v})"))
        .unwrap_or_default();
    let name = format!("{} on {}{metric}", a.rule, a.target);
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
        let label = format!("Runbook for {name}");
        view! { <a href=url aria-label=label>"Runbook"</a> " " }
    });
    let chart = a.chart_path(a.since_ms).map(|href| {
        let label = format!("Chart of {name} at its start");
        view! { <a href=href aria-label=label>"Chart"</a> }
    });
    let firing = a.state == AlertState::Firing;
    let on_it = match (&entry.ack, entry.silenced_by) {
        (_, Some(id)) => {
            view! { <span class="muted">{format!("silenced (#{id})")}</span> }.into_any()
        }
        (Some(ack), None) => view! {
            <span>{format!("acknowledged by {}: {}", ack.by, ack.comment)}</span>
        }
        .into_any(),
        (None, None) => ().into_any(),
    };
    let actions = act.then(|| {
        let key = a.key();
        let silence_with = format!("alertname={}, target={}", a.rule, a.target);
        let (ack_label, silence_label) = (format!("Acknowledge {name}"), format!("Silence {name}"));
        let can_ack = firing && entry.ack.is_none();
        let label = name.clone();
        view! {
            {can_ack.then(|| view! {
                <button type="button" aria-label=ack_label
                    on:click=move |_| chosen.set(Some(Chosen { key: key.clone(), label: label.clone() }))>
                    "Acknowledge…"
                </button>
            })}
            {entry.silenced_by.is_none().then(|| view! {
                <button type="button" class="link" aria-label=silence_label
                    on:click=move |_| matchers.set(silence_with.clone())>
                    "Silence…"
                </button>
            })}
        }
    });
    view! {
        <tr class:warn=firing>
            <th scope="row">{a.rule.clone()}</th>
            <td>{a.state.as_str().replace('_', " ")}</td>
            <td>{a.severity.as_str()}</td>
            <td>{a.target.clone()}{metric}</td>
            <td>{since}</td>
            <td class="num">{a.value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))}</td>
            <td class="num">{format!("{:.2}", a.threshold)}</td>
            <td>{summary}</td>
            <td>{runbook}{chart}</td>
            <td>{on_it}" "{actions}</td>
        </tr>
    }
}

/// The silences in force and those ended in the last day.
fn silences(
    list: Vec<Silence>,
    now: u64,
    act: bool,
    expire: ServerAction<ExpireSilence>,
) -> impl IntoView {
    let body = if list.is_empty() {
        view! { <p class="empty">"No silence in force or ended in the last day."</p> }.into_any()
    } else {
        view! {
            <table aria-label="Silences">
                <Columns of=&[
                    Col::Text("#"), Col::Text("Matchers"), Col::Text("Comment"), Col::Text("By"),
                    Col::Text("Ends"), Col::Text("State"),
                ] />
                <tbody>
                    {list.into_iter().map(|s| {
                        let active = s.active(now);
                        let matchers: Vec<String> = s.matchers.iter().map(ToString::to_string).collect();
                        let state = match &s.expired {
                            Some((at, by)) => format!("ended by {by} at {}", pitwall::format_utc(*at)),
                            None if active => "active".to_owned(),
                            None => "ended".to_owned(),
                        };
                        let end_label = format!("End silence {}", s.id);
                        let id = s.id;
                        view! {
                            <tr>
                                <th scope="row">{s.id}</th>
                                <td><code>{matchers.join(", ")}</code></td>
                                <td>{s.comment.clone()}</td>
                                <td>{s.created_by.clone()}</td>
                                <td>{pitwall::format_utc(s.ends_ms)}</td>
                                <td>
                                    {state}" "
                                    {(act && active).then(|| view! {
                                        <button type="button" class="link" aria-label=end_label
                                            on:click=move |_| { expire.dispatch(ExpireSilence { id }); }>
                                            "End now"
                                        </button>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    card("Silences", body)
}

/// The firing episodes, newest first, with how long each lasted; 50 a page.
fn history_table(list: Vec<Episode>, before: RwSignal<Option<i64>>) -> impl IntoView {
    let older = (list.len() == 50)
        .then(|| list.last().map(|e| e.id))
        .flatten();
    let paged = before.get_untracked().is_some();
    let body = if list.is_empty() {
        view! { <p class="empty">"No alert has fired yet."</p> }.into_any()
    } else {
        view! {
            <table aria-label="Alert history">
                <Columns of=&[
                    Col::Text("Alert"), Col::Text("Target"), Col::Text("Severity"),
                    Col::Text("Fired"), Col::Text("Resolved"), Col::Num("Lasted"),
                    Col::Text("Acknowledged"), Col::Text("Chart"),
                ] />
                <tbody>
                    {list.into_iter().map(|e| {
                        let lasted = e.ended_ms.map(|end| Unit::Seconds.format(end.saturating_sub(e.started_ms) as f64 / 1000.0));
                        let ack = e.ack.as_ref().map(|a| format!("{}: {}", a.by, a.comment));
                        let chart = e.chart.clone().map(|href| {
                            let label = format!("Chart of {} on {} fired {}", e.rule, e.target, pitwall::format_utc(e.started_ms));
                            view! { <a href=href aria-label=label>"Chart"</a> }
                        });
                        view! {
                            <tr>
                                <th scope="row">{e.rule.clone()}</th>
                                <td>{e.target.clone()}</td>
                                <td>{e.severity.as_str()}</td>
                                <td>{pitwall::format_utc(e.started_ms)}</td>
                                <td>{e.ended_ms.map_or_else(|| "still firing".to_owned(), pitwall::format_utc)}</td>
                                <td class="num">{lasted.unwrap_or_else(|| "—".to_owned())}</td>
                                <td>{ack.unwrap_or_default()}</td>
                                <td>{chart}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-label="Alert history">
            <h2>"History"</h2>
            {body}
            <p>
                {paged.then(|| view! { <button type="button" class="link" on:click=move |_| before.set(None)>"Newest"</button> })}
                {older.map(|id| view! { <button type="button" class="link" on:click=move |_| before.set(Some(id))>"Older"</button> })}
            </p>
        </section>
    }
}
