//! The `pitwall` binary end to end: spawned on a free port against throwaway services, probed over
//! HTTP. Services are stopped, paused and restarted under it to prove it follows without a restart.

use std::process::Output;
use std::time::{Duration, Instant};

use pitwall::harness::{PgServer, RedisServer, start_both};

mod common;

use common::{ADMIN_PASSWORD, Console, command};

/// Waits until `/health` and the server-rendered Overview both show `target` in `state`.
async fn wait_for(console: &Console, client: &reqwest::Client, target: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, health) = console.health().await;
        assert_eq!(
            code, 200,
            "the console must stay healthy whatever its targets do"
        );
        let in_health = health["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == target && t["state"] == state);
        let (_, html) = console.get(client, "/").await;
        let in_page = html.contains(&format!(r#"data-target="{target}" data-state="{state}""#));
        if in_health && in_page {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{target} not {state} within 10 s: {health}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn targets_config(pg: &PgServer, redis: &RedisServer) -> String {
    format!(
        "[[postgres]]\nname = \"db\"\nurl = \"{}\"\n\n[[redis]]\nname = \"cache\"\nurl = \"{}\"\n\n[[celery]]\nname = \"tasks\"\nurl = \"{}\"\nqueues = [\"celery\"]\n",
        pg.url("postgres"),
        redis.url(0),
        redis.url(1)
    )
}

#[tokio::test]
async fn overview_and_health_follow_outages_without_a_restart() {
    let (mut pg, mut redis) = start_both().await.unwrap();
    let console = Console::spawn(&targets_config(&pg, &redis)).await;
    let client = console.sign_in("admin", ADMIN_PASSWORD).await;
    let wait_for = |target, state| wait_for(&console, &client, target, state);
    for t in ["db", "cache", "tasks"] {
        wait_for(t, "up").await;
    }
    let (_, health) = console.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"]["status"], "up");
    let db = &health["targets"][0];
    assert_eq!(db["kind"], "postgres");
    assert_eq!(db["address"], format!("127.0.0.1:{}/postgres", pg.port()));
    assert!(
        db["version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric),
        "{db}"
    );
    assert!(db["latency_ms"].as_f64().unwrap() >= 0.0);
    let (_, html) = console.get(&client, "/").await;
    assert!(
        html.contains("PostgreSQL") && html.contains("Celery broker"),
        "{html}"
    );

    pg.stop();
    wait_for("db", "down").await;
    wait_for("cache", "up").await;
    pg.restart().await.unwrap();
    wait_for("db", "up").await;

    redis.pause().unwrap();
    wait_for("cache", "down").await;
    wait_for("tasks", "down").await;
    redis.resume().unwrap();
    wait_for("cache", "up").await;

    redis.stop();
    wait_for("tasks", "down").await;
    redis.restart().await.unwrap();
    wait_for("tasks", "up").await;
}

/// Everything `/api/stream` sends to `client` within `window`.
async fn read_stream(console: &Console, client: &reqwest::Client, window: Duration) -> String {
    let mut r = client.get(console.url("/api/stream")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let deadline = tokio::time::Instant::now() + window;
    let mut text = String::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn secrets_never_reach_pages_health_or_logs() {
    let redis = RedisServer::start().await.unwrap();
    let url = |db: u8| format!("redis://:s3cr3t-pw@127.0.0.1:{}/{db}", redis.port());
    let console = Console::spawn(&format!(
        "[[redis]]\nname = \"guarded\"\nurl = \"{}\"\n\n[[celery]]\nname = \"tasks\"\nurl = \"{}\"\nqueues = [\"celery\"]\n",
        url(0),
        url(1)
    ))
    .await;
    let client = console.sign_in("admin", ADMIN_PASSWORD).await;
    let user_password = "vic-test-pw-1618";
    let (code, body) = console
        .call(
            &client,
            "add_user",
            &[
                ("username", "vic"),
                ("password", user_password),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    console.try_sign_in("vic", "a-wrong-test-pw").await;
    // This Redis has no password, so AUTH fails and the target reads down with the reason.
    wait_for(&console, &client, "guarded", "down").await;
    let (_, health) = console.health().await;
    assert_eq!(
        health["targets"][0]["address"],
        format!("127.0.0.1:{}/0", redis.port())
    );

    let mut answers = vec![("/health".to_owned(), health.to_string())];
    for path in [
        "/",
        "/queues",
        "/resources",
        "/jobs",
        "/embeds",
        "/audit",
        "/users",
    ] {
        let (code, html) = console.get(&client, path).await;
        assert_eq!(code, 200, "{path}");
        answers.push((path.to_owned(), html));
    }
    let stream = read_stream(&console, &client, Duration::from_secs(3)).await;
    assert!(
        stream.contains("event: targets") && stream.contains("guarded"),
        "{stream}"
    );
    answers.push(("/api/stream".to_owned(), stream));
    // Error answers: a page that does not exist, and a broker that refuses the console.
    for path in [
        "/no-such-page",
        "/api/peek_queue?broker=tasks&queue=celery&count=5",
    ] {
        let (code, body) = console.get(&client, path).await;
        assert!(code >= 400, "{path} answered {code}: {body}");
        answers.push((path.to_owned(), body));
    }
    answers.push(("the log".to_owned(), console.log()));
    for secret in [
        "s3cr3t-pw",
        ADMIN_PASSWORD,
        user_password,
        "a-wrong-test-pw",
    ] {
        for (what, text) in &answers {
            assert!(!text.contains(secret), "{secret} in {what}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .arg("check-config")
        .env("REDIS_URL", url(0))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("127.0.0.1:{}/0", redis.port())),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cr3t-pw"), "{stdout}");
}

#[tokio::test]
async fn health_is_ok_with_every_target_down() {
    let console =
        Console::spawn("[[postgres]]\nname = \"gone\"\nurl = \"postgres://u:p@127.0.0.1:1/x\"\n")
            .await;
    let client = console.sign_in("admin", ADMIN_PASSWORD).await;
    wait_for(&console, &client, "gone", "down").await;
    let (code, health) = console.health().await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "ok");
    assert!(
        health["targets"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    // Readiness is the console's own, open without a session, and says nothing of targets.
    let r = reqwest::get(console.url("/ready")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ready"}"#);
}

fn run_with_config(config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pitwall.toml");
    std::fs::write(&path, config).unwrap();
    command(dir.path())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn bad_config_fails_at_start_with_file_line_column() {
    let cases = [
        (
            "lisen = \"127.0.0.1:3000\"\n",
            "pitwall.toml:1:1: unknown field `lisen`, expected one of",
        ),
        (
            "[[postgres]]\nname = \"db\"\nurl = \"postgres//u:pw@db\"\n",
            "pitwall.toml:3:7: invalid URL: relative URL without a base",
        ),
        (
            "[[redis]]\nname = \"a\"\nurl = \"redis://x\"\n[[celery]]\nname = \"a\"\nurl = \"redis://y\"\n",
            "pitwall.toml:5:8: duplicate target name `a` (first defined on line 2)",
        ),
    ];
    for (config, expected) in cases {
        let out = run_with_config(config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("error: ") && stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains(":pw@"), "{stderr}");
    }
}

#[test]
fn missing_site_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .arg("serve")
        .env("PITWALL_SITE", dir.path().join("nowhere"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("it has no pkg/ folder"), "{stderr}");
}

#[test]
fn a_killed_demo_takes_its_services_with_it() {
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut demo = command(dir.path())
        .args(["demo", "--small"])
        .env("PITWALL_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ports = Vec::new();
    for line in BufReader::new(demo.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(addr) = line
            .split_whitespace()
            .last()
            .filter(|a| a.starts_with("127.0.0.1:"))
        {
            ports.push(
                addr[10..]
                    .split('/')
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap(),
            );
        }
        if line.starts_with("Pitwall demo console") {
            break;
        }
    }
    assert!(ports.len() >= 2, "{ports:?}");
    let listening = |p: u16| {
        TcpStream::connect_timeout(&([127, 0, 0, 1], p).into(), Duration::from_millis(200)).is_ok()
    };
    assert!(ports.iter().all(|p| listening(*p)));
    demo.kill().unwrap(); // SIGKILL: no chance to clean up
    demo.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ports.iter().any(|p| listening(*p)) {
        assert!(
            Instant::now() < deadline,
            "services outlived the killed demo: {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn hashed_assets_are_served_precompressed_to_browsers_that_take_it() {
    let console = Console::spawn("").await;
    let pkg = console.data_dir().parent().unwrap().join("site/pkg");
    std::fs::write(pkg.join("app.wasm"), vec![0u8; 4096]).unwrap();
    std::fs::write(pkg.join("app.wasm.br"), b"brotli bytes").unwrap();
    let get = |encoding: Option<&'static str>| {
        let mut request = reqwest::Client::new().get(console.url("/pkg/app.wasm"));
        if let Some(e) = encoding {
            request = request.header("accept-encoding", e);
        }
        request.send()
    };
    let br = get(Some("gzip, br")).await.unwrap();
    assert_eq!(br.status(), 200);
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["content-type"], "application/wasm");
    assert_eq!(
        br.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(br.bytes().await.unwrap().as_ref(), b"brotli bytes");
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().len(), 4096);
}
