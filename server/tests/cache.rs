//! `pitwall cache stats` against a real Redis: the interval's hit rate and the keys per database
//! as Redis counts them, in text and JSON, and a stopped target failing the command.

mod common;

use std::path::Path;

use pitwall::harness::RedisServer;

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
async fn cache_stats_prints_figures_keys_and_fails_for_a_stopped_target() {
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
    assert!(!out.contains("redis://"), "addresses are redacted: {out}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.await.unwrap();

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
