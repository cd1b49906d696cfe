//! A live figure: one metric of one target, its value with unit and health, and a sparkline;
//! and the grid that loads a set of them (first paint from the server, then the live snapshot).

use leptos::prelude::*;
use pitwall::telemetry::{Family, Health, Point, Reading, Snapshot, metric};
use pitwall::{Unit, format_utc};

use super::Sparkline;
use crate::live::Live;
use crate::live::api::{SeriesRequest, series, telemetry_snapshot};

/// How far back the sparklines reach.
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// At most this many points per sparkline (15 minutes at the default 2 s).
const MAX_POINTS: usize = 450;

/// One figure to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What it is.
    pub title: &'static str,
    /// Whose it is.
    pub target: String,
    /// Which family.
    pub family: Family,
    /// Which metric.
    pub metric: &'static str,
    /// How to write it.
    pub unit: Unit,
    /// The page with the details, if any.
    pub href: Option<&'static str>,
    /// What the reader must know about how it is measured.
    pub note: Option<&'static str>,
}

impl Figure {
    /// A figure without link or note.
    pub fn new(
        title: &'static str,
        target: &str,
        family: Family,
        metric: &'static str,
        unit: Unit,
    ) -> Self {
        Self {
            title,
            target: target.to_owned(),
            family,
            metric,
            unit,
            href: None,
            note: None,
        }
    }

    /// The series behind the sparkline.
    pub fn request(&self) -> SeriesRequest {
        SeriesRequest {
            target: self.target.clone(),
            family: self.family,
            metric: self.metric.to_owned(),
        }
    }
}

/// What a reading's health means for its figures (`None` while they are current).
pub fn health_text(r: &Reading) -> Option<String> {
    match &r.health {
        Health::Ok => None,
        Health::Pending => Some("waiting for the first figures".into()),
        Health::Stale { reason } => {
            Some(format!("stale since {}: {reason}", format_utc(r.since_ms)))
        }
        Health::Down { reason } => Some(format!("down since {}: {reason}", format_utc(r.since_ms))),
    }
}

/// The figures `select` picks from the current snapshot, each live with its sparkline, in a
/// section named `label`.
#[component]
pub fn FigureGrid(label: &'static str, select: fn(&Snapshot) -> Vec<Figure>) -> impl IntoView {
    let loaded = Resource::new(
        || (),
        move |_| async move {
            let first = telemetry_snapshot().await?;
            let requests = select(&first).iter().map(Figure::request).collect();
            let history = series(requests, WINDOW_MS).await?;
            Ok::<_, crate::error::AppError>((first, history))
        },
    );
    view! {
        <section aria-label=label class="figures">
            <Suspense fallback=|| view! { <p>"Loading figures…"</p> }>
                {move || Suspend::new(async move {
                    match loaded.await {
                        Ok((first, history)) => select(&first)
                            .into_iter()
                            .zip(history)
                            .map(|(figure, history)| view! { <FigureCard figure first=first.clone() history/> })
                            .collect_view()
                            .into_any(),
                        Err(e) => view! {
                            <p role="alert" class="error">"Cannot load the figures: " {e.to_string()}</p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// One figure, updated from the live snapshot.
#[component]
fn FigureCard(figure: Figure, first: Snapshot, history: Vec<Point>) -> impl IntoView {
    let live = Live::get();
    let points = RwSignal::new(history);
    let (target, family, metric_name) = (figure.target.clone(), figure.family, figure.metric);
    let reading = move || {
        live.0
            .with(|s| s.as_ref().and_then(|s| s.reading(&target, family).cloned()))
            .or_else(|| first.reading(&target, family).cloned())
    };
    let reading = Memo::new(move |_| reading());
    Effect::new(move |_| {
        let Some(r) = reading.get() else { return };
        let Some(v) = r.value(metric_name) else {
            return;
        };
        points.update(|p| {
            if p.last().is_none_or(|last| last.0 < r.at_ms) {
                p.push((r.at_ms, v));
                if p.len() > MAX_POINTS {
                    p.remove(0);
                }
            }
        });
    });
    let unit = figure.unit;
    let id = format!(
        "figure-{}-{}-{}",
        figure.target,
        figure.family.as_str(),
        figure.metric
    );
    let value = move || {
        let r = reading.get();
        match r.as_ref().and_then(|r| r.value(metric_name)) {
            Some(v) => unit.format(v),
            None => r
                .and_then(|r| metric::absent_means(metric_name, |m| r.value(m)))
                .map_or_else(|| unit.format_or_dash(None), str::to_owned),
        }
    };
    let label = format!("{} over the last 15 minutes", figure.title);
    let labelled_by = id.clone();
    view! {
        <article class="figure-card" aria-labelledby=labelled_by data-metric=figure.metric>
            <h3 id=id>
                {match figure.href {
                    Some(href) => view! { <a href=href>{figure.title}</a> }.into_any(),
                    None => figure.title.into_any(),
                }}
                <span class="muted">" · " {figure.target.clone()}</span>
            </h3>
            <p class="value">{value}</p>
            {move || reading.get().and_then(|r| health_text(&r)).map(|t| view! { <p class="reason">{t}</p> })}
            <Sparkline points=points label/>
            {figure.note.map(|n| view! { <p class="muted note">{n}</p> })}
        </article>
    }
}
