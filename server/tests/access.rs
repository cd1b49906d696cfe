//! Access control over HTTP against the real binary: closed by default, roles checked on the
//! server, CSRF refused, lockout, sessions that outlive a Redis outage and end with their user,
//! and the audit trail.

mod common;

use std::time::Duration;

use common::{ADMIN_PASSWORD, Console};
use pitwall::harness::RedisServer;

/// Every server function, with arguments that would be valid for an admin.
const SERVER_FUNCTIONS: [(&str, &[(&str, &str)]); 8] = [
    ("whoami", &[]),
    ("target_statuses", &[]),
    ("recheck_targets", &[]),
    ("list_users", &[]),
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
];

async fn console_with(access: &str) -> Console {
    Console::spawn(access).await
}

async fn add_user(console: &Console, admin: &reqwest::Client, name: &str, role: &str) {
    let (code, body) = console
        .call(
            admin,
            "add_user",
            &[
                ("username", name),
                ("password", &password_of(name)),
                ("role", role),
            ],
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

fn password_of(name: &str) -> String {
    format!("{name}-test-pw-2718")
}

#[tokio::test]
async fn everything_but_login_health_and_assets_is_closed() {
    let console = console_with("").await;
    let anonymous = console.client();
    for path in ["/", "/cache", "/users", "/audit", "/queues?x=1"] {
        let r = anonymous.get(console.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        let expected = format!(
            "/login?next={}",
            path.replace('?', "%3F").replace('=', "%3D")
        );
        assert_eq!(r.headers()["location"], expected.as_str(), "{path}");
    }
    for (function, args) in SERVER_FUNCTIONS {
        let (code, body) = console.call(&anonymous, function, args).await;
        if function == "whoami" {
            // The sign-in page asks who is signed in; the answer is "nobody".
            assert_eq!((code, body.as_str()), (200, "null"));
        } else {
            assert_eq!(code, 401, "{function}: {body}");
        }
    }
    assert_eq!(console.get(&anonymous, "/login").await.0, 200);
    assert_eq!(console.get(&anonymous, "/health").await.0, 200);
    // An asset that does not exist is a 404, not a redirect: /pkg is open.
    assert_eq!(console.get(&anonymous, "/pkg/missing.js").await.0, 404);
}

#[tokio::test]
async fn roles_are_checked_on_the_server() {
    let console = console_with("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    add_user(&console, &admin, "vera", "viewer").await;
    add_user(&console, &admin, "otto", "operator").await;
    let viewer = console.sign_in("vera", &password_of("vera")).await;
    let operator = console.sign_in("otto", &password_of("otto")).await;

    assert_eq!(console.call(&viewer, "target_statuses", &[]).await.0, 200);
    assert_eq!(console.call(&viewer, "list_users", &[]).await.0, 200);
    let (code, body) = console.call(&viewer, "recheck_targets", &[]).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("operator"), "{body}");
    assert_eq!(console.call(&operator, "recheck_targets", &[]).await.0, 200);
    for (function, args) in &SERVER_FUNCTIONS[4..] {
        let (code, body) = console.call(&operator, function, args).await;
        assert_eq!(code, 403, "operator calling {function}: {body}");
        assert!(body.contains("admin"), "{body}");
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
    assert!(body.contains("cross-origin"), "{body}");
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
}

#[tokio::test]
async fn lockout_engages_and_lifts_with_one_message_for_all_refusals() {
    let console = console_with("[access]\nlockout_after = 3\nlockout_seconds = 2\n").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    add_user(&console, &admin, "lee", "viewer").await;
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
    tokio::time::sleep(Duration::from_millis(2_200)).await;
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
    add_user(&console, &admin, "bo", "operator").await;
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
    add_user(&console, &admin, "cy", "viewer").await;
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

#[tokio::test]
async fn sign_out_ends_the_session_and_ids_rotate_at_sign_in() {
    let console = console_with("").await;
    let client = console.client();
    let r = client
        .post(console.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let first = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        first.contains("HttpOnly") && first.contains("SameSite=Lax") && first.contains("Path=/"),
        "{first}"
    );
    assert!(
        !first.contains("Secure"),
        "plain HTTP must not set Secure: {first}"
    );
    let r = client
        .post(console.url("/login"))
        .header("x-forwarded-proto", "https")
        .header("origin", console.base.replace("http:", "https:"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let second = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(second.contains("; Secure"), "{second}");
    assert_ne!(
        first.split(';').next(),
        second.split(';').next(),
        "the session id must change at sign-in"
    );

    let r = client.post(console.url("/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(console.get(&client, "/").await.0, 303);
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
    add_user(&console, &admin, "dee", "viewer").await;
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

    let (code, body) = console
        .call(&admin, "audit_log", &[("filter[limit]", "50")])
        .await;
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows: Vec<(String, String, String)> = page["rows"]
        .as_array()
        .unwrap()
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
        page["rows"][0]["client_addr"]
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

    // No password reached a page, a server-function answer or the console's log.
    let (_, users_page) = console.get(&admin, "/users").await;
    for secret in [
        ADMIN_PASSWORD,
        "not-the-password",
        "dee-test-pw-2718",
        "dee-second-pw-99",
    ] {
        assert!(
            !body.contains(secret) && !users_page.contains(secret),
            "{secret} in a response"
        );
        assert!(!console.log().contains(secret), "{secret} in the log");
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
