//! `GET /health`: the console's own store and each target, with status and latency.
//!
//! It answers 200 whenever the console itself works, even with every target down: the console
//! must stay up (and say so) during the incident it shows. Target figures come from the status
//! board, so a health check never adds load to the targets.

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

#[derive(Serialize)]
struct StoreHealth {
    backend: &'static str,
    status: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let started = Instant::now();
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 2 s".to_owned()),
    };
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
