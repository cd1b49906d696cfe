//! The Cache page's reads against a real Redis: server facts and keys per database from INFO,
//! the slow log and latency events with their thresholds, and a managed-Redis style user whose
//! ACL refuses CONFIG (the thresholds say so, the entries stay) or SLOWLOG (that panel says so,
//! the others stay).

use std::time::Duration;

use pitwall::TargetKind;
use pitwall::cache::Setting;
use pitwall::cache::inspect::Caches;
use pitwall::config::Target;
use pitwall::harness::RedisServer;
use pitwall::secret::SecretUrl;

fn target(name: &str, url: &str) -> Target {
    Target::new(name, TargetKind::Redis, SecretUrl::parse(url).unwrap())
}

#[tokio::test]
async fn application_counters_give_each_cache_its_own_hit_rate() {
    use pitwall::telemetry::collect::{Collector, RedisCollector};
    use pitwall::telemetry::metric;
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut t = target("cache", &redis.url(0));
    t.counters = vec![pitwall::cache::HitCounter {
        name: "ai".into(),
        hits_key: "ai_cache:hits".into(),
        misses_key: "ai_cache:misses".into(),
        cost_per_miss: Some(0.002),
    }];
    let mut collector = RedisCollector::new(&t, Duration::from_secs(2)).unwrap();
    // Before the application counted anything: no keys, and no figures from one round.
    let first = collector.collect(1_000).await.unwrap();
    assert!(
        first.iter().all(|(k, _)| !k.starts_with("app_")),
        "{first:?}"
    );
    let _: () = redis::pipe()
        .cmd("INCRBY")
        .arg("ai_cache:hits")
        .arg(30)
        .cmd("INCRBY")
        .arg("ai_cache:misses")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    let next = collector.collect(3_000).await.unwrap();
    let get = |m: String| next.iter().find(|(k, _)| *k == m).map(|(_, v)| *v);
    assert_eq!(get(metric::app_hit_rate("ai")), Some(75.0), "{next:?}");
    assert_eq!(get(metric::app_hits("ai")), Some(15.0));
    assert_eq!(get(metric::app_misses("ai")), Some(5.0));
    // The server-wide figures still come with them.
    assert!(
        get(metric::KEYS.to_owned()).is_some_and(|k| k == 2.0),
        "{next:?}"
    );
    let details = Caches::new(&[t], Duration::from_secs(2))
        .details("cache")
        .await
        .unwrap();
    assert_eq!(details.counters.len(), 1);
}

#[tokio::test]
async fn details_read_slowlog_latency_and_degrade_per_panel() {
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let run = async |c: &mut redis::aio::MultiplexedConnection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async::<redis::Value>(c)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    };
    run(
        &mut c,
        &["CONFIG", "SET", "slowlog-log-slower-than", "1000"],
    )
    .await;
    run(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]).await;
    run(&mut c, &["SLOWLOG", "RESET"]).await;
    for i in 0..30 {
        let ttl = if i % 3 == 0 { None } else { Some("600") };
        let key = format!("page:{i}");
        match ttl {
            Some(t) => run(&mut c, &["SET", &key, "v", "EX", t]).await,
            None => run(&mut c, &["SET", &key, "v"]).await,
        }
    }
    run(&mut c, &["SELECT", "2"]).await;
    run(&mut c, &["SET", "other", "v"]).await;
    run(&mut c, &["SELECT", "0"]).await;
    // A busy script: slower than both thresholds.
    run(
        &mut c,
        &[
            "EVAL",
            "local i = 0 while i < 3000000 do i = i + 1 end return i",
            "0",
        ],
    )
    .await;
    // Users as a managed Redis might hand out: one without CONFIG, one without SLOWLOG.
    run(
        &mut c,
        &[
            "ACL", "SETUSER", "noconfig", "on", ">pw-1", "~*", "&*", "+@all", "-config",
        ],
    )
    .await;
    run(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "noslowlog",
            "on",
            ">pw-2",
            "~*",
            "&*",
            "+@all",
            "-slowlog",
        ],
    )
    .await;

    let port = redis.port();
    let caches = Caches::new(
        &[
            target("cache", &redis.url(0)),
            target(
                "managed",
                &format!("redis://noconfig:pw-1@127.0.0.1:{port}/0"),
            ),
            target(
                "locked",
                &format!("redis://noslowlog:pw-2@127.0.0.1:{port}/0"),
            ),
        ],
        Duration::from_secs(2),
    );
    assert_eq!(caches.targets(), ["cache", "managed", "locked"]);

    let d = caches.details("cache").await.unwrap();
    let server = d.server.as_ref().unwrap();
    assert_eq!(
        (server.mode.as_str(), server.role.as_str()),
        ("standalone", "master")
    );
    assert!(
        server.version.starts_with(|c: char| c.is_ascii_digit()),
        "{server:?}"
    );
    assert_eq!(server.maxmemory_policy, "noeviction");
    let keyspace = d.keyspace.as_ref().unwrap();
    let db0 = keyspace.iter().find(|k| k.db == 0).unwrap();
    assert_eq!((db0.keys, db0.expires, db0.persistent()), (30, 20, 10));
    // Redis estimates avg_ttl in its expire cycle: zero until the first one samples.
    assert!(db0.avg_ttl_ms <= 600_000, "{db0:?}");
    assert_eq!(keyspace.iter().find(|k| k.db == 2).map(|k| k.keys), Some(1));
    let slowlog = d.slowlog.as_ref().unwrap();
    assert_eq!(slowlog.threshold_us, Setting::Value(1000));
    assert_eq!(slowlog.entries.len(), 1, "{slowlog:?}");
    let eval = &slowlog.entries[0];
    assert!(eval.command.starts_with("EVAL local i = 0"), "{eval:?}");
    assert!(eval.duration_us >= 1000, "{eval:?}");
    assert!(eval.client.starts_with("127.0.0.1:"), "{eval:?}");
    assert!(eval.at_ms <= d.read_at_ms && eval.at_ms + 60_000 > d.read_at_ms);
    let latency = d.latency.as_ref().unwrap();
    assert_eq!(latency.threshold_ms, Setting::Value(1));
    let command = latency.events.iter().find(|e| e.event == "command");
    assert!(command.is_some_and(|e| e.max_ms >= 1), "{latency:?}");

    // CONFIG refused: the thresholds say why, the entries are still read.
    let d = caches.details("managed").await.unwrap();
    let slowlog = d.slowlog.as_ref().unwrap();
    match &slowlog.threshold_us {
        Setting::Unavailable(why) => {
            assert!(why.contains("CONFIG GET is not available here"), "{why}");
            assert!(why.contains("no permissions"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(slowlog.entries.len(), 1);
    assert!(matches!(
        d.latency.unwrap().threshold_ms,
        Setting::Unavailable(_)
    ));
    assert!(d.server.is_ok());

    // SLOWLOG refused: that panel says so, the others are read on the same connection.
    let d = caches.details("locked").await.unwrap();
    let err = d.slowlog.unwrap_err();
    assert!(err.starts_with("SLOWLOG is not available here"), "{err}");
    assert!(d.server.is_ok() && d.keyspace.is_ok() && d.latency.is_ok());
    assert!(!err.contains("pw-2"));

    // An unknown target and a stopped server are errors of the whole read.
    assert!(
        caches
            .details("nope")
            .await
            .unwrap_err()
            .contains("no Redis target")
    );
    drop(c);
    let mut redis = redis;
    redis.stop();
    let err = caches.details("cache").await.unwrap_err();
    assert!(!err.is_empty());
}

#[tokio::test]
async fn tags_are_found_by_the_start_of_their_name_and_an_exact_name_past_the_scan_budget() {
    use pitwall::cache::tags::{SCAN_CALLS, SCAN_COUNT};
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    pipe.cmd("SADD").arg("tag:needle").arg("page:1").ignore();
    pipe.cmd("SADD").arg("tag:needles").arg("page:2").ignore();
    pipe.cmd("ZADD")
        .arg("tag:pin:entries")
        .arg(-1)
        .arg("page:3")
        .ignore();
    pipe.cmd("SADD").arg("tag:a\\b").arg("page:4").ignore();
    pipe.cmd("SADD").arg("tag:aXb").arg("page:5").ignore();
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let caches = Caches::new(&[target("cache", &redis.url(0))], Duration::from_secs(2));

    // Only the names with the start, and the whole keyspace seen.
    let r = caches.tags("cache", "needle").await.unwrap();
    assert_eq!(r.start, "needle");
    assert!(r.complete, "{r:?}");
    let mut names: Vec<&str> = r.tags.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["needle", "needles"], "each tag once: {r:?}");
    // A sorted-set tag by its name (its key ends with `:entries`).
    let r = caches.tags("cache", "pi").await.unwrap();
    let keys: Vec<&str> = r.tags.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["tag:pin:entries"], "{r:?}");
    // A backslash in a name is taken literally, not as a glob escape.
    let r = caches.tags("cache", "a\\").await.unwrap();
    let names: Vec<&str> = r.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a\\b"], "{r:?}");
    // Bad starts are refused with the reason; the target stays readable.
    let bad = caches.tags("cache", "need*").await.unwrap_err();
    assert!(bad.contains("not a pattern"), "{bad}");
    let bad = caches.tags("cache", "tag:needle").await.unwrap_err();
    assert!(bad.contains("without the prefix"), "{bad}");
    let bad = caches.tags("cache", &"x".repeat(300)).await.unwrap_err();
    assert!(bad.contains("at most 256 bytes"), "{bad}");

    // More plain keys than one read's SCAN budget looks at: a scan alone may now miss a tag,
    // but the one named exactly so is always found.
    let plain = SCAN_CALLS * SCAN_COUNT * 2;
    for chunk in (0..plain).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("page:{i}")).arg("v").ignore();
        }
        let _: () = pipe.query_async(&mut c).await.unwrap();
    }
    let r = caches.tags("cache", "needle").await.unwrap();
    assert!(!r.complete, "the scan stops at its budget: {r:?}");
    let needle = r.tags.iter().find(|t| t.name == "needle");
    assert!(
        needle.is_some_and(|t| t.key == "tag:needle" && t.members == 1),
        "{r:?}"
    );
    assert!(r.tags.iter().all(|t| t.name.starts_with("needle")), "{r:?}");
}

#[tokio::test]
async fn the_tag_registry_counts_members_stale_members_and_memory() {
    use pitwall::cache::TagLayout;
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(0)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    // A set tag of 10 keys, 4 of them still there; small enough to be looked at whole.
    for i in 0..10 {
        pipe.cmd("SADD")
            .arg("tag:project:1")
            .arg(format!("summary:{i}"))
            .ignore();
    }
    for i in 0..4 {
        pipe.cmd("SET")
            .arg(format!("summary:{i}"))
            .arg("v")
            .ignore();
    }
    // A big set tag: 2,000 members, none of whose keys exist (estimated from a sample).
    for i in 0..2_000 {
        pipe.cmd("SADD")
            .arg("tag:gone")
            .arg(format!("old:{i}"))
            .ignore();
    }
    // Laravel's layout: scored by expiry (-1 forever); two in the past, one ahead, one forever.
    let now = pitwall::status::now_ms() / 1000;
    for (score, member) in [(now - 100, "a"), (now - 5, "b"), (now + 600, "c")] {
        pipe.cmd("ZADD")
            .arg("tag:users:entries")
            .arg(score)
            .arg(member)
            .ignore();
    }
    pipe.cmd("ZADD")
        .arg("tag:users:entries")
        .arg(-1)
        .arg("d")
        .ignore();
    // Not tags: another type under the prefix, and sets elsewhere.
    pipe.cmd("SET").arg("tag:version").arg("3").ignore();
    pipe.cmd("SADD").arg("sessions:active").arg("x").ignore();
    let _: () = pipe.query_async(&mut c).await.unwrap();

    let caches = Caches::new(&[target("cache", &redis.url(0))], Duration::from_secs(2));
    let r = caches.tags("cache", "").await.unwrap();
    assert!(r.complete);
    assert_eq!(r.prefix, "tag:");
    let names: Vec<&str> = r.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["gone", "project:1", "users"],
        "most members first: {r:?}"
    );
    let gone = &r.tags[0];
    assert_eq!(
        (gone.layout, gone.members, gone.sampled),
        (TagLayout::Set, 2_000, 50)
    );
    assert_eq!(gone.stale, 2_000, "every sampled member is gone: {gone:?}");
    assert!(gone.memory_bytes.is_some_and(|b| b > 10_000), "{gone:?}");
    let project = &r.tags[1];
    assert_eq!(
        (project.members, project.stale, project.sampled),
        (10, 6, 10)
    );
    let users = &r.tags[2];
    assert_eq!(users.key, "tag:users:entries");
    assert_eq!(
        (users.layout, users.members, users.stale),
        (TagLayout::SortedSet, 4, 2)
    );
    assert!(
        caches
            .tags("nope", "")
            .await
            .unwrap_err()
            .contains("no Redis target")
    );
}
