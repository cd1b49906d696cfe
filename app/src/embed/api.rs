//! Server functions of the embeddable panels: the panel data (by session or embed token), and the
//! catalogue and tokens on the Embeds page.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::embed::{Panel, TokenSummary};
use pitwall::telemetry::Point;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{actor, current_user, fail, require, service, store_failed};

/// One panel's data over its range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelData {
    /// What is drawn.
    pub panel: Panel,
    /// The points in the range, oldest first.
    pub points: Vec<Point>,
    /// The range, Unix ms.
    pub from_ms: u64,
    /// The range, Unix ms.
    pub to_ms: u64,
}

/// The panels on offer and who may frame them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    /// Every panel, the console's machine first.
    pub panels: Vec<Panel>,
    /// Origins allowed to frame them (none: framing is refused everywhere).
    pub frame_ancestors: Vec<String>,
}

/// The tokens minted, as of a moment (their state depends on it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenList {
    /// When the list was read, Unix ms.
    pub at_ms: u64,
    /// Newest first.
    pub tokens: Vec<TokenSummary>,
}

/// A token just minted: shown once, never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Minted {
    /// What the console keeps of it.
    pub summary: TokenSummary,
    /// The token itself.
    pub token: String,
}

/// Every panel that can be embedded, for the configured targets.
#[cfg(feature = "ssr")]
fn catalogue() -> Result<Vec<Panel>, AppError> {
    let board = service::<pitwall::status::StatusBoard>()?;
    let targets: Vec<_> = board
        .snapshot()
        .iter()
        .map(|t| (t.name.clone(), t.kind))
        .collect();
    let thresholds = service::<pitwall::telemetry::Thresholds>()?;
    Ok(pitwall::embed::catalogue(&targets, &thresholds))
}

#[cfg(feature = "ssr")]
fn from_embed(e: pitwall::embed::Error) -> AppError {
    use pitwall::embed::Error as E;
    fail(match e {
        E::Invalid(m) => AppError::Invalid(m),
        E::NoSuchToken(_) => AppError::Invalid(e.to_string()),
        E::Forbidden(role) => AppError::Forbidden(role),
        E::Store(err) => store_failed(&err),
    })
}

/// The points of panel `id` from `from` to `to` (`now`, `now-6h`, or Unix ms), for a signed-in
/// viewer or the holder of an embed token that opens it. Read-only; a GET, so a refreshing panel
/// costs one cheap request to the console (never to the target).
#[server(endpoint = "embed_panel", input = GetUrl)]
pub async fn embed_panel(
    id: String,
    from: String,
    to: String,
    token: Option<String>,
) -> Result<PanelData, AppError> {
    use pitwall::embed::{EmbedQuery, Embeds};
    use pitwall::status::now_ms;

    let now = now_ms();
    if current_user().is_none() {
        let Some(token) = token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(fail(AppError::Refused(
                "this panel opens with an embed token or a Pitwall session".into(),
            )));
        };
        let grant = service::<Embeds>()?
            .verify(token, now)
            .await
            .map_err(|r| fail(AppError::Refused(r.to_string())))?;
        grant
            .opens(&id)
            .map_err(|r| fail(AppError::Refused(r.to_string())))?;
    }
    let query = EmbedQuery::parse(|k| match k {
        "from" => Some(from.as_str()),
        "to" => Some(to.as_str()),
        _ => None,
    })
    .map_err(|m| fail(AppError::Invalid(m)))?;
    let panel = catalogue()?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| fail(AppError::Invalid(format!("there is no panel `{id}`"))))?;
    let (from_ms, to_ms) = (query.from.resolve(now), query.to.resolve(now));
    let telemetry = service::<pitwall::telemetry::Telemetry>()?;
    let mut points = telemetry
        .range(&panel.target, panel.family, &panel.metric, from_ms)
        .await;
    points.retain(|(t, _)| *t <= to_ms);
    Ok(PanelData {
        panel,
        points,
        from_ms,
        to_ms,
    })
}

/// Every panel that can be embedded, and the origins that may frame them (viewer).
#[server(endpoint = "embed_catalogue")]
pub async fn embed_catalogue() -> Result<Catalogue, AppError> {
    require(pitwall::access::Role::Viewer)?;
    Ok(Catalogue {
        panels: catalogue()?,
        frame_ancestors: service::<pitwall::config::EmbedPolicy>()?.frame_ancestors,
    })
}

/// Every embed token minted (admin).
#[server(endpoint = "embed_tokens")]
pub async fn embed_tokens() -> Result<TokenList, AppError> {
    require(pitwall::access::Role::Admin)?;
    let tokens = service::<pitwall::embed::Embeds>()?
        .list()
        .await
        .map_err(from_embed)?;
    Ok(TokenList {
        at_ms: pitwall::status::now_ms(),
        tokens,
    })
}

/// Mints an embed token (admin) for `scope` (a panel id, or `*` for every panel) that lives
/// `lifetime` (such as `30d`). Audited.
#[server(endpoint = "mint_embed_token")]
pub async fn mint_embed_token(
    label: String,
    scope: String,
    lifetime: String,
) -> Result<Minted, AppError> {
    use pitwall::embed::Scope;

    let actor = actor(pitwall::access::Role::Admin)?;
    let scope = if scope == "*" {
        Scope::All
    } else if catalogue()?.iter().any(|p| p.id == scope) {
        Scope::Panel(scope)
    } else {
        return Err(fail(AppError::Invalid(format!(
            "there is no panel `{scope}`"
        ))));
    };
    let lifetime = pitwall::format::parse_duration(lifetime.trim())
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| {
            fail(AppError::Invalid(format!(
                "the lifetime must be a duration such as `12h`, `30d` or `90d`, not `{lifetime}`"
            )))
        })?;
    let (summary, token) = service::<pitwall::embed::Embeds>()?
        .mint(&actor, &label, scope, lifetime)
        .await
        .map_err(from_embed)?;
    Ok(Minted {
        summary,
        token: token.expose().to_owned(),
    })
}

/// Revokes an embed token (admin); panels opened with it stop at their next refresh. Audited.
#[server(endpoint = "revoke_embed_token")]
pub async fn revoke_embed_token(id: String) -> Result<(), AppError> {
    let actor = actor(pitwall::access::Role::Admin)?;
    service::<pitwall::embed::Embeds>()?
        .revoke(&actor, &id)
        .await
        .map_err(from_embed)
}
