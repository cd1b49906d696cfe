//! Embed tokens: minted by an admin, signed with the console's own key (HMAC-SHA256), expiring,
//! read-only and scoped to one panel or all of them. The token carries its id, scope and expiry;
//! the store keeps a row per token so it can be listed and revoked, never the token itself.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Scope, TokenSummary};
use crate::access::{Actor, Role};
use crate::format_utc;
use crate::status::now_ms;
use crate::store::{self, Store};

/// The name of the signing key in the store.
const KEY_NAME: &str = "embed-token-signing";
/// What every token starts with (and its format version).
const PREFIX: &str = "pwe1";
/// The longest lifetime a token may have.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 86_400);
/// The shortest (a short-lived token suits a one-off screen share or a test).
pub const MIN_LIFETIME: Duration = Duration::from_secs(10);

/// Why minting, listing or revoking failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable; the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The actor's role does not allow this.
    #[error("this needs the {0} role")]
    Forbidden(Role),
    /// There is no such active token.
    #[error("no active embed token with id `{0}`")]
    NoSuchToken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a token does not open a panel. Each reads as the page's explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a token this console could have minted.
    #[error("the embed token is not valid")]
    Malformed,
    /// Its signature does not match (altered, or minted by another console).
    #[error("the embed token's signature does not match")]
    BadSignature,
    /// It expired.
    #[error("the embed token expired at {}", format_utc(*.0))]
    Expired(u64),
    /// An admin revoked it.
    #[error("the embed token was revoked at {}", format_utc(*.0))]
    Revoked(u64),
    /// It does not open this panel.
    #[error("the embed token opens {0} only")]
    OtherPanel(Scope),
    /// The store could not be asked whether it was revoked.
    #[error("the embed token cannot be checked right now")]
    Unavailable,
}

/// What a valid token grants: read-only access to the panels in its scope until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's id.
    pub id: String,
    /// The panels it opens.
    pub scope: Scope,
    /// Unix ms.
    pub expires_at_ms: u64,
}

impl Grant {
    /// The grant for `panel_id`, or why not.
    pub fn opens(&self, panel_id: &str) -> std::result::Result<(), Refusal> {
        if self.scope.opens(panel_id) {
            Ok(())
        } else {
            Err(Refusal::OtherPanel(self.scope.clone()))
        }
    }
}

/// A freshly minted token: shown once, never stored, never printed by `Debug`.
#[derive(Clone)]
pub struct EmbedToken(String);

impl EmbedToken {
    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The embed path of `panel_id` opened with this token: `/embed/{panel}?token=…`.
    pub fn path(&self, panel_id: &str) -> String {
        super::token_path(panel_id, &self.0)
    }
}

impl fmt::Debug for EmbedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmbedToken(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    id: String,
    scope: Scope,
    exp: u64,
}

/// Mints, checks, lists and revokes embed tokens.
#[derive(Clone)]
pub struct Embeds {
    store: Arc<dyn Store>,
    key: Arc<[u8]>,
}

impl Embeds {
    /// Loads the signing key from the store, creating it on first use.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        let key = store.key(KEY_NAME, &fresh).await?;
        Ok(Self {
            store,
            key: key.into(),
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// Mints a token for `scope` that lives `lifetime`, recorded (with its audit row) as minted
    /// by `actor`, who must be an admin.
    pub async fn mint(
        &self,
        actor: &Actor,
        label: &str,
        scope: Scope,
        lifetime: Duration,
    ) -> Result<(TokenSummary, EmbedToken)> {
        if !actor.role.allows(Role::Admin) {
            return Err(Error::Forbidden(Role::Admin));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 100 {
            return Err(Error::Invalid(
                "the label must be 1 to 100 characters, such as the portal that uses the token"
                    .into(),
            ));
        }
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
            return Err(Error::Invalid(format!(
                "the lifetime must be between {} and {}",
                crate::format::format_duration(MIN_LIFETIME.as_millis() as u64),
                crate::format::format_duration(MAX_LIFETIME.as_millis() as u64)
            )));
        }
        let mut id = [0u8; 9];
        rand::rng().fill_bytes(&mut id);
        let now = now_ms();
        let summary = TokenSummary {
            id: URL_SAFE_NO_PAD.encode(id),
            label: label.to_owned(),
            scope,
            created_by: actor.name.clone(),
            created_at_ms: now,
            expires_at_ms: now + lifetime.as_millis() as u64,
            revoked_at_ms: None,
        };
        let claims = Claims {
            id: summary.id.clone(),
            scope: summary.scope.clone(),
            exp: summary.expires_at_ms,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims encode"));
        let signed = format!("{PREFIX}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let token = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let audit = actor.audit(
            "embed.mint",
            Some(&summary.id),
            serde_json::json!({
                "label": summary.label,
                "scope": summary.scope.to_string(),
                "expires": format_utc(summary.expires_at_ms),
            }),
            "ok",
        );
        self.store.insert_embed_token(&summary, &audit).await?;
        Ok((summary, EmbedToken(token)))
    }

    /// What `token` grants at `now_ms`, or why it grants nothing. The signature and expiry are
    /// checked first; only a genuine, unexpired token costs a store lookup (for revocation).
    pub async fn verify(&self, token: &str, now_ms: u64) -> std::result::Result<Grant, Refusal> {
        let claims = self.claims(token)?;
        if claims.exp <= now_ms {
            return Err(Refusal::Expired(claims.exp));
        }
        match self.store.embed_token(&claims.id).await {
            Ok(Some(row)) => match row.revoked_at_ms {
                Some(at) => Err(Refusal::Revoked(at)),
                None => Ok(Grant {
                    id: claims.id,
                    scope: claims.scope,
                    expires_at_ms: claims.exp,
                }),
            },
            // Signed by this console's key but unknown to its store: a store restored from an
            // older backup. Refuse rather than trust what cannot be revoked.
            Ok(None) => Err(Refusal::Malformed),
            Err(e) => {
                tracing::warn!("checking an embed token: {e}");
                Err(Refusal::Unavailable)
            }
        }
    }

    fn claims(&self, token: &str) -> std::result::Result<Claims, Refusal> {
        let (signed, signature) = token.rsplit_once('.').ok_or(Refusal::Malformed)?;
        let payload = signed
            .strip_prefix(PREFIX)
            .and_then(|p| p.strip_prefix('.'))
            .ok_or(Refusal::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refusal::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| Refusal::Malformed)
    }

    /// Every token minted, newest first.
    pub async fn list(&self) -> Result<Vec<TokenSummary>> {
        Ok(self.store.embed_tokens().await?)
    }

    /// Revokes the token `id` (an admin only); it stops working at once.
    pub async fn revoke(&self, actor: &Actor, id: &str) -> Result<()> {
        if !actor.role.allows(Role::Admin) {
            return Err(Error::Forbidden(Role::Admin));
        }
        let audit = actor.audit("embed.revoke", Some(id), serde_json::json!({}), "ok");
        if self.store.revoke_embed_token(id, now_ms(), &audit).await? {
            Ok(())
        } else {
            Err(Error::NoSuchToken(id.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> (tempfile::TempDir, Embeds) {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(dir.path()).await.unwrap();
        (dir, Embeds::open(store).await.unwrap())
    }

    fn admin() -> Actor {
        Actor {
            name: "ada".into(),
            role: Role::Admin,
            client_addr: None,
        }
    }

    #[tokio::test]
    async fn a_minted_token_opens_its_panel_until_it_expires_or_is_revoked() {
        let (_dir, embeds) = fresh().await;
        let scope = Scope::Panel("host/cpu".into());
        let (summary, token) = embeds
            .mint(&admin(), "portal", scope.clone(), Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(token.expose().starts_with("pwe1."));
        assert!(!format!("{token:?}").contains("pwe1"));
        let now = summary.created_at_ms;
        let grant = embeds.verify(token.expose(), now).await.unwrap();
        assert_eq!(grant.scope, scope);
        assert_eq!(grant.opens("host/cpu"), Ok(()));
        assert_eq!(grant.opens("host/memory"), Err(Refusal::OtherPanel(scope)));
        assert_eq!(
            embeds.verify(token.expose(), summary.expires_at_ms).await,
            Err(Refusal::Expired(summary.expires_at_ms))
        );
        embeds.revoke(&admin(), &summary.id).await.unwrap();
        assert!(matches!(
            embeds.verify(token.expose(), now).await,
            Err(Refusal::Revoked(_))
        ));
        assert!(matches!(
            embeds.revoke(&admin(), &summary.id).await,
            Err(Error::NoSuchToken(_))
        ));
        let listed = embeds.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state(now), "revoked");
    }

    #[tokio::test]
    async fn altered_or_foreign_tokens_are_refused() {
        let (_dir, embeds) = fresh().await;
        let (summary, token) = embeds
            .mint(&admin(), "portal", Scope::All, Duration::from_secs(3600))
            .await
            .unwrap();
        let now = summary.created_at_ms;
        // Widen the expiry in the payload, keep the signature.
        let parts: Vec<&str> = token.expose().split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"id": summary.id, "scope": "all", "exp": u64::MAX}).to_string(),
        );
        let altered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            embeds.verify(&altered, now).await,
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            embeds.verify("nonsense", now).await,
            Err(Refusal::Malformed)
        );
        // Another console's key signs differently.
        let (_other_dir, other) = fresh().await;
        assert_eq!(
            other.verify(token.expose(), now).await,
            Err(Refusal::BadSignature)
        );
    }

    #[tokio::test]
    async fn only_admins_mint_and_the_key_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let embeds = Embeds::open(store::open(dir.path()).await.unwrap())
            .await
            .unwrap();
        let viewer = Actor {
            role: Role::Viewer,
            ..admin()
        };
        assert!(matches!(
            embeds
                .mint(&viewer, "x", Scope::All, Duration::from_secs(3600))
                .await,
            Err(Error::Forbidden(Role::Admin))
        ));
        assert!(matches!(
            embeds
                .mint(&admin(), " ", Scope::All, Duration::from_secs(3600))
                .await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            embeds
                .mint(&admin(), "x", Scope::All, Duration::from_secs(1))
                .await,
            Err(Error::Invalid(_))
        ));
        let (summary, token) = embeds
            .mint(&admin(), "x", Scope::All, Duration::from_secs(3600))
            .await
            .unwrap();
        let reopened = Embeds::open(store::open(dir.path()).await.unwrap())
            .await
            .unwrap();
        assert!(
            reopened
                .verify(token.expose(), summary.created_at_ms)
                .await
                .is_ok()
        );
    }
}
