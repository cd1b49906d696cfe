//! Server functions of the Resources page.

use leptos::prelude::*;
use pitwall::telemetry::Thresholds;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{require, service};

/// The configured recommendation thresholds.
#[server(endpoint = "resource_thresholds")]
pub async fn resource_thresholds() -> Result<Thresholds, AppError> {
    require(pitwall::access::Role::Viewer)?;
    service::<Thresholds>()
}
