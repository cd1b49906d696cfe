//! Server function of the Alerts page: a thin reader of the alert service's latest judgement.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::alerts::Alert;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{require, service};

/// The alerts as read at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    /// When they were read, Unix ms.
    pub read_at_ms: u64,
    /// Every instance that is not inactive, most urgent first.
    pub alerts: Vec<Alert>,
}

/// Every alert instance that is not inactive, most urgent first, as judged on the latest
/// snapshot.
#[server(endpoint = "alerts_now", input = GetUrl)]
pub async fn alerts_now() -> Result<AlertsView, AppError> {
    use pitwall::alerts::{AlertState, Alerts};
    require(pitwall::access::Role::Viewer)?;
    Ok(AlertsView {
        read_at_ms: pitwall::status::now_ms(),
        alerts: service::<Alerts>()?
            .snapshot()
            .iter()
            .filter(|a| a.state != AlertState::Inactive)
            .cloned()
            .collect(),
    })
}
