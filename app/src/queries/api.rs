//! Server functions of the Queries pages: thin readers of the engine's workload.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::postgres::{Explained, QueryPoint, QueryStats, Sort, WorkloadPage};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{fail, require, service};

/// The windows on offer: URL value, label, length in ms. The first is the default.
pub const WINDOWS: [(&str, &str, u64); 5] = [
    ("15m", "15 min", 15 * 60_000),
    ("5m", "5 min", 5 * 60_000),
    ("1h", "1 hour", 3_600_000),
    ("6h", "6 hours", 6 * 3_600_000),
    ("24h", "24 hours", 24 * 3_600_000),
];

/// The window named `key`.
pub fn window(key: &str) -> Option<(&'static str, &'static str, u64)> {
    WINDOWS.iter().find(|w| w.0 == key).copied()
}

/// The PostgreSQL targets and the statements of the one asked for (the first by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadView {
    /// Every PostgreSQL target.
    pub targets: Vec<String>,
    /// The chosen target's statements, if there is a PostgreSQL target.
    pub page: Option<WorkloadPage>,
}

#[cfg(feature = "ssr")]
fn window_ms(key: &str) -> Result<u64, AppError> {
    window(key).map(|w| w.2).ok_or_else(|| {
        fail(AppError::Invalid(format!(
            "unknown window {key:?}: use one of {}",
            WINDOWS.map(|w| w.0).join(", ")
        )))
    })
}

/// The target asked for, or else the first PostgreSQL target.
#[cfg(feature = "ssr")]
pub(crate) fn chosen(targets: &[String], asked: Option<String>) -> Option<String> {
    asked
        .filter(|t| !t.is_empty())
        .or_else(|| targets.first().cloned())
}

#[cfg(feature = "ssr")]
fn unknown_target(target: &str) -> AppError {
    fail(AppError::Invalid(format!(
        "no PostgreSQL target is named {target:?}"
    )))
}

/// The statements of `target` (default: the first PostgreSQL target) over `window`, by `sort`.
#[server(endpoint = "workload", input = GetUrl)]
pub async fn workload(
    target: Option<String>,
    window: String,
    sort: Sort,
) -> Result<WorkloadView, AppError> {
    use pitwall::postgres::workload::Workloads;
    require(pitwall::access::Role::Viewer)?;
    let window_ms = window_ms(&window)?;
    let workloads = service::<Workloads>()?;
    let targets = workloads.targets();
    let Some(target) = chosen(&targets, target) else {
        return Ok(WorkloadView {
            targets,
            page: None,
        });
    };
    let page = workloads
        .page(&target, window_ms, sort)
        .ok_or_else(|| unknown_target(&target))?;
    Ok(WorkloadView {
        targets,
        page: Some(page),
    })
}

/// One statement of `target` over `window`, with a point per minute.
#[server(endpoint = "query_detail", input = GetUrl)]
pub async fn query_detail(
    target: String,
    queryid: i64,
    window: String,
) -> Result<(QueryStats, Vec<QueryPoint>), AppError> {
    use pitwall::postgres::workload::Workloads;
    require(pitwall::access::Role::Viewer)?;
    let window_ms = window_ms(&window)?;
    let workloads = service::<Workloads>()?;
    if !workloads.targets().contains(&target) {
        return Err(unknown_target(&target));
    }
    workloads
        .statement(&target, queryid, window_ms)
        .ok_or_else(|| {
            fail(AppError::Invalid(format!(
                "{target} has no statement {queryid} in the last day"
            )))
        })
}

/// The plan of statement `queryid` of `target`; `analyze` runs it (admins only; statements that
/// read and have no parameters only).
#[server(endpoint = "explain_query")]
pub async fn explain_query(
    target: String,
    queryid: i64,
    analyze: bool,
) -> Result<Explained, AppError> {
    use pitwall::postgres::workload::Workloads;
    require(if analyze {
        pitwall::access::Role::Admin
    } else {
        pitwall::access::Role::Viewer
    })?;
    service::<Workloads>()?
        .explain(&target, queryid, analyze)
        .await
        .map_err(|e| fail(AppError::Invalid(e)))
}

/// Index suggestions for the slow statements of `target` over `window`, and what the advisor
/// concluded about each.
#[server(endpoint = "index_advice", input = GetUrl)]
pub async fn index_advice(
    target: String,
    window: String,
) -> Result<pitwall::postgres::Advice, AppError> {
    use pitwall::postgres::workload::Workloads;
    require(pitwall::access::Role::Viewer)?;
    let window_ms = window_ms(&window)?;
    service::<Workloads>()?
        .advice(&target, window_ms)
        .await
        .map_err(|e| fail(AppError::Server(e)))
}

/// Unused, duplicate and invalid indexes of `target`, each with its fix.
#[server(endpoint = "index_health", input = GetUrl)]
pub async fn index_health(
    target: String,
) -> Result<Vec<pitwall::postgres::IndexFinding>, AppError> {
    use pitwall::postgres::workload::Workloads;
    require(pitwall::access::Role::Viewer)?;
    service::<Workloads>()?
        .index_health(&target)
        .await
        .map_err(|e| fail(AppError::Server(e)))
}
