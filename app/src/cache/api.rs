//! Server function of the Cache page: a thin reader of the engine's Redis details.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::cache::CacheDetails;
use pitwall::telemetry::Reading;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{fail, require, service};

/// The Redis targets and the details of the one asked for (the first by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheView {
    /// Every Redis target.
    pub targets: Vec<String>,
    /// The chosen target's details, if there is a Redis target.
    pub details: Option<CacheDetails>,
    /// The chosen target's latest live figures (the stream follows on from them).
    pub reading: Option<Reading>,
}

/// Server facts, keys per database, slow log and latency of `target` (default: the first Redis
/// target).
#[server(endpoint = "cache_server", input = GetUrl)]
pub async fn cache_server(target: Option<String>) -> Result<CacheView, AppError> {
    use pitwall::cache::inspect::Caches;
    require(pitwall::access::Role::Viewer)?;
    let caches = service::<Caches>()?;
    let targets = caches.targets();
    let Some(target) = crate::queries::api::chosen(&targets, target) else {
        return Ok(CacheView {
            targets,
            details: None,
            reading: None,
        });
    };
    let details = caches
        .details(&target)
        .await
        .map_err(|e| read_failed(&target, e))?;
    let reading = service::<pitwall::telemetry::Telemetry>()?
        .snapshot()
        .reading(&target, pitwall::telemetry::Family::Redis)
        .cloned();
    Ok(CacheView {
        targets,
        details: Some(details),
        reading,
    })
}

/// The tags of `target`: members, stale members and memory of each (a paced, bounded `SCAN`).
#[server(endpoint = "cache_tags", input = GetUrl)]
pub async fn cache_tags(target: String) -> Result<pitwall::cache::TagRegistry, AppError> {
    use pitwall::cache::inspect::Caches;
    require(pitwall::access::Role::Viewer)?;
    service::<Caches>()?
        .tags(&target)
        .await
        .map_err(|e| read_failed(&target, e))
}

/// A failed read of `target`: an unknown target is the asker's mistake, anything else the
/// server's.
#[cfg(feature = "ssr")]
fn read_failed(target: &str, e: String) -> AppError {
    fail(if e.starts_with("no Redis target") {
        AppError::Invalid(e)
    } else {
        AppError::Server(format!("{target}: {e}"))
    })
}
