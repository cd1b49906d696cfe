//! The queue monitor against a real Redis holding Celery messages in kombu's layout, with a key
//! prefix and priorities: messages in and out counted exactly while a backlog lasts, the oldest
//! message's wait, worker heartbeats from the event channel, and a read-only peek.

use std::time::Duration;

use base64::Engine;
use pitwall::TargetKind;
use pitwall::config::{CeleryBroker, Target};
use pitwall::harness::RedisServer;
use pitwall::queues::{Brokers, Error, kombu};
use pitwall::secret::SecretUrl;
use pitwall::telemetry::collect::{Collector, QueuesCollector};
use pitwall::telemetry::metric;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const PREFIX: &str = "pw:";
const TIMEOUT: Duration = Duration::from_secs(2);

fn broker(redis: &RedisServer) -> Target {
    Target {
        name: "tasks".into(),
        kind: TargetKind::Celery,
        url: SecretUrl::parse(&redis.url(2)).unwrap(),
        celery: Some(CeleryBroker {
            queues: vec!["reports".into()],
            global_keyprefix: PREFIX.into(),
        }),
        counters: Vec::new(),
        recipes: Vec::new(),
        ttl_policies: Vec::new(),
    }
}

/// A protocol-2 task message as Celery sends it.
fn message(task: &str, id: &str, arg: &str, priority: u8) -> String {
    let body = serde_json::json!([[arg], {}, {"callbacks": null}]);
    serde_json::json!({
        "body": base64::engine::general_purpose::STANDARD.encode(body.to_string()),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": id, "retries": 0, "eta": null,
            "argsrepr": format!("('{arg}',)"), "kwargsrepr": "{}"},
        "properties": {"priority": priority, "body_encoding": "base64", "delivery_tag": id,
            "delivery_info": {"exchange": "", "routing_key": "emails"}},
    })
    .to_string()
}

async fn publish(c: &mut MultiplexedConnection, queue: &str, from: usize, n: usize, priority: u8) {
    for i in from..from + n {
        let list = kombu::list(PREFIX, queue, kombu::step_for(priority));
        let m = message(
            "app.mail.send",
            &format!("{queue}-{i}"),
            &format!("arg{i}"),
            priority,
        );
        let _: () = c.lpush(list, m).await.unwrap();
    }
}

async fn consume(c: &mut MultiplexedConnection, queue: &str, priority: u8, n: usize) {
    let list = kombu::list(PREFIX, queue, kombu::step_for(priority));
    for _ in 0..n {
        let _: Option<String> = c.rpop(&list, None).await.unwrap();
    }
}

fn value(values: &[(String, f64)], name: &str) -> Option<f64> {
    values.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

#[tokio::test]
async fn in_out_and_the_oldest_wait_are_counted_per_queue() {
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(2)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = c
        .sadd(
            kombu::binding_set(PREFIX, "celery"),
            format!("emails{0}{0}emails", kombu::SEP),
        )
        .await
        .unwrap();
    publish(&mut c, "emails", 0, 5, 0).await;
    publish(&mut c, "emails", 100, 3, 6).await;
    let mut collector = QueuesCollector::new(&broker(&redis), TIMEOUT).unwrap();

    let first = collector.collect(1_000_000).await.unwrap();
    assert_eq!(value(&first, &metric::queue_depth("emails")), Some(8.0));
    assert_eq!(
        value(&first, &metric::queue_depth("reports")),
        Some(0.0),
        "configured, empty"
    );
    assert_eq!(
        value(&first, &metric::queue_in("emails")),
        None,
        "no rate from one poll"
    );
    assert_eq!(value(&first, &metric::queue_oldest("emails")), Some(0.0));

    // 8 arrive (4 at priority 0, 1 at 3, 3 at 9) and 6 are taken, across sub-lists.
    publish(&mut c, "emails", 5, 4, 0).await;
    publish(&mut c, "emails", 300, 1, 3).await;
    publish(&mut c, "emails", 200, 3, 9).await;
    consume(&mut c, "emails", 0, 4).await;
    consume(&mut c, "emails", 6, 2).await;
    let second = collector.collect(1_004_000).await.unwrap();
    assert_eq!(value(&second, &metric::queue_depth("emails")), Some(10.0));
    assert_eq!(value(&second, &metric::queue_in("emails")), Some(8.0 / 4.0));
    assert_eq!(
        value(&second, &metric::queue_out("emails")),
        Some(6.0 / 4.0)
    );
    assert_eq!(
        value(&second, &metric::queue_exact("emails")),
        Some(0.0),
        "priorities 3 and 9 were empty: lower bounds"
    );
    assert_eq!(value(&second, &metric::queue_arrived("emails")), Some(16.0));
    assert_eq!(value(&second, &metric::queue_left("emails")), Some(6.0));
    assert_eq!(
        value(&second, &metric::queue_oldest("emails")),
        Some(4.0),
        "the oldest left were there at the first poll"
    );

    // A backlog on every sub-list: the counts are exact.
    publish(&mut c, "emails", 9, 2, 0).await;
    consume(&mut c, "emails", 0, 3).await;
    let third = collector.collect(1_006_000).await.unwrap();
    assert_eq!(value(&third, &metric::queue_in("emails")), Some(1.0));
    assert_eq!(value(&third, &metric::queue_out("emails")), Some(1.5));
    assert_eq!(value(&third, &metric::queue_exact("emails")), Some(1.0));
    assert_eq!(value(&third, metric::IN_PER_SEC), Some(1.0));

    // Everything that was there at the first poll is taken: the oldest arrived by the second.
    consume(&mut c, "emails", 0, 4).await;
    consume(&mut c, "emails", 6, 1).await;
    let fourth = collector.collect(1_010_000).await.unwrap();
    assert_eq!(value(&fourth, &metric::queue_depth("emails")), Some(4.0));
    assert_eq!(value(&fourth, &metric::queue_oldest("emails")), Some(6.0));
    assert_eq!(value(&fourth, metric::QUEUE_DEPTH), Some(4.0));
}

#[tokio::test]
async fn reserved_messages_and_worker_heartbeats_are_shown() {
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(2)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let _: () = c
        .hset(format!("{PREFIX}unacked"), "t1", "[]")
        .await
        .unwrap();
    let _: () = c
        .zadd(format!("{PREFIX}unacked_index"), "t1", now - 90.0)
        .await
        .unwrap();
    let mut collector = QueuesCollector::new(&broker(&redis), TIMEOUT).unwrap();
    let at = pitwall::status::now_ms();
    let values = collector.collect(at).await.unwrap();
    assert_eq!(value(&values, metric::UNACKED), Some(1.0));
    let held = value(&values, metric::UNACKED_OLDEST).unwrap();
    assert!((89.0..92.0).contains(&held), "held {held} s");
    assert_eq!(value(&values, metric::WORKERS_ONLINE), Some(0.0));

    // A worker's heartbeats on the prefixed event channel of database 2, in kombu's envelope.
    let beat = |processed: u64| {
        let event = serde_json::json!({"type": "worker-heartbeat", "hostname": "celery@w1",
            "active": 2, "processed": processed, "freq": 2.0, "loadavg": [0.75, 0.5, 0.25]});
        serde_json::json!({"body": base64::engine::general_purpose::STANDARD.encode(event.to_string()),
            "content-type": "application/json", "properties": {"body_encoding": "base64"}})
        .to_string()
    };
    let channel = format!("{PREFIX}/2.celeryev/worker.heartbeat");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut processed = 0;
    let values = loop {
        // Publish until the subscriber is there and has two beats for a rate.
        processed += 10;
        let _: () = c.publish(&channel, beat(processed)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let values = collector.collect(pitwall::status::now_ms()).await.unwrap();
        if value(&values, &metric::worker_rate("celery@w1")).is_some() {
            break values;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat arrived: {values:?}"
        );
    };
    assert_eq!(value(&values, metric::WORKERS_ONLINE), Some(1.0));
    assert_eq!(
        value(&values, &metric::worker_online("celery@w1")),
        Some(1.0)
    );
    assert_eq!(
        value(&values, &metric::worker_active("celery@w1")),
        Some(2.0)
    );
    assert_eq!(
        value(&values, &metric::worker_load("celery@w1")),
        Some(0.75)
    );
    assert!(value(&values, &metric::worker_rate("celery@w1")).unwrap() > 0.0);

    // Heartbeats on another database's channel are not this broker's.
    let _: () = c
        .publish(
            format!("{PREFIX}/3.celeryev/worker.heartbeat"),
            beat(1).replace("celery@w1", "celery@other"),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let values = collector.collect(pitwall::status::now_ms()).await.unwrap();
    assert_eq!(value(&values, &metric::worker_online("celery@other")), None);

    // The worker goes offline.
    let offline =
        serde_json::json!({"type": "worker-offline", "hostname": "celery@w1"}).to_string();
    let _: () = c.publish(&channel, offline).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let values = collector.collect(pitwall::status::now_ms()).await.unwrap();
    assert_eq!(
        value(&values, &metric::worker_online("celery@w1")),
        Some(0.0)
    );
    assert_eq!(value(&values, metric::WORKERS_ONLINE), Some(0.0));
}

#[tokio::test]
async fn a_peek_reads_the_next_messages_without_taking_them() {
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(2)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    publish(&mut c, "reports", 0, 3, 6).await;
    publish(&mut c, "reports", 10, 2, 0).await;
    let long = "x".repeat(500);
    let _: () = c
        .lpush(
            format!("{PREFIX}reports"),
            message("app.reports.big", "big", &long, 0),
        )
        .await
        .unwrap();
    let brokers = Brokers::new(&[broker(&redis)], TIMEOUT);

    let next = brokers.peek("tasks", "reports", 4).await.unwrap();
    let ids: Vec<&str> = next.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["reports-10", "reports-11", "big", "reports-0"],
        "priority 0 first, oldest first"
    );
    assert_eq!(next[0].task, "app.mail.send");
    assert_eq!(next[0].args, "('arg10',)");
    assert_eq!((next[0].priority, next[3].priority), (0, 6));
    assert!(next[2].args.ends_with('…') && next[2].args.chars().count() == kombu::ARGS_SHOWN + 1);
    let depth: usize = c.llen(format!("{PREFIX}reports")).await.unwrap();
    assert_eq!(depth, 3, "nothing was taken");

    assert_eq!(
        brokers.peek("tasks", "secrets", 5).await.unwrap_err(),
        Error::UnknownQueue {
            broker: "tasks".into(),
            queue: "secrets".into()
        },
        "only the broker's queues can be read"
    );
    assert_eq!(
        brokers.peek("nope", "reports", 5).await.unwrap_err(),
        Error::UnknownBroker("nope".into())
    );
    assert_eq!(
        brokers.peek("tasks", "reports", 0).await.unwrap_err(),
        Error::Count(0)
    );
    assert_eq!(
        brokers.peek("tasks", "reports", 51).await.unwrap_err(),
        Error::Count(51)
    );

    redis.pause().unwrap();
    let failed = brokers.peek("tasks", "reports", 5).await.unwrap_err();
    assert!(matches!(failed, Error::Broker { .. }), "{failed:?}");
    redis.resume().unwrap();
}
