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

/// A target's tags, as read once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsView {
    /// The Redis target.
    pub target: String,
    /// Its tags.
    pub registry: pitwall::cache::TagRegistry,
}

/// The Redis target asked for, or the first; `None` without one.
#[cfg(feature = "ssr")]
fn chosen_target(target: Option<String>) -> Result<Option<String>, AppError> {
    use pitwall::cache::inspect::Caches;
    Ok(crate::queries::api::chosen(
        &service::<Caches>()?.targets(),
        target,
    ))
}

/// The tags of `target` (default: the first Redis target) whose names start with `start`
/// (default: every tag): members, stale members and memory of each (a paced, bounded `SCAN`);
/// `None` without a Redis target.
#[server(endpoint = "cache_tags", input = GetUrl)]
pub async fn cache_tags(
    target: Option<String>,
    start: Option<String>,
) -> Result<Option<TagsView>, AppError> {
    use pitwall::cache::inspect::Caches;
    require(pitwall::access::Role::Viewer)?;
    let Some(target) = chosen_target(target)? else {
        return Ok(None);
    };
    let start = start.unwrap_or_default();
    pitwall::cache::tags::check_start(&start).map_err(|e| fail(AppError::Invalid(e)))?;
    let registry = service::<Caches>()?
        .tags(&target, &start)
        .await
        .map_err(|e| read_failed(&target, e))?;
    Ok(Some(TagsView { target, registry }))
}

/// The newest finished keyspace analysis of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyspaceAnalysis {
    /// Its job.
    pub job: i64,
    /// When it finished, Unix ms.
    pub finished_at_ms: u64,
    /// What it found.
    pub report: pitwall::cache::keyspace::KeyspaceReport,
}

/// A target's newest keyspace analysis, if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyspaceView {
    /// The Redis target.
    pub target: String,
    /// Its newest finished analysis.
    pub latest: Option<KeyspaceAnalysis>,
}

/// The newest successful `analyze_keyspace` job of `target` (default: the first Redis target);
/// `None` without a Redis target.
#[server(endpoint = "cache_keyspace", input = GetUrl)]
pub async fn cache_keyspace(target: Option<String>) -> Result<Option<KeyspaceView>, AppError> {
    use pitwall::jobs::{JobFilter, JobState, Jobs};
    require(pitwall::access::Role::Viewer)?;
    let Some(target) = chosen_target(target)? else {
        return Ok(None);
    };
    let page = service::<Jobs>()?
        .page(&JobFilter {
            kind: Some("analyze_keyspace".into()),
            state: Some(JobState::Succeeded),
            target: Some(target.clone()),
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| fail(AppError::Server(e.to_string())))?;
    let latest = page.rows.into_iter().next().and_then(|job| {
        Some(KeyspaceAnalysis {
            job: job.id,
            finished_at_ms: job.finished_at_ms?,
            report: serde_json::from_value(job.report?).ok()?,
        })
    });
    Ok(Some(KeyspaceView { target, latest }))
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
