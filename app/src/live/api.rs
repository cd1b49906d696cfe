//! Server functions for the first paint of live panels.

use leptos::prelude::*;
use pitwall::telemetry::{Family, Point, Snapshot};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{require, service};

/// One series to fetch: target, family and metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRequest {
    /// The target's name.
    pub target: String,
    /// The family.
    pub family: Family,
    /// The metric.
    pub metric: String,
}

/// The current snapshot (the stream continues from it).
#[server(endpoint = "telemetry_snapshot")]
pub async fn telemetry_snapshot() -> Result<Snapshot, AppError> {
    require(pitwall::access::Role::Viewer)?;
    Ok(service::<pitwall::telemetry::Telemetry>()?
        .snapshot()
        .as_ref()
        .clone())
}

/// The points of each requested series over the last `window_ms` (at most 32 series): the live
/// window at full resolution, and stored bucket averages before it or after a restart.
#[server(endpoint = "series")]
pub async fn series(
    requests: Vec<SeriesRequest>,
    window_ms: u64,
) -> Result<Vec<Vec<Point>>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    if requests.len() > 32 {
        return Err(crate::error::ssr::fail(AppError::Invalid(
            "at most 32 series at once".into(),
        )));
    }
    let telemetry = service::<pitwall::telemetry::Telemetry>()?;
    let since_ms = pitwall::status::now_ms().saturating_sub(window_ms);
    let mut out = Vec::with_capacity(requests.len());
    for r in &requests {
        out.push(
            telemetry
                .range(&r.target, r.family, &r.metric, since_ms)
                .await,
        );
    }
    Ok(out)
}
