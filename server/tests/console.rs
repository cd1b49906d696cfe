//! The `pitwall` binary end to end: spawned on a free port against throwaway services, probed over
//! HTTP. Services are stopped, paused and restarted under it to prove it follows without a restart.

use std::process::Output;
use std::time::{Duration, Instant};

use pitwall::harness::{PgServer, RedisServer, start_both};

mod common;

use common::{ADMIN_PASSWORD, Console, command, password_of};

/// `/health` as a signed-in `client` sees it: with every detail.
async fn health_of(console: &Console, client: &reqwest::Client) -> (u16, serde_json::Value) {
    let r = client.get(console.url("/health")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

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
    let (_, health) = health_of(&console, &client).await;
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
    console.add_user(&client, "vic", "viewer").await;
    console.try_sign_in("vic", "a-wrong-test-pw").await;
    // This Redis has no password, so AUTH fails and the target reads down with the reason.
    wait_for(&console, &client, "guarded", "down").await;
    let (_, health) = health_of(&console, &client).await;
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
        &password_of("vic"),
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
    let (code, health) = health_of(&console, &client).await;
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

/// The sorted keys of a JSON object.
fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn health_shows_details_only_to_a_session_or_the_metrics_token() {
    const TOKEN: &str = "health-test-token-2718";
    let console = Console::spawn(&format!(
        "[metrics]\ntoken = \"{TOKEN}\"\n\n[[postgres]]\nname = \"gone\"\nurl = \"postgres://u:p@127.0.0.1:1/x\"\n"
    ))
    .await;
    let client = console.sign_in("admin", ADMIN_PASSWORD).await;
    wait_for(&console, &client, "gone", "down").await;

    // Anyone: the overall status, the store's backend and up/down, each target's name and state.
    let r = reqwest::get(console.url("/health")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let open: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&open), ["status", "store", "targets"], "{text}");
    assert_eq!(keys(&open["store"]), ["backend", "status"], "{text}");
    assert_eq!(open["store"]["backend"], "sqlite");
    assert_eq!(
        open["targets"][0],
        serde_json::json!({"name": "gone", "state": "down"})
    );
    assert!(!text.contains("127.0.0.1:1"), "the address shows: {text}");
    let wrong = reqwest::Client::new()
        .get(console.url("/health"))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys(&wrong.json().await.unwrap()),
        ["status", "store", "targets"]
    );

    // A session or the metrics token: every detail.
    let scraper = reqwest::Client::new()
        .get(console.url("/health"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let by_token: serde_json::Value = scraper.json().await.unwrap();
    let (_, by_session) = health_of(&console, &client).await;
    for full in [by_token, by_session] {
        assert_eq!(
            keys(&full),
            ["status", "store", "targets", "version"],
            "{full}"
        );
        assert!(full["store"]["latency_ms"].as_f64().is_some(), "{full}");
        let gone = &full["targets"][0];
        assert_eq!(gone["address"], "127.0.0.1:1/x", "{full}");
        assert!(
            gone["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{full}"
        );
        assert!(gone.get("latency_ms").is_some() && gone.get("version").is_some());
    }
}

/// Whether the open stream `r` ends (the server closes it) within `within`.
async fn ends_within(mut r: reqwest::Response, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return true,
        }
    }
}

/// Opens `/api/stream` for `client` and waits for its first event.
async fn open_stream(console: &Console, client: &reqwest::Client) -> reqwest::Response {
    let mut r = client.get(console.url("/api/stream")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await;
    assert!(matches!(first, Ok(Ok(Some(_)))), "no first event");
    r
}

#[tokio::test]
async fn streams_end_with_their_session_and_are_capped_per_session() {
    let console = Console::spawn("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "vic", "viewer").await;
    let password = &password_of("vic");

    // Signed out on another console sharing the store: the periodic check ends the stream.
    let sibling = console.sibling().await;
    let vic = console.sign_in("vic", password).await;
    let stream = open_stream(&console, &vic).await;
    let r = vic
        .post(sibling.url("/logout"))
        .header("origin", sibling.base.as_str());
    assert_eq!(r.send().await.unwrap().status().as_u16(), 303);
    assert!(
        ends_within(stream, Duration::from_secs(5)).await,
        "the stream outlived a sign-out"
    );

    // The role changes: the user's streams end.
    let vic = console.sign_in("vic", password).await;
    let stream = open_stream(&console, &vic).await;
    let (code, body) = console
        .call(
            &admin,
            "set_role",
            &[("username", "vic"), ("role", "operator")],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        ends_within(stream, Duration::from_secs(5)).await,
        "the stream outlived a role change"
    );

    // The user is removed: their streams end, others' go on.
    let vic = console.sign_in("vic", password).await;
    let stream = open_stream(&console, &vic).await;
    let admins = open_stream(&console, &admin).await;
    let (code, body) = console
        .call(&admin, "remove_user", &[("username", "vic")])
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        ends_within(stream, Duration::from_secs(5)).await,
        "the stream outlived its user"
    );
    assert!(
        !ends_within(admins, Duration::from_secs(3)).await,
        "another user's stream ended"
    );

    // A session has at most 8 streams open; one more is refused with the reason.
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(open_stream(&console, &admin).await);
    }
    let refused = admin.get(console.url("/api/stream")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let text = refused.text().await.unwrap();
    assert!(text.contains("a session may have 8 open at once"), "{text}");
}

/// A tmpfs mounted as a console's data directory, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts 4 MiB at `dir`; `None` when mounting is not permitted here.
    fn mount(dir: std::path::PathBuf) -> Option<SmallDisk> {
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&dir)
            .output()
            .ok()?;
        out.status.success().then_some(SmallDisk(dir))
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            if let Err(e) = file.write_all(&chunk).and_then(|()| file.flush()) {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
                break;
            }
        }
        // Whatever is left below a chunk.
        while file.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

const STORE_BANNER: &str = "The console's store takes no writes";

/// The Overview's HTML for `client`, which must be signed in (200, no redirect).
async fn overview(console: &Console, client: &reqwest::Client) -> String {
    let (code, html) = console.get(client, "/").await;
    assert_eq!(code, 200, "signed out? {html}");
    html
}

/// Waits until the Overview shows the store banner (`shown`) or not.
async fn wait_for_banner(
    console: &Console,
    client: &reqwest::Client,
    shown: bool,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let html = overview(console, client).await;
        if html.contains(STORE_BANNER) == shown {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "banner shown: {}, expected {shown}; the store says {:?}\n{}",
            !shown,
            console.get(client, "/api/store_writable").await.1,
            console.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The typed refusal a change got while the store takes no writes: its reason.
fn unavailable(code: u16, body: String) -> String {
    assert_eq!(code, 503, "{body}");
    let error: pitwall_app::error::AppError =
        leptos::server_fn::error::FromServerFnError::de(body.into());
    let pitwall_app::error::AppError::Unavailable(reason) = error else {
        panic!("not the typed refusal: {error:?}");
    };
    assert!(
        reason.starts_with("the console's store has not taken writes since ")
            && reason.contains("(store: "),
        "{reason}"
    );
    reason
}

#[tokio::test]
async fn a_store_that_takes_no_writes_keeps_viewers_reading_and_refuses_changes() {
    // A session's activity is written every quarter of the idle timeout: 15 s here.
    let (console, disk) = Console::spawn_prepared("[access]\nsession_idle_minutes = 1\n", |dir| {
        SmallDisk::mount(dir.join("data"))
    })
    .await;
    let Some(disk) = disk else {
        eprintln!(
            "SKIPPED: mounting a tmpfs is not permitted here; the full-store test did not run"
        );
        return;
    };
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    wait_for_banner(&console, &admin, false, Duration::ZERO).await;
    let add_ann = [
        ("username", "ann"),
        ("password", "ann-password-1"),
        ("role", "viewer"),
    ];

    // The disk is full: a change fails with the reason, the banner shows, reading goes on.
    let filler = disk.fill();
    let (code, body) = console.call(&admin, "add_user", &add_ann).await;
    unavailable(code, body);
    wait_for_banner(&console, &admin, true, Duration::from_secs(2)).await;
    let (code, body) = console.call(&admin, "target_statuses", &[]).await;
    assert_eq!(code, 200, "a read refused: {body}");
    for path in ["/users", "/jobs", "/api/store_writable"] {
        let (code, body) = console.get(&admin, path).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (code, body) = console.call(&admin, "recheck_targets", &[]).await;
    unavailable(code, body);
    // Still worth traffic (every page reads), and says why it is degraded.
    let r = reqwest::get(console.url("/ready")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("takes no writes"),
        "{ready}"
    );

    // Space again: the session's next touch is written and the banner goes.
    std::fs::remove_file(filler).unwrap();
    wait_for_banner(&console, &admin, false, Duration::from_secs(30)).await;
    let (code, body) = console.call(&admin, "add_user", &add_ann).await;
    assert_eq!(code, 200, "{body}\n{}", console.log());

    drop(console);
}

#[tokio::test]
async fn requests_for_other_host_names_are_refused() {
    let console = Console::spawn("[http]\nhosts = [\"pitwall.test\"]\n").await;
    let port = console.base.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let status_for = async |host: &str| {
        let r = client
            .get(console.url("/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (code, text) = status_for("evil.example").await;
    assert_eq!(code, 421, "{text}");
    assert!(
        text.contains("`evil.example` is not one of this console's host names")
            && text.contains("[http] hosts"),
        "{text}"
    );
    assert_eq!(status_for(&format!("evil.example:{port}")).await.0, 421);
    for host in [
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("pitwall.test:{port}"),
        "[::1]".to_owned(),
    ] {
        assert_eq!(status_for(&host).await.0, 200, "{host}");
    }
}

/// Sends `request` on a fresh connection and reads the answer to its end; how long that took.
async fn answer_time(console: &Console, request: &str) -> (Duration, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = console.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_connections_beyond_the_limit_wait() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let console = Console::spawn("[http]\nheader_timeout_secs = 1\nmax_connections = 2\n").await;
    let addr = console.base.trim_start_matches("http://").to_owned();
    const HEALTH: &str = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let (took, answer) = answer_time(&console, HEALTH).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took < Duration::from_millis(700),
        "a free console took {took:?}"
    );

    // Headers a byte at a time, slower than the timeout: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in HEALTH.as_bytes().iter().cycle().take(40) {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(150), slow.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => panic!("answered: {}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    let after = started.elapsed();
    assert!(closed, "a slow sender kept its connection for {after:?}");
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&after),
        "closed after {after:?}"
    );

    // Two idle connections take both places: a third waits until the timeout frees one.
    let holders = [
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (took, answer) = answer_time(&console, HEALTH).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(600),
        "answered in {took:?} beyond the connection limit"
    );
    drop(holders);
}
