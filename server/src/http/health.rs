//! `GET /health`: the console's own store and each target, with status and latency.
//!
//! It answers 200 whenever the console itself works, even with every target down: the console
//! must stay up (and say so) during the incident it shows. Target figures come from the status
//! board, so a health check never adds load to the targets.
//!
//! `GET /ready`: whether this console should get traffic: its store answers and it is not
//! shutting down. It never looks at the targets, so a load balancer does not take every console
//! out because a watched database is down.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pitwall::TargetStatus;
use serde::Serialize;

use super::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    store: StoreHealth,
    targets: Vec<TargetStatus>,
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
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (latency_ms, error) = ping(&state).await;
    let ok = error.is_none();
    let body = Health {
        status: if ok { "ok" } else { "error" },
        version: env!("CARGO_PKG_VERSION"),
        store: StoreHealth {
            backend: state.store.backend(),
            status: if ok { "up" } else { "down" },
            latency_ms,
            error,
        },
        targets: state.board.snapshot().as_ref().clone(),
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
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
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let reason = if *state.stopping.borrow() {
        Some("shutting down".to_owned())
    } else {
        ping(&state).await.1.map(|e| format!("store: {e}"))
    };
    match reason {
        None => (
            StatusCode::OK,
            Json(Ready {
                status: "ready",
                reason: None,
            }),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Ready {
                status: "not ready",
                reason: Some(reason),
            }),
        ),
    }
}
