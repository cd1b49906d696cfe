//! `GET /health`: the console's own store and each target, with status and latency.
//!
//! It answers 200 whenever the console itself works, even with every target down: the console
//! must stay up (and say so) during the incident it shows. Target figures come from the status
//! board, so a health check never adds load to the targets. Anyone may ask, but only a signed-in
//! user or a scraper with the `/metrics` bearer token sees the details (addresses, versions,
//! latencies, errors); everyone else gets the overall status, the store's backend and up/down,
//! and each target's name and state.
//!
//! `GET /ready`: whether this console should get traffic: its store answers and takes writes,
//! and it is not shutting down. It never looks at the targets, so a load balancer does not take
//! every console out because a watched database is down.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pitwall::access::CurrentUser;
use pitwall::writable::NotWritable;
use pitwall::{TargetState, TargetStatus, format_utc};
use serde::Serialize;

use super::AppState;

/// The body of `/health` for a signed-in user or the metrics token.
#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    store: StoreHealth,
    targets: Vec<TargetStatus>,
}

/// The body of `/health` for anyone else.
#[derive(Serialize)]
pub struct OpenHealth {
    status: &'static str,
    store: OpenStore,
    targets: Vec<OpenTarget>,
}

#[derive(Serialize)]
struct OpenStore {
    backend: &'static str,
    status: &'static str,
}

#[derive(Serialize)]
struct OpenTarget {
    name: String,
    state: TargetState,
}

/// The body of `/ready`.
#[derive(Serialize)]
pub struct Ready {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct StoreHealth {
    backend: &'static str,
    status: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Why the store takes no writes, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_writable: Option<NotWritable>,
}

pub async fn health(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    headers: HeaderMap,
) -> Response {
    let (latency_ms, error) = ping(&state).await;
    let ok = error.is_none();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if ok { "ok" } else { "error" };
    let store_status = if ok { "up" } else { "down" };
    let targets = state.board.snapshot();
    if user.is_none() && !state.metrics.bearer_matches(&headers) {
        let body = OpenHealth {
            status,
            store: OpenStore {
                backend: state.store.backend(),
                status: store_status,
            },
            targets: targets
                .iter()
                .map(|t| OpenTarget {
                    name: t.name.clone(),
                    state: t.state,
                })
                .collect(),
        };
        return (code, Json(body)).into_response();
    }
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        store: StoreHealth {
            backend: state.store.backend(),
            status: store_status,
            latency_ms,
            error,
            not_writable: state.access.writable().state(),
        },
        targets: targets.as_ref().clone(),
    };
    (code, Json(body)).into_response()
}

/// Pings the store: how long it took, ms, and what went wrong, if anything.
async fn ping(state: &AppState) -> (f64, Option<String>) {
    let started = Instant::now();
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 2 s".to_owned()),
    };
    (latency_ms, error)
}

/// 200 when the store answers and the console is not shutting down, else 503 with the reason.
/// A store that answers but takes no writes is `degraded` (still 200, with the reason): the
/// console still serves every page, and consoles sharing that store are all in the same state, so
/// taking them out of a load balancer would leave on-call with nothing to read.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let not_ready = if *state.stopping.borrow() {
        Some("shutting down".to_owned())
    } else {
        ping(&state).await.1.map(|e| format!("store: {e}"))
    };
    if let Some(reason) = not_ready {
        let body = Ready {
            status: "not ready",
            reason: Some(reason),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    let degraded = state.access.writable().state().map(|w: NotWritable| {
        format!(
            "store: takes no writes since {}: {}",
            format_utc(w.since_ms),
            w.reason
        )
    });
    let body = Ready {
        status: if degraded.is_some() {
            "degraded"
        } else {
            "ready"
        },
        reason: degraded,
    };
    (StatusCode::OK, Json(body))
}
