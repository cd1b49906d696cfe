//! Live-stream benchmark: one console, N concurrent server-sent-event clients.
//!
//! Run with `cargo bench -p pitwall-server --bench stream` (`-- 1000` for the client count). It
//! starts a throwaway PostgreSQL, serves the release `pitwall` binary against it, signs in, and
//! measures with 1 client (the baseline) and with N clients, over the same window:
//! - the collector statements reaching PostgreSQL per interval (from pg_stat_statements),
//! - the delivery lag of each event (receipt time minus the newest measurement it carries),
//! - the server's CPU and resident memory, and the memory per client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use pitwall::harness::PgServer;
use tokio::sync::Mutex;

const WINDOW: Duration = Duration::from_secs(20);
const PASSWORD: &str = "bench-admin-password";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Resident memory (bytes) and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap()
        * 1024.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: f64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse::<f64>().unwrap())
        .sum();
    (rss, ticks)
}

async fn collector_calls(pg: &PgServer) -> i64 {
    let mut conn = pg.connect("postgres").await.unwrap();
    sqlx::query_scalar("SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '/* pitwall:collector */%'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

struct Run {
    clients: usize,
    statements_per_interval: f64,
    p50_ms: f64,
    p99_ms: f64,
    events: usize,
    cpu_pct: f64,
    rss: f64,
}

async fn run(base: &str, client: &reqwest::Client, pid: u32, pg: &PgServer, clients: usize) -> Run {
    let lags = Arc::new(Mutex::new(Vec::<u64>::new()));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let response = client
            .get(format!("{base}/api/stream"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (lags, measuring) = (lags.clone(), measuring.clone());
        tasks.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    // Target statuses come as `targets` events; the lag is the snapshots'.
                    let Some(data) = block
                        .lines()
                        .any(|l| l == "event: snapshot")
                        .then(|| block.lines().find_map(|l| l.strip_prefix("data:")))
                        .flatten()
                    else {
                        continue;
                    };
                    let received = now_ms();
                    let snapshot: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                    let newest = snapshot["readings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|r| r["at_ms"].as_u64())
                        .max()
                        .unwrap_or(0);
                    if measuring.load(Ordering::Relaxed) && newest > 0 {
                        lags.lock().await.push(received.saturating_sub(newest));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls_before = collector_calls(pg).await;
    let (_, ticks_before) = usage(pid);
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(WINDOW).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let (rss, ticks_after) = usage(pid);
    let calls = collector_calls(pg).await - calls_before;
    for t in &tasks {
        t.abort();
    }
    let mut lags = lags.lock().await.clone();
    lags.sort_unstable();
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
    };
    Run {
        clients,
        statements_per_interval: calls as f64 / (elapsed / 2.0),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        events: lags.len(),
        cpu_pct: (ticks_after - ticks_before) / elapsed,
        rss,
    }
}

#[tokio::main]
async fn main() {
    let clients: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    // Each client holds a socket on both sides.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();

    let pg = PgServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let config = dir.path().join("pitwall.toml");
    std::fs::write(
        &config,
        format!(
            // Every client shares one session: let it hold them all.
            "[http]\nstreams_per_session = 10000\nmax_connections = 100000\n\n[[postgres]]\nname = \"db\"\nurl = \"{}\"\n",
            pg.url("postgres")
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_pitwall"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("PITWALL_ADDR", format!("127.0.0.1:{port}"))
        .env("PITWALL_DATA", dir.path().join("data"))
        .env("PITWALL_SITE", dir.path().join("site"))
        .env("PITWALL_ADMIN_PASSWORD", PASSWORD)
        .env("PITWALL_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the console did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client
        .post(format!("{base}/login"))
        .header("origin", base.as_str())
        .form(&[("username", "admin"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/", "sign-in failed");

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "stream benchmark: {cores} cores, {}s window per run, collectors every 2 s",
        WINDOW.as_secs()
    );
    let (idle_rss, _) = usage(server.id());
    let baseline = run(&base, &client, server.id(), &pg, 1).await;
    let loaded = run(&base, &client, server.id(), &pg, clients).await;
    println!(
        "| clients | collector statements / interval | events | p50 lag | p99 lag | server CPU | server RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in [&baseline, &loaded] {
        println!(
            "| {} | {:.1} | {} | {:.0} ms | {:.0} ms | {:.1} % | {:.1} MiB |",
            r.clients,
            r.statements_per_interval,
            r.events,
            r.p50_ms,
            r.p99_ms,
            r.cpu_pct,
            r.rss / 1_048_576.0
        );
    }
    let per_client = (loaded.rss - idle_rss) / clients as f64;
    println!();
    println!(
        "collector statements, {} clients vs 1: {:.2}×",
        clients,
        loaded.statements_per_interval / baseline.statements_per_interval.max(0.001)
    );
    println!(
        "RSS per client: {:.1} KiB (target < 64 KiB)",
        per_client / 1024.0
    );
    println!(
        "p99 lag with {} clients: {:.0} ms (target < 1000 ms)",
        clients, loaded.p99_ms
    );
    let _ = server.kill();
    let _ = server.wait();
}
