//! Live telemetry through the binary: one stream per tab with sequence ids and resume, closed to
//! anonymous clients, and collectors whose load on the targets does not grow with the viewers.

mod common;

use std::time::Duration;

use common::{ADMIN_PASSWORD, Console};
use futures_util::StreamExt;
use pitwall::harness::PgServer;

/// Reads server-sent events from a response until `count` events named `name` arrived; returns
/// their ids (empty when none) and data.
async fn events(
    response: reqwest::Response,
    name: &str,
    count: usize,
) -> Vec<(String, serde_json::Value)> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    while out.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("no event in 10 s");
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let named = block
                .lines()
                .any(|l| l.strip_prefix("event:").map(str::trim) == Some(name));
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map_or_else(String::new, |v| v.trim().to_owned());
            let data = block.lines().find_map(|l| l.strip_prefix("data:"));
            if let (true, Some(data)) = (named, data) {
                out.push((id, serde_json::from_str(data.trim()).unwrap()));
            }
        }
    }
    out
}

const FAST: &str = "[telemetry]\ninterval_ms = 500\nslow_interval_ms = 500\ntimeout_ms = 400\n";

#[tokio::test]
async fn one_stream_carries_snapshots_with_ids_and_resumes() {
    let console = Console::spawn(FAST).await;
    let anonymous = console.client();
    assert_eq!(console.get(&anonymous, "/api/stream").await.0, 401);

    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let r = admin.get(console.url("/api/stream")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let got = events(r, "snapshot", 3).await;
    // The same stream carries the targets' statuses (none configured here: an empty list)…
    let r = admin.get(console.url("/api/stream")).send().await.unwrap();
    let statuses = events(r, "targets", 1).await;
    assert_eq!(statuses[0], (String::new(), serde_json::json!([])));
    // …and the pending and running jobs (none).
    let r = admin.get(console.url("/api/stream")).send().await.unwrap();
    let jobs = events(r, "jobs", 1).await;
    assert_eq!(jobs[0], (String::new(), serde_json::json!([])));
    let ids: Vec<u64> = got.iter().map(|(id, _)| id.parse().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must grow: {ids:?}"
    );
    let (last_id, last) = got.last().unwrap();
    assert_eq!(last["seq"].to_string(), *last_id);
    let families: Vec<&str> = last["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["family"].as_str().unwrap())
        .collect();
    assert!(
        families.contains(&"host") && families.contains(&"console"),
        "{families:?}"
    );

    // Reconnecting with the last id: the next event is newer than what the client has.
    let r = admin
        .get(console.url("/api/stream"))
        .header("last-event-id", last_id.as_str())
        .send()
        .await
        .unwrap();
    let next = events(r, "snapshot", 1).await;
    assert!(next[0].0.parse::<u64>().unwrap() > last_id.parse::<u64>().unwrap());
}

/// Calls of the collectors' own statements recorded by pg_stat_statements.
async fn collector_calls(pg: &PgServer) -> i64 {
    let mut conn = pg.connect("postgres").await.unwrap();
    sqlx::query_scalar(
        "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '/* pitwall:collector */%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn collector_load_does_not_grow_with_viewers() {
    let pg = PgServer::start().await.unwrap();
    let config = format!(
        // 201 streams of one session: allow them all.
        "{FAST}\n[http]\nstreams_per_session = 256\n\n[[postgres]]\nname = \"db\"\nurl = \"{}\"\n",
        pg.url("postgres")
    );
    let console = Console::spawn(&config).await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let window = Duration::from_secs(4);

    let mut one = vec![admin.get(console.url("/api/stream")).send().await.unwrap()];
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = collector_calls(&pg).await;
    tokio::time::sleep(window).await;
    let with_one = collector_calls(&pg).await - before;

    let mut many = Vec::new();
    for _ in 0..200 {
        many.push(admin.get(console.url("/api/stream")).send().await.unwrap());
    }
    let before = collector_calls(&pg).await;
    tokio::time::sleep(window).await;
    let with_many = collector_calls(&pg).await - before;
    let (_, health) = console.health().await;
    assert_eq!(health["status"], "ok");

    // Three statements every 500 ms (the database's counters, the statement totals behind the
    // p95, the workload by statement) for 4 s: about 24, whoever watches.
    assert!(
        (16..=32).contains(&with_one),
        "collector statements with one viewer: {with_one}"
    );
    assert!(
        (with_many - with_one).abs() <= 4,
        "with 1 viewer {with_one}, with 201 viewers {with_many}"
    );
    one.clear();
    many.clear();
}

#[tokio::test]
async fn open_streams_do_not_hold_up_a_shutdown() {
    let mut console = Console::spawn(FAST).await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let stream = admin.get(console.url("/api/stream")).send().await.unwrap();
    let mut body = stream.bytes_stream();
    body.next().await.unwrap().unwrap();
    let took = console.terminate();
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?} with a stream open"
    );
}
