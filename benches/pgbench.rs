//! The cost of watching a database: pgbench's TPS on a throwaway PostgreSQL with Pitwall
//! collecting every second (server counters, `pg_stat_statements` deltas, the workload by
//! statement), against pgbench alone, alternating in the same run.
//!
//! `cargo bench -p pitwall --bench pgbench -- 20` (the argument is the seconds per run).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use pitwall::TargetKind;
use pitwall::config::Target;
use pitwall::harness::PgServer;
use pitwall::postgres::workload::{SlowQuery, Workloads};
use pitwall::secret::SecretUrl;
use pitwall::telemetry::{Telemetry, collect};

const CLIENTS: &str = "4";
const ROUNDS: usize = 3;

/// pgbench, connected to `pg`.
fn command(pg: &PgServer) -> Command {
    let mut c = Command::new(pg.program("pgbench"));
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &pg.port().to_string(),
        "-U",
        "postgres",
    ]);
    c
}

/// Runs pgbench for `seconds` and returns its TPS.
fn pgbench(pg: &PgServer, seconds: u64) -> f64 {
    let out = command(pg)
        .args([
            "-c",
            CLIENTS,
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-n",
            "bench",
        ])
        .output()
        .expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no tps in: {text}"))
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let pg = PgServer::start().await.expect("PostgreSQL starts");
    let mut c = pg.connect("postgres").await.unwrap();
    sqlx::query("CREATE DATABASE bench")
        .execute(&mut c)
        .await
        .unwrap();
    let init = command(&pg)
        .args(["-i", "-s", "10", "-q", "bench"])
        .output()
        .expect("pgbench -i runs");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let target = Target::new(
        "bench",
        TargetKind::Postgres,
        SecretUrl::parse(&pg.url("bench")).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let second = Duration::from_secs(1);
    let timeout = Duration::from_millis(900);
    // Warm the caches once.
    pgbench(&pg, 3);
    let (mut alone, mut watched) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        alone.push(tokio::task::block_in_place(|| pgbench(&pg, seconds)));
        let streams = Arc::new(AtomicUsize::new(0));
        let collectors = collect::for_targets(
            std::slice::from_ref(&target),
            dir.path(),
            streams.clone(),
            second,
            second,
            timeout,
        );
        let telemetry = Telemetry::spawn(collectors, timeout, streams);
        let workloads = Workloads::spawn(
            std::slice::from_ref(&target),
            second,
            timeout,
            SlowQuery::default(),
        );
        watched.push(tokio::task::block_in_place(|| pgbench(&pg, seconds)));
        let polls = telemetry
            .history(
                "bench",
                pitwall::telemetry::Family::Database,
                pitwall::telemetry::metric::TPS,
                0,
            )
            .len();
        assert!(
            polls as u64 >= seconds / 2,
            "the collectors ran: {polls} polls"
        );
        drop((telemetry, workloads));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (a, w) = (mean(&alone), mean(&watched));
    println!("pgbench -c {CLIENTS} -T {seconds}, scale 10, {ROUNDS} rounds each, alternating");
    println!("  alone:                     {a:>9.1} TPS  {alone:.1?}");
    println!("  with Pitwall every second: {w:>9.1} TPS  {watched:.1?}");
    println!("  ratio:                     {:>9.3}", w / a);
}
