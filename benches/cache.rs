//! Cache jobs against their raw baselines, each measured in the same run on a throwaway
//! PostgreSQL and Redis:
//!
//! - warming: a `warm_cache` job's keys per second (query streamed from PostgreSQL, pipelined
//!   `SET … EX`) against `redis-benchmark -t set -P 64` with the same value size (which
//!   overwrites one key), and against `redis-benchmark -P 64 -r` sending the job's own command,
//!   `SET key value EX ttl`, to distinct keys;
//! - purging: an `invalidate_tag` job's keys per second with its defaults (`SSCAN` batches of
//!   500, one `UNLINK` per key, members removed, adaptive pacing), then with batches of 250, then
//!   with a fixed 2 ms pause between batches, against a raw loop of pipelined `UNLINK`s of the
//!   same keys in the order they were written, and the same loop in the tag's order (the order
//!   any purge reads them in, which costs Redis more CPU per key), each under a probe that times
//!   a `PING` every 2 ms (p50/p99); and a raw loop of the commands any tag purge must send
//!   (`SSCAN`, one `UNLINK` per key, `SREM`), pipelined, as a third baseline. Each purge also
//!   gives the share of its time Redis spent on the CPU (`INFO cpu`).
//!
//! `cargo bench -p pitwall --bench cache -- 1000000` (the argument is the keys per run; the
//! default is the issue's million-key tag).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::cache::recipe::{Recipe, Template, WarmValue};
use pitwall::config::Target;
use pitwall::harness::{self, RedisServer};
use pitwall::jobs::{Backoff, Enqueued, Jobs, Kinds, NewJob, Runner, RunnerSettings, kinds};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use redis::aio::MultiplexedConnection;
use sqlx::Executor;

/// Keys per pipeline of the warming job and of the raw loops (the purge job keeps its default).
const BATCH: usize = 1_000;

/// A connection that waits as long as emptying a large database takes.
async fn conn(redis: &RedisServer) -> MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    redis::Client::open(redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Times a `PING` every 2 ms until `stop`; the samples, sorted.
fn probe(
    mut c: MultiplexedConnection,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
            samples.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.sort();
        samples
    })
}

/// The CPU time Redis has used so far (user and system), in seconds.
async fn redis_cpu(c: &mut MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(c).await.unwrap();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))
        })
        .map(|v| v.trim().parse::<f64>().unwrap())
        .sum()
}

/// The share of `took` Redis spent on the CPU since it had used `cpu_before`, in percent.
async fn busy(c: &mut MultiplexedConnection, cpu_before: f64, took: Duration) -> f64 {
    (redis_cpu(c).await - cpu_before) / took.as_secs_f64() * 100.0
}

fn pct(samples: &[Duration], p: usize) -> f64 {
    samples[(samples.len() * p / 100).min(samples.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `work` under the probe: what it gives, how long it took, the share of that time Redis
/// was busy, and the probe's samples.
async fn under_probe<T>(
    redis: &RedisServer,
    work: impl Future<Output = T>,
) -> (T, Duration, f64, Vec<Duration>) {
    let mut c = conn(redis).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(conn(redis).await, stop.clone());
    let cpu = redis_cpu(&mut c).await;
    let started = Instant::now();
    let out = work.await;
    let took = started.elapsed();
    let busy = busy(&mut c, cpu, took).await;
    stop.store(true, Ordering::Relaxed);
    (out, took, busy, probing.await.unwrap())
}

/// Unlinks `keys` in their order, a pipeline of one `UNLINK` per key per batch, under the probe:
/// keys per second, the share of the time Redis was busy, and the probe's samples.
async fn unlink_loop(redis: &RedisServer, keys: &[String]) -> (f64, f64, Vec<Duration>) {
    let mut c = conn(redis).await;
    let ((), took, busy, samples) = under_probe(redis, async {
        for chunk in keys.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("UNLINK").arg(k).ignore();
            }
            let _: () = pipe.query_async(&mut c).await.unwrap();
        }
    })
    .await;
    (keys.len() as f64 / took.as_secs_f64(), busy, samples)
}

/// Every member of the set `key`, in the order `SSCAN` reads them (the order any purge takes).
async fn members(c: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let (mut all, mut cursor) = (Vec::new(), 0u64);
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(c)
            .await
            .unwrap();
        all.extend(found);
        cursor = next;
        if cursor == 0 {
            return all;
        }
    }
}

/// Runs one job to its end; its report and wall time.
async fn run_job(jobs: &Jobs, kinds: &Kinds, job: NewJob) -> (serde_json::Value, Duration) {
    let admin = Actor {
        name: "bench".into(),
        role: Role::Admin,
        client_addr: None,
    };
    let started = Instant::now();
    let (_, queued) = jobs
        .submit(&admin, kinds, job, Some("cache"))
        .await
        .unwrap();
    let Some(Enqueued::New(id)) = queued else {
        panic!("not queued")
    };
    loop {
        let j = jobs.job(id).await.unwrap();
        if j.state.is_finished() {
            assert_eq!(j.state, pitwall::jobs::JobState::Succeeded, "{j:?}");
            return (j.report.unwrap(), started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What `redis-benchmark` sends.
enum Sets {
    /// `-t set -d size`: `SET key:__rand_int__ <size bytes>`, always the same key.
    OneKey,
    /// `-r n SET key:__rand_int__ <size bytes> EX 3600`: the job's command, on up to n keys.
    DistinctWithTtl,
}

/// `redis-benchmark -P 64 -c clients` sending `n` SETs of `size`-byte values into an emptied
/// database: SETs per second, and the keys written.
async fn redis_benchmark(
    redis: &RedisServer,
    c: &mut MultiplexedConnection,
    sets: Sets,
    n: usize,
    size: usize,
    clients: usize,
) -> (f64, u64) {
    let _: () = redis::cmd("FLUSHALL").query_async(c).await.unwrap();
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
        .args([
            "-P",
            "64",
            "-q",
            "-c",
            &clients.to_string(),
            "-n",
            &n.to_string(),
        ]);
    match sets {
        Sets::OneKey => cmd.args(["-t", "set", "-d", &size.to_string()]),
        Sets::DistinctWithTtl => cmd
            .args([
                "-r",
                &n.to_string(),
                "SET",
                "key:__rand_int__",
                &"x".repeat(size),
            ])
            .args(["EX", "3600"]),
    };
    let out = cmd
        .output()
        .expect("redis-benchmark runs (it comes with redis-server)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 512820.53 requests per second, p50=…" (after carriage-return progress lines); a
    // command given in full is named in full.
    let rate = text
        .rsplit('\r')
        .flat_map(|part| part.lines())
        .find_map(|l| l.starts_with("SET").then(|| l.split_once(": ")).flatten())
        .and_then(|(_, l)| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no SET figure in redis-benchmark's output: {text}"));
    let keys = redis::cmd("DBSIZE").query_async(c).await.unwrap();
    (rate, keys)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let (pg, redis) = harness::start_both().await.unwrap();
    let mut setup = pg.connect("postgres").await.unwrap();
    setup
        .execute(
            format!(
                "CREATE TABLE bench_items AS SELECT i::bigint AS id, repeat('x', 80) AS payload \
                 FROM generate_series(1, {n}) i"
            )
            .as_str(),
        )
        .await
        .unwrap();
    // Done now, or autovacuum takes a core of the two during the first purge measured.
    setup.execute("VACUUM ANALYZE bench_items").await.unwrap();
    let size: f64 =
        sqlx::query_scalar("SELECT avg(length(row_to_json(q)::text))::float8 FROM bench_items q")
            .fetch_one(&mut pg.connect("postgres").await.unwrap())
            .await
            .unwrap();
    let url = |s: String| SecretUrl::parse(&s).unwrap();
    let targets = [
        Target::new("db", TargetKind::Postgres, url(pg.url("postgres"))),
        Target {
            recipes: vec![Recipe {
                name: "items".into(),
                postgres: "db".into(),
                sql: "SELECT id, payload FROM bench_items".into(),
                key: Template::parse("item:{id}").unwrap(),
                value: WarmValue::Row,
                ttl_secs: 3_600,
                jitter: 0.1,
                tags: Vec::new(),
                refresh_ahead: None,
                every_secs: None,
                batch: BATCH,
                timeout_secs: 600,
                max_rows: pitwall::cache::recipe::MAX_ROWS_LIMIT,
            }],
            ..Target::new("cache", TargetKind::Redis, url(redis.url(0)))
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let jobs = Jobs::new(store, Backoff::default());
    let kinds = kinds::all(&targets);
    let _runner = Runner::spawn(
        jobs.clone(),
        kinds.clone(),
        RunnerSettings {
            name: "bench".into(),
            workers: 1,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(2),
            per_target: 1,
        },
    );
    let mut c = conn(&redis).await;
    println!(
        "cache jobs, {n} keys per run, values of {size:.0} bytes, raw batches and warming batches of {BATCH}; machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The source alone: the recipe's rows streamed from PostgreSQL, written nowhere.
    let started = Instant::now();
    let mut source = pg.connect("postgres").await.unwrap();
    let mut rows = sqlx::query_scalar::<_, String>(
        "SELECT row_to_json(q)::text FROM (SELECT id, payload FROM bench_items) AS q",
    )
    .fetch(&mut source);
    let mut read = 0usize;
    while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows)
        .await
        .unwrap()
    {
        read += row.len().min(1);
    }
    drop(rows);
    println!(
        "rows streamed from PostgreSQL alone:     {:>10.0} rows/s",
        read as f64 / started.elapsed().as_secs_f64()
    );

    // Warming.
    let size = size.round() as usize;
    let (baseline, one_key) = redis_benchmark(&redis, &mut c, Sets::OneKey, n, size, 50).await;
    let (one_client, _) = redis_benchmark(&redis, &mut c, Sets::OneKey, n, size, 1).await;
    let (distinct, distinct_keys) =
        redis_benchmark(&redis, &mut c, Sets::DistinctWithTtl, n, size, 50).await;
    let (distinct_one, _) =
        redis_benchmark(&redis, &mut c, Sets::DistinctWithTtl, n, size, 1).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    let warm = NewJob {
        target: Some("cache".into()),
        ..NewJob::new("warm_cache", serde_json::json!({ "recipe": "items" }))
    };
    let (report, took) = run_job(&jobs, &kinds, warm).await;
    assert_eq!(report["written"], n as u64, "{report}");
    let warmed = n as f64 / took.as_secs_f64();
    println!(
        "redis-benchmark -t set -P 64 (baseline): {baseline:>10.0} keys/s  (50 clients, its default; {one_key} key written)"
    );
    println!("redis-benchmark -t set -P 64 -c 1:       {one_client:>10.0} keys/s");
    println!(
        "redis-benchmark -P 64 -r SET … EX:       {distinct:>10.0} keys/s  (50 clients; {distinct_keys} distinct keys written)"
    );
    println!("redis-benchmark -P 64 -r SET … EX -c 1:  {distinct_one:>10.0} keys/s");
    println!(
        "warm_cache job:                          {warmed:>10.0} keys/s  ({:.2} × baseline, {:.2} × one client; {:.2} × SET … EX on distinct keys, {:.2} × one client; target ≥ 0.5)",
        warmed / baseline,
        warmed / one_client,
        warmed / distinct,
        warmed / distinct_one
    );

    // Purging: the keys just warmed, tagged, removed by the job and then by a raw loop.
    let tag = |c: &mut MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            for chunk in (1..=n).collect::<Vec<_>>().chunks(10_000) {
                let mut pipe = redis::pipe();
                for i in chunk {
                    pipe.cmd("SET")
                        .arg(format!("item:{i}"))
                        .arg("x".repeat(size))
                        .ignore();
                    pipe.cmd("SADD")
                        .arg("tag:bench")
                        .arg(format!("item:{i}"))
                        .ignore();
                }
                let _: () = pipe.query_async(&mut c).await.unwrap();
            }
        }
    };
    // Each purge job on the freshly tagged keys: keys per second, Redis busy, the probe.
    let mut purge = async |parameters: serde_json::Value| {
        tag(&mut c).await;
        let job = NewJob {
            target: Some("cache".into()),
            ..NewJob::new("invalidate_tag", parameters)
        };
        let ((report, _), took, busy, probe) =
            under_probe(&redis, run_job(&jobs, &kinds, job)).await;
        assert_eq!(report["unlinked"], n as u64, "{report}");
        (n as f64 / took.as_secs_f64(), busy, probe)
    };
    let (purged, job_busy, job_probe) = purge(serde_json::json!({ "tag": "bench" })).await;
    let (small, small_busy, small_probe) =
        purge(serde_json::json!({ "tag": "bench", "batch": 250 })).await;
    let (fixed, fixed_busy, fixed_probe) =
        purge(serde_json::json!({ "tag": "bench", "pause_ms": 2 })).await;

    tag(&mut c).await;
    let written: Vec<String> = (1..=n).map(|i| format!("item:{i}")).collect();
    let (raw, raw_busy, raw_probe) = unlink_loop(&redis, &written).await;
    tag(&mut c).await;
    let in_tag_order = members(&mut c, "tag:bench").await;
    let (raw_tagged, raw_tagged_busy, raw_tagged_probe) = unlink_loop(&redis, &in_tag_order).await;

    // The commands any purge of a tag must send, with nothing else: scan a batch, unlink each
    // member, remove the batch from the tag.
    tag(&mut c).await;
    let cpu = redis_cpu(&mut c).await;
    let started = Instant::now();
    let mut cursor = 0u64;
    loop {
        let (next, members): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg("tag:bench")
            .arg(cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut c)
            .await
            .unwrap();
        if !members.is_empty() {
            let mut pipe = redis::pipe();
            for m in &members {
                pipe.cmd("UNLINK").arg(m).ignore();
            }
            pipe.cmd("SREM").arg("tag:bench").arg(&members).ignore();
            let _: () = pipe.query_async(&mut c).await.unwrap();
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let took = started.elapsed();
    let same_commands = n as f64 / took.as_secs_f64();
    let same_busy = busy(&mut c, cpu, took).await;
    println!(
        "raw pipelined UNLINK (baseline):         {raw:>10.0} keys/s  probe p50 {:.2} ms, p99 {:.2} ms  Redis busy {raw_busy:.0} %",
        pct(&raw_probe, 50),
        pct(&raw_probe, 99)
    );
    println!(
        "raw pipelined UNLINK, in the tag's order: {raw_tagged:>9.0} keys/s  probe p50 {:.2} ms, p99 {:.2} ms  ({:.2} × baseline)  Redis busy {raw_tagged_busy:.0} %",
        pct(&raw_tagged_probe, 50),
        pct(&raw_tagged_probe, 99),
        raw_tagged / raw
    );
    println!(
        "raw SSCAN + UNLINK each + SREM loop:     {same_commands:>10.0} keys/s  ({:.2} × baseline)  Redis busy {same_busy:.0} %",
        same_commands / raw
    );
    println!(
        "invalidate_tag job:                      {purged:>10.0} keys/s  probe p50 {:.2} ms, p99 {:.2} ms  ({:.2} × baseline, {:.2} × in the tag's order, {:.2} × the same commands; targets ≥ 0.5, p99 < 5 ms)  Redis busy {job_busy:.0} %",
        pct(&job_probe, 50),
        pct(&job_probe, 99),
        purged / raw,
        purged / raw_tagged,
        purged / same_commands
    );
    let variant = |label: &str, rate: f64, busy: f64, probe: &[Duration]| {
        println!(
            "{:<40} {rate:>10.0} keys/s  probe p50 {:.2} ms, p99 {:.2} ms  ({:.2} × baseline)  Redis busy {busy:.0} %",
            format!("invalidate_tag job, {label}:"),
            pct(probe, 50),
            pct(probe, 99),
            rate / raw
        );
    };
    variant("batch 250", small, small_busy, &small_probe);
    variant("pause_ms 2", fixed, fixed_busy, &fixed_probe);
}
