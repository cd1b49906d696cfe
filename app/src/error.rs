//! The error every server function returns: typed, so pages can tell "sign in" from "not allowed"
//! from "bad input", with the HTTP status set to match.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use pitwall::access::Role;
use serde::{Deserialize, Serialize};

/// What a server function can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No session (401).
    #[error("Your session has ended. Sign in again.")]
    Unauthorized,
    /// The role does not allow it (403).
    #[error("This needs the {0} role.")]
    Forbidden(Role),
    /// The role does not allow part of what was asked (403); the message names which part.
    #[error("{0}")]
    Denied(String),
    /// A change asked from another site than the console's own (403).
    #[error("Refused: cross-origin requests cannot change anything here.")]
    CrossOrigin,
    /// The input is not acceptable (422); the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The embed token does not open this (401); the message says why.
    #[error("Refused: {0}.")]
    Refused(String),
    /// Something failed on the server (500).
    #[error("Server error: {0}")]
    Server(String),
    /// The console cannot make changes now (503); the message says why.
    #[error("Unavailable: {0}")]
    Unavailable(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Server(value.to_string())
    }
}

/// Server-side helpers for server functions.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::{HeaderValue, StatusCode, header};
    use leptos::prelude::*;
    use leptos::server_fn::ContentType;
    use leptos::server_fn::error::{FromServerFnError, SERVER_FN_ERROR_HEADER};
    use leptos_axum::ResponseOptions;
    use pitwall::access::{Access, Actor, CurrentUser, Role};

    use super::AppError;

    /// The HTTP status that goes with `error`.
    pub fn status(error: &AppError) -> StatusCode {
        match error {
            AppError::Unauthorized | AppError::Refused(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Denied(_) | AppError::CrossOrigin => {
                StatusCode::FORBIDDEN
            }
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Sets the response status that matches `error` and returns it.
    pub fn fail(error: AppError) -> AppError {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.set_status(status(&error));
        }
        error
    }

    /// The answer the server function at `path` would give had it failed with `error`: its
    /// status, and the error encoded as server functions encode theirs, so the page that called
    /// it decodes the typed error. For refusals made before any server function runs.
    pub fn error_response(path: &str, error: &AppError) -> Response {
        let content_type = <<AppError as FromServerFnError>::Encoder as ContentType>::CONTENT_TYPE;
        let mut response = (status(error), error.ser()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(path) = HeaderValue::from_str(path) {
            headers.insert(SERVER_FN_ERROR_HEADER, path);
        }
        response
    }

    /// The signed-in user, if any (the server's guard put them into the request).
    pub fn current_user() -> Option<CurrentUser> {
        use_context::<Parts>().and_then(|p| p.extensions.get::<CurrentUser>().cloned())
    }

    /// The signed-in user if their role allows `needed`; else 401 or 403.
    pub fn require(needed: Role) -> Result<CurrentUser, AppError> {
        match current_user() {
            None => Err(fail(AppError::Unauthorized)),
            Some(user) if !user.role.allows(needed) => Err(fail(AppError::Forbidden(needed))),
            Some(user) => Ok(user),
        }
    }

    /// The signed-in user with `needed`, as the actor of an audited change.
    pub fn actor(needed: Role) -> Result<Actor, AppError> {
        let user = require(needed)?;
        let addr = use_context::<Parts>().and_then(|p| {
            let client = p.extensions.get::<ClientAddr>().map(|c| c.0);
            client.or_else(|| {
                p.extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
        });
        Ok(Actor::user(&user, addr))
    }

    /// The client's address as the server's guard found it (from a trusted proxy, the one its
    /// `X-Forwarded-For` names), for the audit rows of changes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ClientAddr(pub std::net::IpAddr);

    /// An engine handle the server provided.
    pub fn service<T: Clone + Send + Sync + 'static>() -> Result<T, AppError> {
        use_context::<T>()
            .ok_or_else(|| fail(AppError::Server("the console is not fully started".into())))
    }

    /// The access service.
    pub fn access() -> Result<Access, AppError> {
        service::<Access>()
    }

    /// A failure of the console's store, logged with its cause; the page is told no more, unless
    /// the store takes no writes: then why (503).
    pub fn store_failed(err: &pitwall::store::Error) -> AppError {
        tracing::error!("store: {err}");
        match use_context::<Access>().and_then(|a| a.writable().state()) {
            Some(w) => fail(AppError::Unavailable(format!(
                "the console's store has not taken writes since {} ({}); changes wait until it does",
                pitwall::format_utc(w.since_ms),
                w.reason
            ))),
            None => AppError::Server("the console's store failed".into()),
        }
    }

    /// Maps an access-service error to the page error.
    pub fn from_access(e: pitwall::access::Error) -> AppError {
        use pitwall::access::Error as E;
        fail(match e {
            E::Invalid(m) => AppError::Invalid(m),
            E::NoSuchUser(_) | E::Exists(_) => AppError::Invalid(e.to_string()),
            E::Forbidden(role) => AppError::Forbidden(role),
            E::Store(err) => store_failed(&err),
        })
    }
}
