//! The demo: sample application loaded, and every part of the workload visibly at work.

use std::time::{Duration, Instant};

use pitwall::demo::{BROKER_DB, DATABASE, Demo, Scale};
use redis::AsyncCommands;

#[tokio::test]
async fn demo_loads_the_application_and_runs_its_workload() {
    let scale = Scale {
        pace: Duration::from_millis(10),
        ..Scale::SMALL
    };
    let demo = Demo::start(scale).await.unwrap();
    let mut db = demo.postgres.connect(DATABASE).await.unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(events >= i64::from(scale.events), "{events} events");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, i64::from(scale.users));
    // No index on the columns the slow queries filter on.
    let indexed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE '%(project_id%'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(indexed, 0);

    let client = redis::Client::open(demo.redis.url(0)).unwrap();
    let mut cache = client.get_multiplexed_async_connection().await.unwrap();
    let mut broker = redis::Client::open(demo.redis.url(BROKER_DB))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hits: Option<i64> = cache.get("ai_cache:hits").await.unwrap();
        let misses: Option<i64> = cache.get("ai_cache:misses").await.unwrap();
        let tagged: i64 = cache.scard("tag:projects").await.unwrap();
        let ttl: i64 = match cache
            .srandmember::<_, Option<String>>("tag:projects")
            .await
            .unwrap()
        {
            Some(key) => cache.ttl(key).await.unwrap(),
            None => -2,
        };
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut cache)
            .await
            .unwrap();
        let keyspace_hits: i64 = pitwall::link::info_field(&info, "keyspace_hits")
            .unwrap()
            .parse()
            .unwrap();
        let bindings: Vec<String> = broker.smembers("_kombu.binding.celery").await.unwrap();
        let processed = priority_lists_in_use(&mut broker).await;
        let slow_calls: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE 'SELECT count(*) FROM events WHERE project_id%'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        // A fifth of the events were updated once and autovacuum is off for the table. (Statistics
        // reach pg_stat_user_tables within a second or so of the update.)
        let dead: i64 = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'events'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        let done = dead >= i64::from(scale.events) / 5
            && hits.unwrap_or(0) > 0
            && misses.unwrap_or(0) > 0
            && tagged > 0
            && ttl > 0
            && keyspace_hits > 0
            && bindings.len() == 3
            && processed
            && slow_calls > 0;
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workload incomplete: dead tuples {dead} hits {hits:?} misses {misses:?} tagged {tagged} ttl {ttl} keyspace_hits {keyspace_hits} bindings {bindings:?} queues {processed} slow {slow_calls}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// True once messages sit in kombu's priority sub-lists of some queue.
async fn priority_lists_in_use(broker: &mut redis::aio::MultiplexedConnection) -> bool {
    for queue in pitwall::demo::QUEUES {
        for list in [
            queue.to_owned(),
            format!("{queue}\x06\x163"),
            format!("{queue}\x06\x166"),
            format!("{queue}\x06\x169"),
        ] {
            let len: i64 = broker.llen(&list).await.unwrap();
            if len > 0 && list.contains('\x06') {
                return true;
            }
        }
    }
    false
}
