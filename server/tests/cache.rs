//! The `pitwall cache` commands against a real Redis (and PostgreSQL for warming): `stats` with
//! the interval's hit rate and the keys per database as Redis counts them, in text and JSON, and a
//! stopped target failing the command; `warm`, `invalidate` and `prune` planning, queueing and
//! waiting for jobs a running console executes, and refusing bad input.

mod common;

use std::path::Path;

use common::Console;
use pitwall::harness::{self, RedisServer};
use sqlx::Executor;

fn run(dir: &Path, config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = common::command(dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_stats_and_tags_print_what_they_read_and_fail_for_a_bad_or_stopped_target() {
    let mut redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..40 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .arg("EX")
            .arg(600)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("forever")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    // Hits and misses while the command measures its second, 3 hits for every miss (on a
    // worker thread of its own: the command runs blocking).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = if round % 4 == 3 {
                    "missing".to_owned()
                } else {
                    format!("k{}", round % 40)
                };
                let _: Option<String> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                round += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pitwall.toml");
    std::fs::write(
        &config,
        format!("[[redis]]\nname = \"cache\"\nurl = \"{}\"\n", redis.url(0)),
    )
    .unwrap();

    let (code, out, err) = run(dir.path(), &config, &["cache", "stats", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stats = &json["cache"];
    let hit = stats["figures"]["hit_rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("{out}"));
    assert!((60.0..=90.0).contains(&hit), "3 hits for every miss: {hit}");
    assert!(stats["figures"]["ops_per_sec"].as_f64().unwrap() > 10.0);
    assert_eq!(stats["figures"]["keys"].as_f64(), Some(41.0));
    let db0 = &stats["details"]["keyspace"]["Ok"][0];
    assert_eq!(
        (
            db0["db"].as_u64(),
            db0["keys"].as_u64(),
            db0["expires"].as_u64()
        ),
        (Some(0), Some(41), Some(40))
    );
    assert_eq!(stats["details"]["server"]["Ok"]["role"], "master");

    let (code, out, err) = run(dir.path(), &config, &["cache", "stats"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("db0: 41 keys, 40 with a TTL, 1 without"),
        "{out}"
    );
    assert!(
        out.contains("policy noeviction (warning: no maxmemory"),
        "{out}"
    );
    assert!(out.contains(" (maxmemory: no limit), "), "{out}");
    assert!(!out.contains("redis://"), "addresses are redacted: {out}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.await.unwrap();

    // The tag registry, whole or by the start of the names.
    let _: () = redis::pipe()
        .cmd("SADD")
        .arg("tag:project:1")
        .arg("k1")
        .arg("k2")
        .ignore()
        .cmd("SADD")
        .arg("tag:projects")
        .arg("gone:3")
        .ignore()
        .query_async(
            &mut redis::Client::open(redis.url(0))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let (code, out, err) = run(dir.path(), &config, &["cache", "tags", "--target", "cache"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("project:1  (tag:project:1, set): members 2, stale 0, memory "),
        "most members first: {out}"
    );
    assert!(
        out.contains("\nprojects  (tag:projects, set): members 1, stale 1, memory "),
        "{out}"
    );
    let (code, out, err) = run(
        dir.path(),
        &config,
        &[
            "cache", "tags", "--target", "cache", "--start", "project:", "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["start"], "project:");
    assert_eq!(json["complete"], true);
    let names: Vec<&str> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["project:1"]);
    let (code, _, err) = run(
        dir.path(),
        &config,
        &["cache", "tags", "--target", "cache", "--start", "proj*"],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("\"proj*\" contains '*'"), "{err}");

    let (code, _, err) = run(dir.path(), &config, &["cache", "stats", "--target", "nope"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no Redis target is named \"nope\""), "{err}");

    redis.stop();
    let (code, _, err) = run(dir.path(), &config, &["cache", "stats"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cache: ") && err.contains("1 target(s) down"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_warm_invalidate_and_prune_queue_jobs_a_console_runs() {
    let (pg, redis) = harness::start_both().await.unwrap();
    pg.connect("postgres")
        .await
        .unwrap()
        .execute(
            "CREATE TABLE items AS SELECT i AS id, 'item ' || i AS name FROM generate_series(1, 20) i;
             ANALYZE items",
        )
        .await
        .unwrap();
    let console = Console::spawn(&format!(
        "[[postgres]]\nname = \"db\"\nurl = \"{}\"\n\n[[redis]]\nname = \"cache\"\nurl = \"{}\"\n\n\
         [[redis.recipes]]\nname = \"items\"\npostgres = \"db\"\nsql = \"SELECT id, name FROM items\"\n\
         key = \"item:{{id}}\"\nttl_secs = 300\ntags = [\"items\"]\nrefresh_ahead = 0.2\n",
        pg.url("postgres"),
        redis.url(0)
    ))
    .await;
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let cli = |args: &[&str]| {
        let console = &console;
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tokio::task::block_in_place(|| console.cli(&args))
        }
    };

    let (code, out) = cli(&["cache", "warm", "items", "--dry-run"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("plan: Warms recipe `items`: about 20 rows from `db`"),
        "{out}"
    );
    assert!(out.contains("not queued"), "{out}");
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(keys, 0, "a dry run writes nothing");

    let (code, out) = cli(&["cache", "warm", "--all", "--wait"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("succeeded") && out.contains("\"written\":20"),
        "{out}"
    );
    let tagged: u64 = redis::cmd("SCARD")
        .arg("tag:items")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(tagged, 20);

    let (code, out) = cli(&["cache", "warm", "nope"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("no recipe is named `nope`"), "{out}");
    let (code, out) = cli(&["cache", "invalidate", "--target", "cache", "--pattern", "*"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("matches too much"), "{out}");

    let (code, out) = cli(&[
        "cache",
        "invalidate",
        "--target",
        "cache",
        "--tag",
        "items",
        "--dry-run",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("plan: Unlinks the 20 keys tagged `items`") && out.contains("not queued"),
        "{out}"
    );
    let (code, out) = cli(&[
        "cache",
        "invalidate",
        "--target",
        "cache",
        "--pattern",
        "item:1*",
        "--wait",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"unlinked\":11"),
        "item:1 and item:10 to item:19: {out}"
    );
    let (code, out) = cli(&[
        "cache", "prune", "--target", "cache", "--tag", "items", "--wait",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"removed\":11"), "{out}");
    let (code, out) = cli(&[
        "cache",
        "invalidate",
        "--target",
        "cache",
        "--tag",
        "items",
        "--wait",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"unlinked\":9"), "{out}");
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(keys, 0);
}
