//! Sign-in, first-run setup, users and the audit log.

pub mod api;
mod audit;
mod login;
mod users;

pub use audit::{AuditPage, AuditTable};
pub use login::{LoginPage, SetupPage};
pub use users::UsersPage;

use leptos::prelude::*;
use pitwall::access::{CurrentUser, Role};

/// The signed-in user, loaded once per page load and shared through context.
#[derive(Clone, Copy)]
pub struct Session(pub Resource<Result<Option<CurrentUser>, crate::error::AppError>>);

impl Session {
    /// Provides the session to every page below.
    pub fn provide() {
        provide_context(Session(Resource::new(|| (), |_| api::whoami())));
    }

    /// The session from context.
    pub fn get() -> Session {
        expect_context::<Session>()
    }
}

/// Why the signed-in user may not do what `needed` allows, or `None` if they may.
pub fn missing_role(user: Option<&CurrentUser>, needed: Role) -> Option<String> {
    match user {
        Some(u) if u.role.allows(needed) => None,
        Some(u) => Some(format!(
            "This needs the {needed} role; you are signed in as {} ({}).",
            u.username, u.role
        )),
        None => Some("Sign in first.".into()),
    }
}
