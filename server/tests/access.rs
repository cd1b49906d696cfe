//! Access control over HTTP against the real binary: closed by default, roles checked on the
//! server, CSRF refused, lockout per account and address, bounded password checks, no open
//! redirect, sessions that outlive a Redis outage and end with their user, trusted proxies, and
//! the audit trail.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::{ADMIN_PASSWORD, Console, password_of};
use leptos::server_fn::Bytes;
use leptos::server_fn::error::FromServerFnError;
use pitwall::access::Role;
use pitwall::harness::RedisServer;
use pitwall_app::error::AppError;

/// The admin's user-management server functions, with arguments that would be valid for an admin.
const USER_CHANGES: [(&str, &[(&str, &str)]); 5] = [
    (
        "add_user",
        &[
            ("username", "x"),
            ("password", "0123456789ab"),
            ("role", "viewer"),
        ],
    ),
    ("set_role", &[("username", "x"), ("role", "admin")]),
    (
        "set_password",
        &[("username", "x"), ("password", "0123456789ab")],
    ),
    ("remove_user", &[("username", "x")]),
    ("unlock_user", &[("username", "x")]),
];

/// A server function as the app declares it.
struct ServerFunction {
    endpoint: String,
    /// Called with GET (`input = GetUrl`) rather than POST.
    get: bool,
}

/// Every `#[server(...)]` in the app's sources, read at test time so the list cannot fall behind.
fn server_functions() -> Vec<ServerFunction> {
    let mut found = Vec::new();
    for (file, text) in app_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src")) {
        for (at, _) in text.match_indices("#[server") {
            let attribute = &text[at..at + text[at..].find(']').unwrap()];
            let endpoint = attribute
                .split("endpoint = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{file}: no `endpoint = \"...\"` in {attribute}"));
            found.push(ServerFunction {
                endpoint: endpoint.to_owned(),
                get: attribute.contains("GetUrl"),
            });
        }
    }
    let names: Vec<_> = found.iter().map(|f| f.endpoint.as_str()).collect();
    for known in [
        "whoami",
        "add_user",
        "audit_log",
        "embed_panel",
        "start_job",
    ] {
        assert!(names.contains(&known), "{known} not found in {names:?}");
    }
    found
}

/// Every page route declared in the app's shell, parameters filled in (`/jobs/:id` → `/jobs/1`).
fn page_routes() -> Vec<String> {
    let shell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src/shell.rs");
    let text = std::fs::read_to_string(&shell).unwrap();
    let routes: Vec<String> = text
        .split("path!(\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .filter(|path| !path.is_empty())
        .map(|path| {
            path.split('/')
                .map(|segment| {
                    if segment.starts_with(':') {
                        "1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    for known in ["/", "/users", "/jobs/1", "/embed/1/1"] {
        assert!(
            routes.iter().any(|r| r == known),
            "{known} not in {routes:?}"
        );
    }
    routes
}

/// Every `.rs` file under `dir`, with its path and text.
fn app_sources(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(app_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            files.push((path.display().to_string(), text));
        }
    }
    files
}

/// The typed error in a server function's error answer, decoded as the page decodes it (a body
/// that is not an encoded `AppError` decodes to `AppError::Server`).
fn app_error(body: &str) -> AppError {
    AppError::de(Bytes::from(body.to_owned()))
}

async fn console_with(access: &str) -> Console {
    Console::spawn(access).await
}

#[tokio::test]
async fn everything_but_login_health_and_assets_is_closed() {
    let console = console_with("").await;
    let anonymous = console.client();
    let mut pages = page_routes();
    pages.push("/queues?x=1".into());
    pages.push("/no-such-page".into());
    for path in pages {
        let (code, location) = {
            let r = anonymous.get(console.url(&path)).send().await.unwrap();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (r.status().as_u16(), location)
        };
        match path.as_str() {
            "/login" | "/setup" => assert_eq!(code, 200, "{path}"),
            // Open by design: the panel checks the session or embed token itself.
            p if p.starts_with("/embed/") => assert_eq!(code, 401, "{path}"),
            _ => {
                assert_eq!(code, 303, "{path}");
                let expected = format!(
                    "/login?next={}",
                    path.replace('?', "%3F").replace('=', "%3D")
                );
                assert_eq!(location.as_deref(), Some(expected.as_str()), "{path}");
            }
        }
    }
    for function in server_functions() {
        let name = function.endpoint.as_str();
        // The open panel data needs valid arguments to get as far as its own check.
        let query = if name == "embed_panel" {
            "?id=host/cpu&from=now-1h&to=now"
        } else {
            ""
        };
        let url = console.url(&format!("/api/{name}{query}"));
        let r = if function.get {
            anonymous.get(url).send().await.unwrap()
        } else {
            anonymous.post(url).send().await.unwrap()
        };
        let (code, content_type) = (
            r.status().as_u16(),
            r.headers().get("content-type").cloned(),
        );
        let body = r.text().await.unwrap();
        match name {
            // The sign-in page asks who is signed in; the answer is "nobody".
            "whoami" => assert_eq!((code, body.as_str()), (200, "null")),
            // Open by design: it refuses without a session or an embed token itself.
            "embed_panel" => {
                assert_eq!(code, 401, "{name}: {body}");
                assert!(matches!(app_error(&body), AppError::Refused(_)), "{body}");
            }
            _ => {
                assert_eq!(code, 401, "{name}: {body}");
                assert_eq!(app_error(&body), AppError::Unauthorized, "{name}: {body}");
                assert_eq!(content_type.unwrap(), "application/json", "{name}");
            }
        }
    }
    // Outside /api/ the refusal stays plain text.
    let r = anonymous.post(console.url("/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.text().await.unwrap(), "Unauthorized: sign in first.");
    assert_eq!(console.get(&anonymous, "/health").await.0, 200);
    // An asset that does not exist is a 404, not a redirect: /pkg is open.
    assert_eq!(console.get(&anonymous, "/pkg/missing.js").await.0, 404);
}

#[tokio::test]
async fn roles_are_checked_on_the_server() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "vera", "viewer").await;
    console.add_user(&admin, "otto", "operator").await;
    let viewer = console.sign_in("vera", &password_of("vera")).await;
    let operator = console.sign_in("otto", &password_of("otto")).await;

    assert_eq!(console.call(&viewer, "target_statuses", &[]).await.0, 200);
    assert_eq!(console.call(&viewer, "list_users", &[]).await.0, 200);
    let (code, body) = console.call(&viewer, "recheck_targets", &[]).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(app_error(&body), AppError::Forbidden(Role::Operator));
    assert_eq!(console.call(&operator, "recheck_targets", &[]).await.0, 200);
    for (function, args) in USER_CHANGES {
        let (code, body) = console.call(&operator, function, args).await;
        assert_eq!(code, 403, "operator calling {function}: {body}");
        assert_eq!(app_error(&body), AppError::Forbidden(Role::Admin));
    }
    let (code, page) = console.get(&operator, "/audit").await;
    assert_eq!(code, 403, "the page's data is refused, and so is the page");
    assert!(page.contains("This needs the admin role."), "{page}");
    let (code, _) = console
        .call(&operator, "audit_log", &[("filter[limit]", "10")])
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn cross_origin_changes_are_refused_even_with_a_session() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let cookie_jar_session = console.client_from("http://evil.example");
    // Same session, other origin: sign in through the evil client's own cookie jar first.
    let r = cookie_jar_session
        .post(console.url("/login"))
        .header("origin", console.base.as_str())
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let (code, body) = console
        .call(
            &cookie_jar_session,
            "add_user",
            &[
                ("username", "mallory"),
                ("password", "0123456789ab"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        app_error(&body),
        AppError::CrossOrigin,
        "the page decodes a typed error"
    );
    // Nothing was written: mallory does not exist.
    let (_, users) = console.call(&admin, "list_users", &[]).await;
    assert!(!users.contains("mallory"), "{users}");
    // A browser saying it is cross-site is refused too.
    let r = admin
        .post(console.url("/api/recheck_targets"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(app_error(&r.text().await.unwrap()), AppError::CrossOrigin);
    // Outside /api/ the refusal stays plain text.
    let r = cookie_jar_session
        .post(console.url("/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        "Forbidden: cross-origin requests cannot change anything here."
    );
}

#[tokio::test]
async fn lockout_engages_and_lifts_with_one_message_for_all_refusals() {
    // Long enough that the slow password checks of a loaded machine cannot outlast the lock.
    let console = console_with("[access]\nlockout_after = 3\nlockout_seconds = 6\n").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "lee", "viewer").await;
    let refused = "/login?error=refused&next=/users";
    assert_eq!(
        console.try_sign_in("nobody", "whatever-password").await.1,
        refused,
        "unknown user"
    );
    for _ in 0..3 {
        assert_eq!(
            console.try_sign_in("lee", "wrong-password-1").await.1,
            refused
        );
    }
    // Locked: even the right password is refused, with the same message.
    assert_eq!(
        console.try_sign_in("lee", &password_of("lee")).await.1,
        refused
    );
    let (_, users) = console.call(&admin, "list_users", &[]).await;
    assert!(users.contains("locked_until_ms\":1"), "{users}");
    tokio::time::sleep(Duration::from_millis(6_200)).await;
    console.sign_in("lee", &password_of("lee")).await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let console = console_with("[access]\nattempts_per_minute = 3\n").await;
    for _ in 0..3 {
        assert!(
            console
                .try_sign_in("admin", "wrong-password-x")
                .await
                .1
                .contains("error=refused")
        );
    }
    let (_, location) = console.try_sign_in("admin", ADMIN_PASSWORD).await;
    assert!(
        location.starts_with("/login?error=rate&retry="),
        "{location}"
    );
}

#[tokio::test]
async fn sessions_survive_a_redis_outage_and_end_with_their_user() {
    let mut redis = RedisServer::start().await.unwrap();
    let console = console_with(&format!(
        "[[redis]]\nname = \"cache\"\nurl = \"{}\"\n",
        redis.url(0)
    ))
    .await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "bo", "operator").await;
    let bo = console.sign_in("bo", &password_of("bo")).await;

    redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        console.get(&bo, "/").await.0,
        200,
        "signed out by a Redis outage"
    );
    assert_eq!(console.call(&bo, "recheck_targets", &[]).await.0, 200);
    redis.restart().await.unwrap();

    let (code, body) = console
        .call(&admin, "remove_user", &[("username", "bo")])
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        console.get(&bo, "/").await.0,
        303,
        "a removed user's session still works"
    );
    assert_eq!(console.call(&bo, "target_statuses", &[]).await.0, 401);

    // A password change ends the user's sessions too.
    console.add_user(&admin, "cy", "viewer").await;
    let cy = console.sign_in("cy", &password_of("cy")).await;
    let (code, _) = console
        .call(
            &admin,
            "set_password",
            &[("username", "cy"), ("password", "a-new-password-1")],
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(console.call(&cy, "target_statuses", &[]).await.0, 401);
}

/// Posts the sign-in form as admin with `headers`; returns the `Set-Cookie` it answered.
async fn admin_sign_in_cookie(
    console: &Console,
    client: &reqwest::Client,
    headers: &[(&str, &str)],
) -> String {
    let mut request = client.post(console.url("/login")).form(&[
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
        ("next", "/"),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.headers()["location"], "/");
    r.headers()["set-cookie"].to_str().unwrap().to_owned()
}

/// Whether the session in `cookie` (a `Set-Cookie` value) still opens a page and a server function.
async fn session_works(console: &Console, cookie: &str) -> bool {
    let pair = cookie.split(';').next().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(console.url("/")).header("cookie", pair);
    let page = page.send().await.unwrap().status().as_u16();
    let call = client
        .post(console.url("/api/target_statuses"))
        .header("cookie", pair)
        .header("origin", console.base.as_str());
    let call = call.send().await.unwrap().status().as_u16();
    match (page, call) {
        (200, 200) => true,
        (303, 401) => false,
        other => panic!("a session that half works: {other:?}"),
    }
}

#[tokio::test]
async fn sign_out_ends_the_session_and_ids_rotate_at_sign_in() {
    let console = console_with("").await;
    let client = console.client();
    let first = admin_sign_in_cookie(&console, &client, &[]).await;
    assert!(
        first.contains("HttpOnly") && first.contains("SameSite=Lax") && first.contains("Path=/"),
        "{first}"
    );
    assert!(session_works(&console, &first).await);
    // Signing in again on the same browser (it sends the first cookie) rotates the id.
    let second = admin_sign_in_cookie(&console, &client, &[]).await;
    assert_ne!(
        first.split(';').next(),
        second.split(';').next(),
        "the session id must change at sign-in"
    );
    assert!(
        !session_works(&console, &first).await,
        "the replaced session still works"
    );
    assert!(session_works(&console, &second).await);

    let r = client.post(console.url("/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(
        !session_works(&console, &second).await,
        "the session outlived its sign-out"
    );
}

#[tokio::test]
async fn secure_cookie_only_when_a_trusted_proxy_says_https() {
    // By default nobody is trusted: any client could send the header.
    let console = console_with("").await;
    let origin = console.base.replace("http:", "https:");
    let https = [("x-forwarded-proto", "https"), ("origin", origin.as_str())];
    let cookie = admin_sign_in_cookie(&console, &console.client(), &https).await;
    assert!(!cookie.contains("Secure"), "{cookie}");

    // From a configured proxy it counts, also for a proxy that signs nobody in by header.
    let proxied = console_with("[access.trusted_proxy]\nproxies = [\"127.0.0.1\"]\n").await;
    let origin = proxied.base.replace("http:", "https:");
    let https = [("x-forwarded-proto", "https"), ("origin", origin.as_str())];
    let cookie = admin_sign_in_cookie(&proxied, &proxied.client(), &https).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let cookie = admin_sign_in_cookie(&proxied, &proxied.client(), &[]).await;
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not set Secure: {cookie}"
    );
    let r = proxied
        .client()
        .get(proxied.url("/"))
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "no user header is configured");
}

#[tokio::test]
async fn security_headers_on_pages_and_data() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let r = admin.get(console.url("/")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'nonce-") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts must carry the nonce"
    );
    let r = reqwest::get(console.url("/health")).await.unwrap();
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn audit_records_sign_ins_and_user_changes_and_hides_secrets() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.try_sign_in("admin", "not-the-password").await;
    console.try_sign_in("ghost", "not-the-password").await;
    console.add_user(&admin, "dee", "viewer").await;
    console
        .call(
            &admin,
            "set_role",
            &[("username", "dee"), ("role", "operator")],
        )
        .await;
    console
        .call(
            &admin,
            "set_password",
            &[("username", "dee"), ("password", "dee-second-pw-99")],
        )
        .await;
    console
        .call(&admin, "remove_user", &[("username", "dee")])
        .await;

    let (all_rows, answers) = whole_audit_log(&console, &admin).await;
    let rows: Vec<(String, String, String)> = all_rows
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, outcome: &str| {
        rows.iter()
            .any(|(a, b, c)| a == actor && b == action && c.starts_with(outcome))
    };
    assert!(has("admin", "sign-in", "ok"), "{rows:?}");
    assert!(
        has("admin", "sign-in", "failed: wrong password"),
        "{rows:?}"
    );
    assert!(has("ghost", "sign-in", "failed: unknown user"), "{rows:?}");
    for action in ["user.add", "user.role", "user.passwd", "user.remove"] {
        assert!(has("admin", action, "ok"), "{action}: {rows:?}");
    }
    assert!(
        all_rows[0]["client_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1")
    );

    // Filters and pagination.
    let filter = [
        ("filter[actor]", "admin"),
        ("filter[action]", "user."),
        ("filter[limit]", "2"),
    ];
    let (_, body) = console.call(&admin, "audit_log", &filter).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 4, "{body}");
    assert_eq!(page["rows"].as_array().unwrap().len(), 2);
    let before = page["next_before_id"].as_i64().unwrap().to_string();
    let (_, body) = console
        .call(
            &admin,
            "audit_log",
            &[
                filter[0],
                filter[1],
                filter[2],
                ("filter[before_id]", &before),
            ],
        )
        .await;
    let next: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(next["rows"].as_array().unwrap().len(), 2);
    assert!(next["next_before_id"].is_null());

    // No password reached an audit row, a page or the console's log.
    let (_, users_page) = console.get(&admin, "/users").await;
    let (_, audit_page) = console.get(&admin, "/audit").await;
    for secret in [
        ADMIN_PASSWORD,
        "not-the-password",
        "dee-test-pw-2718",
        "dee-second-pw-99",
    ] {
        for (what, text) in [
            ("the audit log", &answers),
            ("the Users page", &users_page),
            ("the Audit page", &audit_page),
            ("the log", &console.log()),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}");
        }
    }
}

/// Every audit row, newest first, read page by page without a filter, and every answer's body.
async fn whole_audit_log(
    console: &Console,
    admin: &reqwest::Client,
) -> (Vec<serde_json::Value>, String) {
    let (mut rows, mut answers, mut pages) = (Vec::new(), String::new(), 0);
    let mut before = None::<String>;
    loop {
        let mut args = vec![("filter[limit]", "5")];
        if let Some(id) = &before {
            args.push(("filter[before_id]", id));
        }
        let (code, body) = console.call(admin, "audit_log", &args).await;
        assert_eq!(code, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        answers.push_str(&body);
        pages += 1;
        match page["next_before_id"].as_i64() {
            Some(id) => before = Some(id.to_string()),
            None => {
                assert_eq!(Some(rows.len() as u64), page["total"].as_u64(), "{body}");
                assert!(pages > 1, "the test should read more than one page");
                return (rows, answers);
            }
        }
    }
}

#[tokio::test]
async fn trusted_proxy_header_is_accepted_only_from_the_proxy() {
    let config =
        "[access.trusted_proxy]\nheader = \"X-Forwarded-User\"\nproxies = [\"127.0.0.1\"]\n";
    let console = console_with(config).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(console.url("/"))
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the proxy's header signs in an existing user"
    );
    let r = plain
        .get(console.url("/"))
        .header("x-forwarded-user", "nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "an unknown user is not let in");

    // A user the proxy names has their own role, checked on the server.
    let (code, body) = proxy_call(
        &console,
        "admin",
        "add_user",
        &[
            ("username", "vic"),
            ("password", &password_of("vic")),
            ("role", "viewer"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        proxy_call(&console, "vic", "target_statuses", &[]).await.0,
        200
    );
    let (code, body) = proxy_call(&console, "vic", "recheck_targets", &[]).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(app_error(&body), AppError::Forbidden(Role::Operator));
    let (function, args) = USER_CHANGES[0];
    let (code, body) = proxy_call(&console, "vic", function, args).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(app_error(&body), AppError::Forbidden(Role::Admin));

    let elsewhere = console_with(
        "[access.trusted_proxy]\nheader = \"X-Forwarded-User\"\nproxies = [\"10.0.0.0/8\"]\n",
    )
    .await;
    let r = plain
        .get(elsewhere.url("/"))
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "the header from a client that is not the proxy is ignored"
    );
    let log = elsewhere.log();
    assert!(
        log.contains("lists a wide network") && log.contains("10.0.0.0/8"),
        "a /8 of proxies is not warned about:\n{log}"
    );
    assert!(
        !console.log().contains("wide network"),
        "a single address is warned about"
    );

    // By default no proxy is trusted, and the header means nothing.
    let default = console_with("").await;
    let r = plain
        .get(default.url("/"))
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "the header signed someone in");
    let (code, body) = proxy_call(&default, "admin", "list_users", &[]).await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(app_error(&body), AppError::Unauthorized);
}

/// Calls a server function as a reverse proxy would, naming `user` in `X-Forwarded-User`.
async fn proxy_call(
    console: &Console,
    user: &str,
    function: &str,
    args: &[(&str, &str)],
) -> (u16, String) {
    let r = console
        .client()
        .post(console.url(&format!("/api/{function}")))
        .header("x-forwarded-user", user)
        .form(args)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_get_never_changes_anything() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "gus", "viewer").await;
    for path in [
        "/api/add_user?username=eve&password=0123456789ab&role=admin",
        "/api/set_role?username=gus&role=admin",
        "/api/remove_user?username=gus",
    ] {
        let (code, body) = console.get(&admin, path).await;
        assert_eq!(code, 405, "GET {path}: {body}");
    }
    let (_, users) = console.call(&admin, "list_users", &[]).await;
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    let users: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["username"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert!(users.contains(&("gus", "viewer")), "{users:?}");
    assert!(!users.iter().any(|(name, _)| *name == "eve"), "{users:?}");
}

#[tokio::test]
async fn first_run_prints_a_one_time_setup_link() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::command(dir.path())
        .arg("serve")
        .env("PITWALL_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut text = String::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("serving on") {
                let _ = tx.send(text.clone());
            }
        }
    });
    let printed = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no start-up output");
    let link = printed
        .lines()
        .find(|l| l.contains("/setup?token="))
        .expect(&printed)
        .trim()
        .to_owned();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |token: String| {
        client
            .post(format!("{base}/setup"))
            .header("origin", base.as_str())
            .form(&[
                ("token", token.as_str()),
                ("username", "root-admin"),
                ("password", "first-admin-pw-1"),
            ])
            .send()
    };
    let r = post("wrong-token".into()).await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));
    let r = post(token.clone()).await.unwrap();
    assert_eq!(r.headers()["location"], "/login?setup=done");
    let r = post(token).await.unwrap();
    assert!(
        r.headers()["location"].to_str().unwrap().contains("error="),
        "the link works once"
    );
    let r = client
        .post(format!("{base}/login"))
        .header("origin", base.as_str())
        .form(&[
            ("username", "root-admin"),
            ("password", "first-admin-pw-1"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn user_commands_manage_users_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = common::command(dir.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(
        run(
            &["user", "add", "ann", "--role", "operator"],
            "ann-password-123\n"
        )
        .0,
        Some(0)
    );
    let (code, out) = run(&["user", "add", "ann"], "another-password\n");
    assert_eq!(code, Some(2));
    assert!(out.contains("a user named `ann` exists already"), "{out}");
    let (code, out) = run(&["user", "add", "bob"], "short\n");
    assert_eq!(code, Some(2));
    assert!(out.contains("too short"), "{out}");
    assert!(
        !out.contains("short\n"),
        "the password must not be echoed: {out}"
    );
    let (code, out) = run(&["user", "add", "cat", "--role", "root"], "");
    assert_eq!(code, Some(2));
    assert!(out.contains("unknown role `root`"), "{out}");
    let (_, list) = run(&["user", "list"], "");
    assert!(list.contains("ann") && list.contains("operator"), "{list}");
    assert_eq!(
        run(&["user", "passwd", "ann"], "ann-password-456\n").0,
        Some(0)
    );
    assert_eq!(run(&["user", "remove", "ann"], "").0, Some(0));
    let (code, out) = run(&["user", "remove", "ann"], "");
    assert_eq!(code, Some(2));
    assert!(out.contains("no user named `ann`"), "{out}");
}

/// A client as a browser at `addr` on the loopback network (all of 127/8 is this machine), on the
/// console's own origin: keeps cookies, does not follow redirects.
fn client_at(console: &Console, addr: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ORIGIN,
        reqwest::header::HeaderValue::from_str(&console.base).unwrap(),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .local_address(addr.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Posts the sign-in form from `client` (with extra `headers`); the answer.
async fn post_sign_in(
    console: &Console,
    client: &reqwest::Client,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client.post(console.url("/login")).form(form);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Signs `user` in from `client`; where the console sent it (`/users` when it worked).
async fn sign_in_at(
    console: &Console,
    client: &reqwest::Client,
    user: &str,
    password: &str,
) -> String {
    let form = [
        ("username", user),
        ("password", password),
        ("next", "/users"),
    ];
    let r = post_sign_in(console, client, &form, &[]).await;
    assert_eq!(r.status().as_u16(), 303, "{user}");
    r.headers()["location"].to_str().unwrap().to_owned()
}

const REFUSED: &str = "/login?error=refused&next=/users";

/// The audit rows of `actor` (at most 200), newest first, as (action, object, outcome, address).
async fn audit_of(
    console: &Console,
    admin: &reqwest::Client,
    actor: &str,
) -> Vec<(String, String, String, String)> {
    let filter = [("filter[actor]", actor), ("filter[limit]", "200")];
    let (code, body) = console.call(admin, "audit_log", &filter).await;
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                text(&r["action"]),
                text(&r["object"]),
                text(&r["outcome"]),
                text(&r["client_addr"]),
            )
        })
        .collect()
}

/// How many of `rows` are sign-ins whose outcome starts with `outcome`.
fn sign_ins(rows: &[(String, String, String, String)], outcome: &str) -> usize {
    rows.iter()
        .filter(|(action, _, o, _)| action == "sign-in" && o.starts_with(outcome))
        .count()
}

/// The user `name` as the Users page lists them.
async fn listed(console: &Console, admin: &reqwest::Client, name: &str) -> serde_json::Value {
    let (code, body) = console.call(admin, "list_users", &[]).await;
    assert_eq!(code, 200, "{body}");
    let users: serde_json::Value = serde_json::from_str(&body).unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("{name} not in {body}"))
        .clone()
}

/// `next` values a browser would take to another origin, or that are not a console path.
const REDIRECT_PAYLOADS: [&str; 18] = [
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/ /evil.example",
    "/%09/evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/\u{0}/evil.example",
];

/// Whether a `Location` is a path on the console: one `/`, no backslash, space or control
/// character anywhere.
fn is_console_path(location: &str) -> bool {
    location.starts_with('/')
        && !location[1..].starts_with(['/', '\\'])
        && !location.contains(|c: char| c == '\\' || c.is_whitespace() || c.is_control())
}

#[tokio::test]
async fn next_never_leaves_the_console() {
    let console = console_with("[access]\nattempts_per_minute = 1000\n").await;
    let client = console.client();
    for payload in REDIRECT_PAYLOADS {
        let form = [
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", payload),
        ];
        let r = post_sign_in(&console, &client, &form, &[]).await;
        assert_eq!(r.status().as_u16(), 303, "{payload:?}");
        let location = r.headers()["location"].to_str().unwrap();
        assert!(
            is_console_path(location),
            "{payload:?} sent to {location:?}"
        );
        assert_eq!(location, "/", "{payload:?}");
        // A refused sign-in carries `next` back to the form only as a console path.
        let form = [
            ("username", "nobody"),
            ("password", "whatever-pw"),
            ("next", payload),
        ];
        let r = post_sign_in(&console, &client, &form, &[]).await;
        let location = r.headers()["location"].to_str().unwrap();
        assert_eq!(location, "/login?error=refused&next=/", "{payload:?}");
        // The sign-in page a link opens with `next` keeps only a console path in its form.
        let link = format!("/login?next={}", pitwall::percent_encode(payload));
        let (_, page) = console.get(&console.client(), &link).await;
        assert!(
            page.contains(r#"name="next" value="/""#),
            "{payload:?}: {}",
            page.split("name=\"next\"").nth(1).unwrap_or(&page)
        );
    }
    // A console path goes through, on the form and on the page.
    let form = [
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
        ("next", "/queues?x=1"),
    ];
    let r = post_sign_in(&console, &client, &form, &[]).await;
    assert_eq!(r.headers()["location"], "/queues?x=1");
    let (_, page) = console
        .get(&console.client(), "/login?next=%2Fjobs%2F7")
        .await;
    assert!(page.contains(r#"name="next" value="/jobs/7""#), "{page}");
}

#[tokio::test]
async fn parallel_wrong_passwords_lock_one_address_and_an_admin_unlocks() {
    let console = console_with("[access]\nlockout_after = 3\nattempts_per_minute = 100\n").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "lee", "viewer").await;
    console.add_user(&admin, "vera", "viewer").await;
    console.add_user(&admin, "otto", "operator").await;

    // Ten wrong passwords at once from one address; a "busy" answer is tried again.
    let attempts = (0..10).map(|_| {
        let client = client_at(&console, "127.0.0.1");
        let url = console.url("/login");
        tokio::spawn(async move {
            let form = [
                ("username", "lee"),
                ("password", "wrong-password-1"),
                ("next", "/users"),
            ];
            loop {
                let r = client.post(&url).form(&form).send().await.unwrap();
                if r.status().as_u16() == 429 {
                    assert!(r.headers().contains_key("retry-after"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                assert_eq!(r.status().as_u16(), 303);
                return r.headers()["location"].to_str().unwrap().to_owned();
            }
        })
    });
    for attempt in attempts.collect::<Vec<_>>() {
        assert_eq!(attempt.await.unwrap(), REFUSED);
    }
    let rows = audit_of(&console, &admin, "lee").await;
    assert_eq!(
        sign_ins(&rows, "failed: wrong password"),
        3,
        "only the limit gets a password check: {rows:?}"
    );
    assert_eq!(
        sign_ins(&rows, "failed: wrong password; locked for this address"),
        1,
        "{rows:?}"
    );
    assert_eq!(
        sign_ins(&rows, "failed: locked for this address"),
        7,
        "{rows:?}"
    );

    // The right password is refused from that address, and works from another one.
    let home = client_at(&console, "127.0.0.1");
    assert_eq!(
        sign_in_at(&console, &home, "lee", &password_of("lee")).await,
        REFUSED
    );
    let lee = listed(&console, &admin, "lee").await;
    assert_eq!(
        lee["locked_from"],
        serde_json::json!(["127.0.0.1"]),
        "{lee}"
    );
    assert!(lee["locked_until_ms"].as_u64().is_some(), "{lee}");
    let elsewhere = client_at(&console, "127.0.0.2");
    assert_eq!(
        sign_in_at(&console, &elsewhere, "lee", &password_of("lee")).await,
        "/users"
    );

    // Only an admin unlocks, and it is audited.
    for (name, role) in [("vera", Role::Viewer), ("otto", Role::Operator)] {
        let who = console.sign_in(name, &password_of(name)).await;
        let (code, body) = console
            .call(&who, "unlock_user", &[("username", "lee")])
            .await;
        assert_eq!(code, 403, "{role} unlocking: {body}");
        assert_eq!(app_error(&body), AppError::Forbidden(Role::Admin));
    }
    assert_eq!(
        sign_in_at(&console, &home, "lee", &password_of("lee")).await,
        REFUSED
    );
    let (code, body) = console
        .call(&admin, "unlock_user", &[("username", "lee")])
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(listed(&console, &admin, "lee").await["locked_until_ms"].is_null());
    assert_eq!(
        sign_in_at(&console, &home, "lee", &password_of("lee")).await,
        "/users"
    );
    let admin_rows = audit_of(&console, &admin, "admin").await;
    assert!(
        admin_rows
            .iter()
            .any(|(action, object, outcome, _)| action == "user.unlock"
                && object == "lee"
                && outcome == "ok"),
        "{admin_rows:?}"
    );
    let (code, body) = console
        .call(&admin, "unlock_user", &[("username", "nobody")])
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        app_error(&body),
        AppError::Invalid("no user named `nobody`".into())
    );

    // The command line unlocks too.
    let third = client_at(&console, "127.0.0.3");
    for _ in 0..3 {
        assert_eq!(
            sign_in_at(&console, &third, "lee", "wrong-password-2").await,
            REFUSED
        );
    }
    assert_eq!(
        sign_in_at(&console, &third, "lee", &password_of("lee")).await,
        REFUSED
    );
    let (code, out) = console.cli(&["user", "unlock", "lee"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unlocked lee"), "{out}");
    assert_eq!(
        sign_in_at(&console, &third, "lee", &password_of("lee")).await,
        "/users"
    );
}

#[tokio::test]
async fn many_failures_from_all_addresses_make_the_account_wait_briefly() {
    let console = console_with("[access]\nlockout_after = 5\nbackoff_after = 3\n").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "kim", "viewer").await;
    for n in 2..=5 {
        let client = client_at(&console, &format!("127.0.0.{n}"));
        assert_eq!(
            sign_in_at(&console, &client, "kim", "wrong-password-3").await,
            REFUSED
        );
    }
    // The fourth failure, one more than `backoff_after`, makes every address wait a second.
    let fresh = client_at(&console, "127.0.0.6");
    assert_eq!(
        sign_in_at(&console, &fresh, "kim", &password_of("kim")).await,
        REFUSED
    );
    let kim = listed(&console, &admin, "kim").await;
    assert!(kim["waiting_until_ms"].as_u64().is_some(), "{kim}");
    let rows = audit_of(&console, &admin, "kim").await;
    assert_eq!(sign_ins(&rows, "failed: account waiting"), 1, "{rows:?}");
    assert_eq!(sign_ins(&rows, "failed: wrong password"), 4, "{rows:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        sign_in_at(&console, &fresh, "kim", &password_of("kim")).await,
        "/users"
    );
}

/// `VmRSS` or `VmHWM` of process `pid`, in bytes.
fn memory_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_flood_of_sign_ins_is_answered_busy_and_memory_stays_bounded() {
    let console = console_with("").await;
    console.sign_in("admin", ADMIN_PASSWORD).await;
    // The peak from here on: the kernel resets VmHWM to the current RSS on "5".
    std::fs::write(format!("/proc/{}/clear_refs", console.pid()), "5").unwrap();
    let baseline = memory_of(console.pid(), "VmRSS:");
    // 200 sign-ins at once, of unknown users (the decoy check costs as much as a real one), from
    // 50 addresses, well within each address's rate limit.
    let attempts = (0..200).map(|i| {
        let client = client_at(&console, &format!("127.0.1.{}", 1 + i % 50));
        let url = console.url("/login");
        tokio::spawn(async move {
            let name = format!("nobody-{i}");
            let form = [
                ("username", name.as_str()),
                ("password", "whatever-pw-1"),
                ("next", "/"),
            ];
            let r = client.post(&url).form(&form).send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry, location)
        })
    });
    let (mut busy, mut checked) = (0, 0);
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            (429, Some(retry), None) => {
                assert!(retry.parse::<u64>().unwrap() >= 1, "Retry-After: {retry}");
                busy += 1;
            }
            (303, None, Some(location)) => {
                assert_eq!(location, "/login?error=refused&next=/");
                checked += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(busy > 0, "200 at once and none was answered busy");
    assert!(checked > 0, "not one of 200 was checked");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    let peak = memory_of(console.pid(), "VmHWM:");
    let bound = baseline + (cores + 2) * 25 * 1024 * 1024;
    eprintln!(
        "peak {} MiB, baseline {} MiB, {cores} cores, {checked} checked, {busy} busy",
        peak >> 20,
        baseline >> 20
    );
    assert!(
        peak < bound,
        "peak RSS {} MiB, over {} MiB (baseline {} MiB, {cores} cores; {checked} checked, {busy} busy)",
        peak >> 20,
        bound >> 20,
        baseline >> 20
    );
    // The console still answers, and signs people in.
    console.sign_in("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn proxied_identities_and_addresses() {
    let config = "[access]\nlockout_after = 2\n\n[access.trusted_proxy]\nheader = \"X-Forwarded-User\"\nproxies = [\"127.0.0.1\"]\n";
    let console = console_with(config).await;
    let proxy = console.client();

    // A user named twice is refused, whoever the names are.
    for names in [["admin", "nobody"], ["admin", "admin"]] {
        let r = proxy
            .get(console.url("/"))
            .header("x-forwarded-user", names[0])
            .header("x-forwarded-user", names[1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{names:?}");
        assert!(r.headers().get("set-cookie").is_none());
        let body = r.text().await.unwrap();
        assert!(
            body.contains("x-forwarded-user header appears more than once"),
            "{body}"
        );
    }
    let r = proxy
        .post(console.url("/api/add_user"))
        .header("x-forwarded-user", "admin")
        .header("x-forwarded-user", "admin")
        .form(&[
            ("username", "eve"),
            ("password", "0123456789ab"),
            ("role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // The first request of an identity is audited as a sign-in, with the client's address.
    for _ in 0..3 {
        let r = proxy
            .get(console.url("/"))
            .header("x-forwarded-user", "admin")
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let (_, users) = console.call(&admin, "list_users", &[]).await;
    assert!(!users.contains("eve"), "{users}");
    let rows = audit_of(&console, &admin, "admin").await;
    let proxied: Vec<_> = rows
        .iter()
        .filter(|(action, _, outcome, _)| action == "sign-in" && outcome == "ok: trusted proxy")
        .collect();
    assert_eq!(proxied.len(), 1, "{rows:?}");
    assert_eq!(proxied[0].3, "203.0.113.7");
    // A change through the proxy is audited with the client's address too.
    let r = proxy
        .post(console.url("/api/add_user"))
        .header("x-forwarded-user", "admin")
        .header("x-forwarded-for", "203.0.113.8")
        .form(&[
            ("username", "quinn"),
            ("password", &password_of("quinn")),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows = audit_of(&console, &admin, "admin").await;
    assert!(
        rows.iter()
            .any(|(action, object, _, addr)| action == "user.add"
                && object == "quinn"
                && addr == "203.0.113.8"),
        "{rows:?}"
    );

    // Through the proxy, each client address has its own lockout.
    console.add_user(&admin, "pat", "viewer").await;
    let via = |client: &'static str| [("x-forwarded-for", client)];
    let form = |password: &str| {
        [
            ("username", "pat".to_owned()),
            ("password", password.to_owned()),
            ("next", "/users".to_owned()),
        ]
    };
    let attempt = async |headers: [(&str, &str); 1], password: &str, from: &reqwest::Client| {
        let form = form(password);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_sign_in(&console, from, &form, &headers).await;
        r.headers()["location"].to_str().unwrap().to_owned()
    };
    for _ in 0..2 {
        assert_eq!(
            attempt(via("203.0.113.1"), "wrong-password-4", &proxy).await,
            REFUSED
        );
    }
    assert_eq!(
        attempt(via("203.0.113.1"), &password_of("pat"), &proxy).await,
        REFUSED
    );
    assert_eq!(
        attempt(via("203.0.113.2"), &password_of("pat"), &proxy).await,
        "/users"
    );
    // A client that is not the proxy cannot pick an address: it is its own.
    let direct = client_at(&console, "127.0.0.2");
    assert_eq!(
        attempt(via("203.0.113.2"), "wrong-password-4", &direct).await,
        REFUSED
    );
    let rows = audit_of(&console, &admin, "pat").await;
    let addresses: Vec<(&str, &str)> = rows
        .iter()
        .map(|(_, _, outcome, addr)| (outcome.as_str(), addr.as_str()))
        .collect();
    assert_eq!(
        addresses,
        [
            ("failed: wrong password", "127.0.0.2"),
            ("ok", "203.0.113.2"),
            ("failed: locked for this address", "203.0.113.1"),
            (
                "failed: wrong password; locked for this address",
                "203.0.113.1"
            ),
            ("failed: wrong password", "203.0.113.1"),
        ],
        "{rows:?}"
    );
}
