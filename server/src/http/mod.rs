//! The HTTP surface: pages and server functions (Leptos), `/health`, static assets, and the
//! layers around them (tracing, compression, cache headers).

mod access;
mod assets;
mod health;
pub mod metrics;
mod security;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, post};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use pitwall::access::Access;
use pitwall::alerts::{Alerts, OnCall};
use pitwall::cache::inspect::Caches;
use pitwall::config::{EmbedPolicy, TrustedProxy};
use pitwall::embed::Embeds;
use pitwall::jobs::{ActiveJobs, Jobs, Kinds};
use pitwall::postgres::workload::Workloads;
use pitwall::queues::Brokers;
use pitwall::status::StatusBoard;
use pitwall::store::Store;
use pitwall::telemetry::{Telemetry, Thresholds};
use pitwall_app::{App, shell};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// What every handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where the site is and what its files are called.
    pub leptos_options: LeptosOptions,
    /// The latest status of every target.
    pub board: StatusBoard,
    /// The console's own store.
    pub store: Arc<dyn Store>,
    /// Sign-in, sessions, users and the audit log.
    pub access: Access,
    /// Sign-in by a trusted proxy's header, when configured.
    pub trusted_proxy: Option<Arc<TrustedProxy>>,
    /// The collectors' shared results.
    pub telemetry: Telemetry,
    /// When the console's machine deserves a recommendation.
    pub thresholds: Thresholds,
    /// Embed tokens.
    pub embeds: Embeds,
    /// Who may frame the embeddable panels.
    pub embed_policy: Arc<EmbedPolicy>,
    /// The job queue.
    pub jobs: Jobs,
    /// The job kinds this console runs.
    pub kinds: Kinds,
    /// The pending and running jobs, kept current.
    pub active_jobs: ActiveJobs,
    /// The Celery brokers, for peeks at their queues.
    pub brokers: Brokers,
    /// The PostgreSQL targets' workload by statement.
    pub workloads: Workloads,
    /// The Redis targets, for the Cache page's details.
    pub caches: Caches,
    /// The `/metrics` registry and the request counters.
    pub metrics: metrics::Metrics,
    /// The current alerts, judged on every snapshot.
    pub alerts: Alerts,
    /// Alert history, acknowledgements, silences and notifications.
    pub oncall: OnCall,
    /// Turns true when the console begins to shut down (live streams end then).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The host names the console answers to besides IP addresses and `localhost`.
    pub hosts: Arc<[String]>,
}

impl FromRef<AppState> for metrics::Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The whole router. Layers, outermost first: tracing, compression, default security headers,
/// the `Host` check, HTML `no-cache`, same-origin check for state changes, the refusal of
/// changes while the store takes no writes, then the access guard.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let (board, access, telemetry) = (
            state.board.clone(),
            state.access.clone(),
            state.telemetry.clone(),
        );
        let thresholds = state.thresholds;
        let (embeds, embed_policy) = (state.embeds.clone(), state.embed_policy.clone());
        let oncall = state.oncall.clone();
        let (jobs, kinds, active_jobs, brokers, workloads, caches, alerts) = (
            state.jobs.clone(),
            state.kinds.clone(),
            state.active_jobs.clone(),
            state.brokers.clone(),
            state.workloads.clone(),
            state.caches.clone(),
            state.alerts.clone(),
        );
        move || {
            provide_context(board.clone());
            provide_context(access.clone());
            provide_context(telemetry.clone());
            provide_context(thresholds);
            provide_context(embeds.clone());
            provide_context(EmbedPolicy::clone(&embed_policy));
            provide_context(jobs.clone());
            provide_context(kinds.clone());
            provide_context(active_jobs.clone());
            provide_context(brokers.clone());
            provide_context(workloads.clone());
            provide_context(caches.clone());
            provide_context(alerts.clone());
            provide_context(oncall.clone());
        }
    };
    let options = state.leptos_options.clone();
    // Paths that are neither a page nor a file get the app's own 404 page.
    let not_found = {
        let options = options.clone();
        leptos_axum::render_app_to_stream_with_context(context.clone(), move || {
            shell(options.clone())
        })
    };
    let mut router = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/api/stream", get(stream::stream))
        .route("/login", post(access::sign_in))
        .route("/logout", post(access::sign_out))
        .route("/setup", post(access::setup))
        .nest_service("/pkg", assets::pkg(&options))
        .leptos_routes_with_context(&state, routes, context, {
            let options = options.clone();
            move || shell(options.clone())
        })
        // Every route's requests, counted and timed under the route's pattern (never the raw
        // path); static files and unknown paths are not routes and are not counted.
        .route_layer(from_fn_with_state(state.metrics.clone(), metrics::record))
        .fallback_service(assets::public(&options, not_found))
        .layer(from_fn_with_state(state.clone(), access::guard))
        .layer(from_fn_with_state(
            state.access.clone(),
            security::writable_only,
        ))
        .layer(from_fn(security::same_origin_only))
        .layer(map_response(assets::html_no_cache))
        .layer(from_fn_with_state(
            state.hosts.clone(),
            security::known_host,
        ));
    for (name, value) in security::default_headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(CompressionLayer::new().br(true).gzip(true))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
