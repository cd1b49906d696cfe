//! Server functions of the Overview.

use leptos::prelude::*;
use pitwall::TargetStatus;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{access, actor, from_access, require, service};

/// The latest status of every configured target, from the shared status board (no extra load on
/// the targets however many pages are open).
#[server(endpoint = "target_statuses")]
pub async fn target_statuses() -> Result<Vec<TargetStatus>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    let board = service::<pitwall::status::StatusBoard>()?;
    Ok(board.snapshot().as_ref().clone())
}

/// Checks every target now instead of at its next tick (operator). Audited.
#[server(endpoint = "recheck_targets")]
pub async fn recheck_targets() -> Result<(), AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    service::<pitwall::status::StatusBoard>()?.recheck();
    access()?
        .record(&actor, "targets.recheck", None, serde_json::json!({}), "ok")
        .await
        .map_err(from_access)
}
