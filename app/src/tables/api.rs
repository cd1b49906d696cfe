//! Server function of the Tables page: a thin reader of the engine's health panels.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::postgres::health::DatabaseHealth;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{fail, require, service};

/// The PostgreSQL targets and the health of the one asked for (the first by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// Every PostgreSQL target.
    pub targets: Vec<String>,
    /// The chosen target's panels, if there is a PostgreSQL target.
    pub health: Option<DatabaseHealth>,
}

/// Tables and maintenance of `target` (default: the first PostgreSQL target).
#[server(endpoint = "tables_health", input = GetUrl)]
pub async fn tables_health(target: Option<String>) -> Result<HealthView, AppError> {
    use pitwall::postgres::health::HealthSettings;
    use pitwall::postgres::workload::Workloads;
    require(pitwall::access::Role::Viewer)?;
    let workloads = service::<Workloads>()?;
    let targets = workloads.targets();
    let Some(target) = crate::queries::api::chosen(&targets, target) else {
        return Ok(HealthView {
            targets,
            health: None,
        });
    };
    let health = workloads
        .health(&target, HealthSettings::default())
        .await
        .map_err(|e| fail(AppError::Invalid(e)))?;
    Ok(HealthView {
        targets,
        health: Some(health),
    })
}
