//! `/embed/{target}/{panel}`: one chart panel without navigation, for internal portals to frame.
//! `theme`, `from`, `to` and `refresh` shape it; `token` opens it without a session.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use pitwall::embed::{EmbedQuery, Theme};
use pitwall::format_utc;

use super::api::embed_panel;
use crate::components::TimeChart;

/// The embedded panel.
#[component]
pub fn EmbedPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = params.with_untracked(|p| {
        format!(
            "{}/{}",
            p.get("target").unwrap_or_default(),
            p.get("panel").unwrap_or_default()
        )
    });
    let parsed = query.with_untracked(|q| EmbedQuery::parse(|k| q.get_str(k)));
    let theme = parsed.as_ref().map_or(Theme::Auto, |q| q.theme);
    let body = match parsed {
        Ok(q) => view! { <Panel id q/> }.into_any(),
        Err(message) => {
            bad_request();
            view! { <p role="alert" class="error">{message}</p> }.into_any()
        }
    };
    view! {
        <div class=format!("embed theme-{}", theme.as_str())>{body}</div>
    }
}

/// Answers 400 (on the server) for a query that cannot be read.
fn bad_request() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::BAD_REQUEST);
    }
}

#[component]
fn Panel(id: String, q: EmbedQuery) -> impl IntoView {
    let (from, to, token) = (q.from.to_string(), q.to.to_string(), q.token.clone());
    let first = {
        let (id, from, to, token) = (id.clone(), from.clone(), to.clone(), token.clone());
        Resource::new(
            || (),
            move |_| embed_panel(id.clone(), from.clone(), to.clone(), token.clone()),
        )
    };
    let theme = q.theme;
    let refresh_ms = q.refresh_ms;
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let (id, from, to, token) = (id.clone(), from.clone(), to.clone(), token.clone());
                Suspend::new(async move {
                    match first.await {
                        Ok(data) => {
                            let points = RwSignal::new(data.points);
                            let range = RwSignal::new((data.from_ms, data.to_ms));
                            let problem = RwSignal::new(None::<String>);
                            if let Some(ms) = refresh_ms {
                                poll(ms, (id, from, to, token), points, range, problem);
                            }
                            let panel = data.panel;
                            view! {
                                <Title text=panel.title.clone()/>
                                <h1>{panel.title.clone()}</h1>
                                <TimeChart
                                    id=format!("embed-{}", panel.id.replace('/', "-"))
                                    title=panel.title.clone()
                                    unit=panel.unit
                                    points=points
                                    threshold=panel.threshold
                                    theme
                                    named_by_page=true
                                />
                                <p class="muted range">
                                    {move || {
                                        let (f, t) = range.get();
                                        format!("{} – {}", format_utc(f), format_utc(t))
                                    }}
                                </p>
                                {move || problem.get().map(|p| view! { <p role="alert" class="error">{p}</p> })}
                            }
                            .into_any()
                        }
                        Err(e) => {
                            view! {
                                <Title text="Panel refused"/>
                                <p role="alert" class="error">{e.to_string()}</p>
                            }
                            .into_any()
                        }
                    }
                })
            }}
        </Transition>
    }
}

/// Fetches the panel again every `ms` in the browser; a refusal (say the token expired) shows
/// and stops the refreshing.
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
fn poll(
    ms: u64,
    args: (String, String, String, Option<String>),
    points: RwSignal<Vec<pitwall::telemetry::Point>>,
    range: RwSignal<(u64, u64)>,
    problem: RwSignal<Option<String>>,
) {
    #[cfg(feature = "hydrate")]
    {
        let handle = StoredValue::new(None::<leptos::leptos_dom::helpers::IntervalHandle>);
        let tick = move || {
            let (id, from, to, token) = args.clone();
            leptos::task::spawn_local(async move {
                match embed_panel(id, from, to, token).await {
                    Ok(data) => {
                        points.set(data.points);
                        range.set((data.from_ms, data.to_ms));
                        problem.set(None);
                    }
                    Err(
                        e @ (crate::error::AppError::Refused(_)
                        | crate::error::AppError::Unauthorized),
                    ) => {
                        problem.set(Some(e.to_string()));
                        if let Some(h) = handle.get_value() {
                            h.clear();
                        }
                    }
                    Err(e) => problem.set(Some(e.to_string())),
                }
            });
        };
        if let Ok(h) = set_interval_with_handle(tick, std::time::Duration::from_millis(ms)) {
            handle.set_value(Some(h));
            on_cleanup(move || {
                if let Some(h) = handle.get_value() {
                    h.clear();
                }
            });
        }
    }
}
