//! Server functions for users and the audit log. Each checks the role on the server.

use leptos::prelude::*;
use pitwall::access::{AuditFilter, AuditPage, CurrentUser, Role, UserSummary};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{access, actor, current_user as signed_in, from_access, require};

/// The signed-in user, or `None` on the open pages.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    Ok(signed_in())
}

/// Every console user (viewers may see who has access; never hashes).
#[server(endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    require(Role::Viewer)?;
    access()?.users().await.map_err(from_access)
}

/// Adds a user (admin).
#[server(endpoint = "add_user")]
pub async fn add_user(username: String, password: String, role: Role) -> Result<(), AppError> {
    let actor = actor(Role::Admin)?;
    access()?
        .add_user(&actor, username.trim(), &password, role)
        .await
        .map_err(from_access)
}

/// Changes a user's role (admin).
#[server(endpoint = "set_role")]
pub async fn set_role(username: String, role: Role) -> Result<(), AppError> {
    let actor = actor(Role::Admin)?;
    access()?
        .set_role(&actor, &username, role)
        .await
        .map_err(from_access)
}

/// Sets a user's password (admin); their sessions end.
#[server(endpoint = "set_password")]
pub async fn set_password(username: String, password: String) -> Result<(), AppError> {
    let actor = actor(Role::Admin)?;
    access()?
        .set_password(&actor, &username, &password)
        .await
        .map_err(from_access)
}

/// Removes a user (admin); their sessions end.
#[server(endpoint = "remove_user")]
pub async fn remove_user(username: String) -> Result<(), AppError> {
    let actor = actor(Role::Admin)?;
    access()?
        .remove_user(&actor, &username)
        .await
        .map_err(from_access)
}

/// Lifts a user's sign-in locks (admin): every address's, and the account-wide wait. Audited.
#[server(endpoint = "unlock_user")]
pub async fn unlock_user(username: String) -> Result<(), AppError> {
    let actor = actor(Role::Admin)?;
    access()?
        .unlock_user(&actor, &username)
        .await
        .map_err(from_access)
}

/// A page of the audit log (admin).
#[server(endpoint = "audit_log")]
pub async fn audit_log(filter: AuditFilter) -> Result<AuditPage, AppError> {
    require(Role::Admin)?;
    access()?.audit(&filter).await.map_err(from_access)
}
