//! Cross-site request forgery protection, DNS-rebinding protection, the refusal of changes while
//! the store takes no writes, and security headers.
//!
//! Server functions have no CSRF protection of their own, so every state-changing request must
//! come from the console's own origin: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to the
//! console's. GET never changes anything.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pitwall::access::Access;
use pitwall::format_utc;
use pitwall_app::error::AppError;
use pitwall_app::error::ssr::error_response;

/// Refuses requests whose `Host` is not one of the console's names (421): a page on another
/// site whose name was made to resolve to the console (DNS rebinding) names that site. IP
/// addresses and `localhost` are always answered (rebinding needs a name).
pub async fn known_host(State(hosts): State<Arc<[String]>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Bad request: no Host header.",
        )
            .into_response();
    };
    if host_allowed(host, &hosts) {
        return next.run(req).await;
    }
    tracing::warn!(host, "refused a request for an unknown host name");
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "Refused: `{}` is not one of this console's host names. Add it to `[http] hosts` in pitwall.toml to reach the console by that name.",
            host.chars().take(253).collect::<String>()
        ),
    )
        .into_response()
}

/// Whether `host` (a `Host` header: a name or address, maybe with a port) is an IP address,
/// `localhost`, or one of `names`.
fn host_allowed(host: &str, names: &[String]) -> bool {
    if host.starts_with('[') {
        // An IPv6 literal, `[::1]:3000`.
        return host
            .split_once(']')
            .is_some_and(|(ip, _)| ip[1..].parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Server functions called with POST that change nothing: they go on while the store takes no
/// writes. Every other non-GET request is a change.
const READ_ONLY_POSTS: [&str; 15] = [
    "/api/active_jobs",
    "/api/audit_log",
    "/api/bulk_preview",
    "/api/embed_catalogue",
    "/api/embed_tokens",
    "/api/explain_query",
    "/api/job_detail",
    "/api/job_history",
    "/api/list_users",
    "/api/plan_job",
    "/api/resource_thresholds",
    "/api/series",
    "/api/target_statuses",
    "/api/telemetry_snapshot",
    "/api/whoami",
];

/// While the store takes no writes, refuses changes (503 with the reason; under `/api/` as the
/// typed `AppError::Unavailable`). Reading goes on, and so does signing out.
pub async fn writable_only(State(access): State<Access>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path == "/logout"
        || READ_ONLY_POSTS.contains(&path);
    let Some(not_writable) = access.writable().state().filter(|_| !reads) else {
        return next.run(req).await;
    };
    let reason = format!(
        "the console's store has not taken writes since {} ({}); changes wait until it does",
        format_utc(not_writable.since_ms),
        not_writable.reason
    );
    tracing::warn!(path, "refused a change: {reason}");
    if path.starts_with("/api/") {
        return error_response(path, &AppError::Unavailable(reason));
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Unavailable: {reason}."),
    )
        .into_response()
}

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

    #[test]
    fn hosts_are_addresses_localhost_or_configured_names() {
        let names = ["pitwall.example.com".to_owned()];
        for ok in [
            "127.0.0.1:3000",
            "10.1.2.3",
            "[::1]:3000",
            "localhost",
            "LocalHost:3000",
            "pitwall.example.com",
            "Pitwall.Example.COM.:443",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:3000",
            "pitwall.example.com.evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[not-an-ip]",
            "localhost:x",
        ] {
            assert!(!host_allowed(refused, &names), "{refused}");
        }
    }

    #[test]
    fn every_read_only_post_is_a_post_server_function() {
        let posts: Vec<String> = leptos::server_fn::axum::server_fn_paths()
            .filter(|(_, method)| method == Method::POST)
            .map(|(path, _)| path.to_owned())
            .collect();
        assert!(!posts.is_empty(), "no server functions registered");
        for path in READ_ONLY_POSTS {
            assert!(
                posts.iter().any(|p| p == path),
                "{path} is no POST server function"
            );
        }
    }

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
