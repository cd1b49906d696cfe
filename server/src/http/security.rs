//! Cross-site request forgery protection and security headers.
//!
//! Server functions have no CSRF protection of their own, so every state-changing request must
//! come from the console's own origin: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to the
//! console's. GET never changes anything.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pitwall_app::error::AppError;
use pitwall_app::error::ssr::error_response;

/// Refuses state-changing requests that do not come from the console's own origin (403; under
/// `/api/` with the typed `AppError::CrossOrigin`, as a server function answers its errors).
pub async fn same_origin_only(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || same_origin(req.headers())
    {
        return next.run(req).await;
    }
    let path = req.uri().path();
    tracing::warn!(path, "refused a cross-origin {} request", req.method());
    if path.starts_with("/api/") {
        return error_response(path, &AppError::CrossOrigin);
    }
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Forbidden: cross-origin requests cannot change anything here.",
    )
        .into_response()
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    origin.eq_ignore_ascii_case(&format!("{proto}://{host}"))
}

/// The policy for everything that is not a page (JSON, assets): nothing may run, nothing may frame.
/// Pages send their own, with the nonce of their hydration script (see the app's shell).
pub const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers every response carries unless it set its own.
pub fn default_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn same_origin_rules() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://h:1"),
            ("host", "h:1")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "http://h:1"),
            ("host", "h:1")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil:1"),
            ("host", "h:1")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "https://h"),
            ("host", "h"),
            ("x-forwarded-proto", "https")
        ])));
        assert!(
            !same_origin(&headers(&[("host", "h:1")])),
            "no Origin and no Sec-Fetch-Site"
        );
    }
}
