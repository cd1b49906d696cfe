//! Access control at the HTTP edge: who is asking (session cookie or trusted proxy header), the
//! sign-in / sign-out / setup form posts, and the guard that keeps everything else closed.

use std::net::{IpAddr, SocketAddr};

use axum::Form;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use pitwall::access::{Actor, CurrentUser, SignInError, safe_next};
use pitwall::config::TrustedProxy;
use pitwall::percent_encode;
use pitwall_app::error::AppError;
use pitwall_app::error::ssr::{ClientAddr, error_response};
use serde::Deserialize;

use super::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "pitwall_session";

/// Paths anyone may reach: the sign-in and setup pages (and the "who am I" they ask), health,
/// readiness, metrics (guarded by its own token when one is set), and static assets (the site's
/// own and vendored libraries). The embeddable panels and their data are open too: they check
/// the viewer's session or embed token themselves, per panel. The README's Access table lists
/// the same paths (a test compares them).
const OPEN_PATHS: [&str; 9] = [
    "/login",
    "/setup",
    "/api/whoami",
    "/api/embed_panel",
    "/health",
    "/ready",
    "/metrics",
    "/favicon.svg",
    "/robots.txt",
];

/// Path prefixes anyone may reach (see `OPEN_PATHS`).
const OPEN_PREFIXES: [&str; 3] = ["/pkg/", "/vendor/", "/embed/"];

fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path) || OPEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The session token from the request's cookies.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// Identifies the user and refuses anonymous requests outside the open paths: pages redirect to
/// the sign-in page (and back afterwards), everything else answers 401, under `/api/` with the
/// typed `AppError::Unauthorized` the page decodes, as its server function would have answered.
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let user = match identify(&state, peer.ip(), req.headers()).await {
        Ok(user) => user,
        Err(refusal) => return refusal,
    };
    let client = client_ip(&state, peer.ip(), req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    let path = req.uri().path().to_owned();
    match user {
        Some(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        None if is_open(&path) => next.run(req).await,
        None if req.method() == Method::GET && !path.starts_with("/api/") => {
            let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
            Redirect::to(&format!("/login?next={}", percent_encode(target))).into_response()
        }
        None if path.starts_with("/api/") => error_response(&path, &AppError::Unauthorized),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Unauthorized: sign in first.",
        )
            .into_response(),
    }
}

/// The user of a request: the one a trusted proxy's header names, else the session's. A request
/// from the proxy that names someone twice is refused (400): which one would count is anybody's
/// guess, and a client could have added one.
async fn identify(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, Response> {
    if let Some(proxy) = &state.trusted_proxy
        && let Some(header) = &proxy.header
        && proxy.trusts(peer)
    {
        let mut names = headers.get_all(header).iter();
        if let Some(name) = names.next() {
            if names.next().is_some() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("Bad request: the {header} header appears more than once."),
                )
                    .into_response());
            }
            let client = client_ip(state, peer, headers);
            return Ok(match name.to_str() {
                Ok(name) => state.access.trusted_user(name.trim(), Some(client)).await,
                Err(_) => None,
            });
        }
    }
    Ok(match session_token(headers) {
        Some(token) => state.access.authenticate(token).await,
        None => None,
    })
}

/// The client's address: the peer's, or, from a trusted proxy, the one `X-Forwarded-For` names.
fn client_ip(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    match &state.trusted_proxy {
        Some(proxy) => proxy.client(
            peer,
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
        None => peer,
    }
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: signs in and goes to the page first asked for, or back to the form with a
/// generic error.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(&form.next);
    let previous = session_token(&headers);
    let client = client_ip(&state, peer.ip(), &headers);
    match state
        .access
        .sign_in(form.username.trim(), &form.password, Some(client), previous)
        .await
    {
        Ok((token, _user)) => {
            let max_age = state.access.settings().lifetime.as_secs();
            let cookie = cookie(&state, peer.ip(), &headers, token.expose(), max_age);
            ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
        }
        Err(e) => {
            let code = match e {
                SignInError::Refused => "refused".to_owned(),
                SignInError::RateLimited(wait) => format!("rate&retry={}", wait.as_secs().max(1)),
                // Answered at once and plainly: the point is to spend nothing on it.
                SignInError::Busy(wait) => {
                    let message = e.to_string();
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [
                            (header::RETRY_AFTER, wait.as_secs().max(1).to_string()),
                            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                        ],
                        message,
                    )
                        .into_response();
                }
                SignInError::Store(err) => {
                    tracing::error!("sign-in failed: {err}");
                    "unavailable".to_owned()
                }
            };
            Redirect::to(&format!(
                "/login?error={code}&next={}",
                percent_encode(next)
            ))
            .into_response()
        }
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    user: Option<axum::Extension<CurrentUser>>,
) -> Response {
    if let (Some(token), Some(user)) = (session_token(&headers), user)
        && let Err(e) = state
            .access
            .sign_out(
                token,
                &Actor::user(&user, Some(client_ip(&state, peer.ip(), &headers))),
            )
            .await
    {
        tracing::error!("sign-out failed: {e}");
    }
    (
        [(
            header::SET_COOKIE,
            cookie(&state, peer.ip(), &headers, "", 0),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// The first-admin form.
#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
}

/// `POST /setup`: creates the first admin with the one-time setup token, then asks them to sign in.
pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let client = client_ip(&state, peer.ip(), &headers);
    match state
        .access
        .complete_setup(
            &form.token,
            form.username.trim(),
            &form.password,
            Some(client),
        )
        .await
    {
        Ok(()) => Redirect::to("/login?setup=done").into_response(),
        Err(e) => Redirect::to(&format!(
            "/setup?token={}&error={}",
            percent_encode(&form.token),
            percent_encode(&e.to_string())
        ))
        .into_response(),
    }
}

/// The session cookie: HttpOnly, SameSite=Lax, Secure when the console is reached over HTTPS.
/// With embedding on and HTTPS, `SameSite=None; Secure`, so a viewer's session also opens panels
/// framed by a portal on another site (browsers drop `SameSite=None` cookies without `Secure`).
fn cookie(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = forwarded_https(state.trusted_proxy.as_deref(), peer, headers);
    let same_site = if secure && state.embed_policy.enabled() {
        "None"
    } else {
        "Lax"
    };
    let mut c =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie value is URL-safe base64")
}

/// Whether a trusted proxy says the client reached it over HTTPS (`X-Forwarded-Proto: https`).
/// Anyone else's `X-Forwarded-Proto` is ignored: a client cannot choose the cookie's flags.
fn forwarded_https(proxy: Option<&TrustedProxy>, peer: IpAddr, headers: &HeaderMap) -> bool {
    proxy.is_some_and(|p| p.trusts(peer))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use pitwall::config::IpNet;

    use super::*;

    #[test]
    fn forwarded_proto_counts_only_from_a_trusted_proxy() {
        let mut https = HeaderMap::new();
        https.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        let proxy = TrustedProxy {
            header: None,
            proxies: vec![IpNet::parse("10.0.0.0/8").unwrap()],
        };
        let (inside, outside) = ("10.1.2.3".parse().unwrap(), "192.0.2.7".parse().unwrap());
        assert!(forwarded_https(Some(&proxy), inside, &https));
        assert!(!forwarded_https(Some(&proxy), outside, &https));
        assert!(
            !forwarded_https(None, inside, &https),
            "no proxy configured"
        );
        assert!(!forwarded_https(Some(&proxy), inside, &HeaderMap::new()));
    }

    #[test]
    fn reads_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pitwall_session=abc; b=2"),
        );
        assert_eq!(session_token(&h), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("pitwall_session="));
        assert_eq!(session_token(&h), None);
    }

    /// The paths of the README's table of open paths (`/x/*` for a prefix), in order.
    fn readme_open_paths() -> Vec<String> {
        include_str!("../../../README.md")
            .lines()
            .skip_while(|l| !l.starts_with("| open path |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_readme_lists_exactly_the_open_paths() {
        let mut listed = readme_open_paths();
        let mut open: Vec<String> = OPEN_PATHS
            .iter()
            .map(|p| p.to_string())
            .chain(OPEN_PREFIXES.iter().map(|p| format!("{p}*")))
            .collect();
        listed.sort();
        open.sort();
        assert_eq!(listed, open, "README's open paths vs is_open");
        for path in &listed {
            let probe = path.replace('*', "x");
            assert!(is_open(&probe), "{probe}");
        }
        assert!(!is_open("/api/stream") && !is_open("/users") && !is_open("/loginx"));
    }
}
