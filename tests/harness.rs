//! The throwaway-service harness and the status board, against real PostgreSQL and Redis.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use pitwall::config::Target;
use pitwall::harness::{PgServer, RedisServer, start_both};
use pitwall::secret::SecretUrl;
use pitwall::status::{Schedule, StatusBoard};
use pitwall::{TargetKind, TargetState};
use redis::AsyncCommands;

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

#[tokio::test]
async fn postgres_round_trip_with_pg_stat_statements() {
    let pg = PgServer::start().await.unwrap();
    let mut conn = pg.connect("postgres").await.unwrap();
    let preload: String = sqlx::query_scalar("SHOW shared_preload_libraries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(preload, "pg_stat_statements");
    let two: i32 = sqlx::query_scalar("SELECT 1 + 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(two, 2);
    let calls: i64 = sqlx::query_scalar("SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE 'SELECT $1 + $2%'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(calls >= 1, "pg_stat_statements did not record the query");
}

#[tokio::test]
async fn redis_round_trip() {
    let redis = RedisServer::start().await.unwrap();
    let mut conn = redis::Client::open(redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    conn.set_ex::<_, _, ()>("k", "v", 60).await.unwrap();
    let v: String = conn.get("k").await.unwrap();
    assert_eq!(v, "v");
}

#[tokio::test]
async fn stop_restart_keeps_postgres_data_and_port() {
    let mut pg = PgServer::start().await.unwrap();
    let port = pg.port();
    let mut conn = pg.connect("postgres").await.unwrap();
    sqlx::query("CREATE TABLE kept2 AS SELECT 42 AS x")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    pg.stop();
    assert!(!listening(port), "still listening after stop");
    pg.restart().await.unwrap();
    assert_eq!(pg.port(), port);
    let mut conn = pg.connect("postgres").await.unwrap();
    let x: i32 = sqlx::query_scalar("SELECT x FROM kept2")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(x, 42);
}

#[tokio::test]
async fn paused_redis_hangs_and_resumes() {
    let redis = RedisServer::start().await.unwrap();
    let mut conn = redis::Client::open(redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis.pause().unwrap();
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    assert!(
        !matches!(hung, Ok(Ok(_))),
        "a paused Redis answered: {hung:?}"
    );
    redis.resume().unwrap();
    let pong: String = tokio::time::timeout(
        Duration::from_secs(5),
        redis::cmd("PING").query_async(&mut conn),
    )
    .await
    .expect("no answer after resume")
    .unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn paused_postgres_freezes_open_connections_too() {
    let pg = PgServer::start().await.unwrap();
    let mut conn = pg.connect("postgres").await.unwrap();
    pg.pause().unwrap();
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        sqlx::query("SELECT 1").execute(&mut conn),
    )
    .await;
    assert!(
        hung.is_err(),
        "a paused PostgreSQL answered on an open connection"
    );
    pg.resume().unwrap();
    drop(conn);
    let mut conn = pg.connect("postgres").await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn dropped_servers_are_cleaned_up_even_after_a_panic() {
    let (pg_port, redis_port) = tokio::spawn(async {
        let (pg, redis) = start_both().await.unwrap();
        let ports = (pg.port(), redis.port());
        // A test that panics while holding the servers.
        let result = std::panic::AssertUnwindSafe(async move {
            let _keep = (pg, redis);
            assert!(listening(ports.0) && listening(ports.1));
            panic!("test failure while servers run");
        });
        let outcome = futures_util::FutureExt::catch_unwind(result).await;
        assert!(outcome.is_err());
        ports
    })
    .await
    .unwrap();
    assert!(!listening(pg_port), "PostgreSQL survived its handle");
    assert!(!listening(redis_port), "Redis survived its handle");
}

async fn wait_for(
    board: &StatusBoard,
    name: &str,
    state: TargetState,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let snapshot = board.snapshot();
        let s = snapshot.iter().find(|s| s.name == name).unwrap();
        if s.state == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{name} not {state:?} within {within:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `v` starts like `\d+\.\d+` (`16.4 (Debian …)`, `7.0.15`).
fn looks_like_version(v: &str) -> bool {
    let Some((major, rest)) = v.split_once('.') else {
        return false;
    };
    let minor = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap();
    [major, minor]
        .iter()
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn versions_need_major_and_minor() {
    assert!(looks_like_version("16.4 (Debian 16.4-1)"));
    assert!(looks_like_version("7.0.15"));
    for bad in ["", "7", "7.", ".4", "v7.0", "x.y"] {
        assert!(!looks_like_version(bad), "{bad}");
    }
}

#[tokio::test]
async fn status_board_follows_stops_pauses_and_restarts() {
    let (mut pg, mut redis) = start_both().await.unwrap();
    let target =
        |name: &str, kind, url: String| Target::new(name, kind, SecretUrl::parse(&url).unwrap());
    let targets = [
        target("db", TargetKind::Postgres, pg.url("postgres")),
        target("cache", TargetKind::Redis, redis.url(0)),
    ];
    let schedule = Schedule {
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(1),
    };
    let board = StatusBoard::spawn(&targets, schedule);
    let within = Duration::from_secs(5);
    wait_for(&board, "db", TargetState::Up, within).await;
    wait_for(&board, "cache", TargetState::Up, within).await;
    for status in board.snapshot().iter() {
        let version = status.version.as_deref().unwrap_or_default();
        assert!(
            looks_like_version(version),
            "{}: version {version:?}, expected major.minor",
            status.name
        );
    }

    pg.stop();
    wait_for(&board, "db", TargetState::Down, within).await;
    assert_eq!(
        board.snapshot()[1].state,
        TargetState::Up,
        "one target's outage leaked into another"
    );
    pg.restart().await.unwrap();
    wait_for(&board, "db", TargetState::Up, within).await;

    redis.pause().unwrap();
    wait_for(&board, "cache", TargetState::Down, within).await;
    assert!(
        board.snapshot()[1]
            .error
            .as_deref()
            .unwrap()
            .contains("no answer")
    );
    redis.resume().unwrap();
    wait_for(&board, "cache", TargetState::Up, within).await;

    redis.stop();
    wait_for(&board, "cache", TargetState::Down, within).await;
    redis.restart().await.unwrap();
    wait_for(&board, "cache", TargetState::Up, within).await;
}
