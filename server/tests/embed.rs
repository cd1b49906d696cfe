//! Embeddable panels over HTTP: tokens minted on the command line open exactly their panel until
//! revoked; framing is allowed only on `/embed/...` and only for the configured origins; the
//! session cookie goes cross-site only with embedding on and HTTPS.

mod common;

use common::{ADMIN_PASSWORD, Console};

const PORTAL: &str = "https://portal.example";

fn csp(r: &reqwest::Response) -> String {
    r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The token from `pitwall embed mint` output.
fn minted_token(out: &str) -> (String, String) {
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("minted "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_owned();
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_owned();
    (id, token)
}

#[tokio::test]
async fn tokens_open_their_panel_until_revoked_and_only_allowed_origins_may_frame() {
    let console = Console::spawn(&format!("[embed]\nframe_ancestors = [\"{PORTAL}\"]\n")).await;
    let (code, out) = console.cli(&[
        "embed",
        "mint",
        "--label",
        "wiki",
        "--panel",
        "host/cpu",
        "--lifetime",
        "1h",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("embed: /embed/host/cpu?token=pwe1."), "{out}");
    let (id, token) = minted_token(&out);
    let visitor = reqwest::Client::new();

    let r = visitor
        .get(console.url(&format!("/embed/host/cpu?token={token}&theme=dark")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        csp(&r).contains(&format!("frame-ancestors {PORTAL}")),
        "{}",
        csp(&r)
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<h1>CPU</h1>") && html.contains("theme-dark"),
        "{html}"
    );
    assert!(
        !html.contains("aria-label=\"Main\""),
        "no navigation in a panel"
    );

    let data = visitor
        .get(console.url(&format!(
            "/api/embed_panel?id=host/cpu&from=now-1h&to=now&token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(data.status().as_u16(), 200);
    let data: serde_json::Value = data.json().await.unwrap();
    assert_eq!(data["panel"]["id"], "host/cpu");
    assert!(data["points"].is_array());

    // The token opens its panel only; nothing without one; a bad parameter is named.
    for (path, status, text) in [
        (
            format!("/embed/host/memory?token={token}"),
            401,
            "opens host/cpu only",
        ),
        (
            "/embed/host/cpu".to_owned(),
            401,
            "opens with an embed token or a Pitwall session",
        ),
        (
            format!("/embed/host/cpu?token={token}x"),
            401,
            "signature does not match",
        ),
        (
            format!("/embed/host/cpu?token={token}&refresh=1s"),
            400,
            "`refresh` must be at least 2s",
        ),
    ] {
        let r = visitor.get(console.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(text), "{path}: {body}");
    }

    // Every other page refuses to be framed, whoever asks.
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let r = admin.get(console.url("/")).send().await.unwrap();
    assert!(csp(&r).contains("frame-ancestors 'none'"), "{}", csp(&r));

    let (code, list) = console.cli(&["embed", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        list.contains(&id) && list.contains("active") && list.contains("wiki"),
        "{list}"
    );
    assert_eq!(console.cli(&["embed", "revoke", &id]).0, Some(0));
    let r = visitor
        .get(console.url(&format!("/embed/host/cpu?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("the embed token was revoked at")
    );
    let (code, out) = console.cli(&["embed", "revoke", &id]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains(&format!("no active embed token with id `{id}`")),
        "{out}"
    );

    let (code, out) = console.cli(&["embed", "mint", "--label", "x", "--panel", "nope"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("there is no panel `nope`"), "{out}");
    let (code, out) = console.cli(&["embed", "mint", "--label", "x", "--lifetime", "forever"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("--lifetime must be a duration"), "{out}");

    let audit = console.get(&admin, "/audit?action=embed.").await.1;
    assert!(
        audit.contains("embed.mint") && audit.contains("embed.revoke"),
        "{audit}"
    );
    assert!(
        !audit.contains(&token),
        "the audit log never holds the token"
    );
}

#[tokio::test]
async fn the_session_cookie_goes_cross_site_only_with_embedding_and_https() {
    // HTTPS is what the trusted proxy in front says (`X-Forwarded-Proto`).
    let proxy = "[access.trusted_proxy]\nproxies = [\"127.0.0.1\"]\n";
    for (config, expected) in [
        (
            format!("{proxy}[embed]\nframe_ancestors = [\"{PORTAL}\"]\n"),
            "SameSite=None",
        ),
        (proxy.to_owned(), "SameSite=Lax"),
    ] {
        let console = Console::spawn(&config).await;
        let r = console
            .client_from(&console.base.replace("http://", "https://"))
            .post(console.url("/login"))
            .header("x-forwarded-proto", "https")
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            cookie.contains(expected) && cookie.contains("; Secure"),
            "{cookie}"
        );
        // Plain HTTP keeps Lax: browsers drop SameSite=None without Secure.
        let r = console
            .client()
            .post(console.url("/login"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
            "{cookie}"
        );
    }
}
