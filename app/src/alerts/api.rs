//! Server functions of the Alerts page and the banner: thin callers of the on-call service.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::alerts::{Episode, OnCallView};
use pitwall::telemetry::Point;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{actor, fail, require, service, store_failed};

/// Every alert instance that is not inactive, most urgent first, with its acknowledgement and
/// silence, and the silences.
#[server(endpoint = "alerts_now", input = GetUrl)]
pub async fn alerts_now() -> Result<OnCallView, AppError> {
    require(pitwall::access::Role::Viewer)?;
    service::<pitwall::alerts::OnCall>()?
        .view()
        .await
        .map_err(from_oncall)
}

/// One critical alert firing, for the banner on every page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The rule.
    pub rule: String,
    /// The target.
    pub target: String,
    /// Firing since, Unix ms.
    pub since_ms: u64,
    /// Whether someone acknowledged it.
    pub acknowledged: bool,
}

/// The critical alerts firing and not silenced. The banner sits on every page, the sign-in page
/// too: rendering it for a visitor who is not signed in gives none (and leaves the page's status
/// alone); over HTTP the access guard refuses such a visitor first.
#[server(endpoint = "critical_alerts", input = GetUrl)]
pub async fn critical_alerts() -> Result<Vec<Page>, AppError> {
    if crate::error::ssr::current_user().is_none() {
        return Ok(Vec::new());
    }
    let view = service::<pitwall::alerts::OnCall>()?
        .view()
        .await
        .map_err(from_oncall)?;
    Ok(view
        .alerts
        .into_iter()
        .filter(|a| a.pages())
        .map(|a| Page {
            acknowledged: a.ack.is_some(),
            rule: a.alert.rule,
            target: a.alert.target,
            since_ms: a.alert.since_ms,
        })
        .collect())
}

/// Acknowledges the firing alert `key` with `comment` (operators and admins).
#[server(endpoint = "ack_alert")]
pub async fn ack_alert(key: String, comment: String) -> Result<(), AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    service::<pitwall::alerts::OnCall>()?
        .ack(&actor, &key, &comment)
        .await
        .map_err(from_oncall)
}

/// Silences the alerts matching `matchers` (`label=value, …`) for `lasting` (such as `2h`),
/// with `comment` (operators and admins); returns the silence's number.
#[server(endpoint = "silence_alerts")]
pub async fn silence_alerts(
    matchers: String,
    lasting: String,
    comment: String,
) -> Result<i64, AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    let matchers =
        pitwall::alerts::Matcher::parse_list(&matchers).map_err(|m| fail(AppError::Invalid(m)))?;
    let lasting = pitwall::alerts::parse_duration(lasting.trim()).ok_or_else(|| {
        fail(AppError::Invalid(format!(
            "`{}` is not a duration: write it like 30m, 2h or 1d",
            lasting.trim()
        )))
    })?;
    service::<pitwall::alerts::OnCall>()?
        .silence(&actor, matchers, lasting, &comment)
        .await
        .map_err(from_oncall)
}

/// Ends silence `id` now (operators and admins).
#[server(endpoint = "expire_silence")]
pub async fn expire_silence(id: i64) -> Result<(), AppError> {
    let actor = actor(pitwall::access::Role::Operator)?;
    service::<pitwall::alerts::OnCall>()?
        .expire(&actor, id)
        .await
        .map_err(from_oncall)
}

/// Firing episodes, newest first, 50 at a time: before episode `before` when given.
#[server(endpoint = "alert_history", input = GetUrl)]
pub async fn alert_history(before: Option<i64>) -> Result<Vec<Episode>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    service::<pitwall::alerts::OnCall>()?
        .history(before, 50)
        .await
        .map_err(from_oncall)
}

/// The points of one series of `target` from an hour before `at_ms` until an hour after (or
/// now): the chart of an alert at its moment.
#[server(endpoint = "alert_chart", input = GetUrl)]
pub async fn alert_chart(
    target: String,
    family: String,
    metric: String,
    at_ms: u64,
) -> Result<Vec<Point>, AppError> {
    require(pitwall::access::Role::Viewer)?;
    let family = pitwall::telemetry::Family::parse(&family)
        .ok_or_else(|| fail(AppError::Invalid(format!("`{family}` is not a family"))))?;
    let from = at_ms.saturating_sub(3_600_000);
    let to = at_ms.saturating_add(3_600_000);
    let points = service::<pitwall::telemetry::Telemetry>()?
        .range(&target, family, &metric, from)
        .await;
    Ok(points.into_iter().filter(|p| p.0 <= to).collect())
}

#[cfg(feature = "ssr")]
fn from_oncall(e: pitwall::alerts::OnCallError) -> AppError {
    use pitwall::alerts::OnCallError as E;
    fail(match e {
        E::Forbidden(role) => AppError::Forbidden(role),
        E::Invalid(m) => AppError::Invalid(m),
        E::NotFiring(_) | E::NoSuchSilence(_) => AppError::Invalid(e.to_string()),
        E::Store(err) => store_failed(&err),
    })
}
