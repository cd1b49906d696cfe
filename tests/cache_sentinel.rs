//! A Redis target resolved through Sentinel (`redis+sentinel://`), against a throwaway primary, a
//! replica and a sentinel started by the harness: the status check, the collectors' link, the
//! Cache page's facts and the cache jobs' keyspace reach the master the sentinel names; after a
//! failover the next command (once the link has asked again) goes to the new master, and so do a
//! twin link's; with the sentinel gone the link keeps the master it knows; a sentinel that knows
//! no such master is a clear error.

use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::cache::cluster::Keyspace;
use pitwall::cache::inspect::Caches;
use pitwall::config::Target;
use pitwall::harness::{RedisSentinel, RedisServer};
use pitwall::link::{RedisLink, SENTINEL_RECHECK};
use pitwall::probe::{Probe, Prober};
use pitwall::secret::SecretUrl;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn(url).await)
        .await
        .unwrap()
}

async fn set(link: &mut RedisLink, key: &str) -> Result<(), String> {
    let key = key.to_owned();
    link.query(async move |c| redis::cmd("SET").arg(&key).arg("1").query_async(c).await)
        .await
}

#[tokio::test]
async fn a_sentinel_target_follows_its_master_through_a_failover() {
    let primary = RedisServer::start().await.unwrap();
    let replica = RedisServer::start().await.unwrap();
    replica.follow(&primary).await.unwrap();
    let mut sentinel = RedisSentinel::start("cache", &primary).await.unwrap();
    let url = SecretUrl::parse(&sentinel.url(0)).unwrap();

    // The status check and the collectors' link reach the primary.
    let target = Target::new("cache", TargetKind::Redis, url.clone());
    let mut prober = Prober::new(&target, TIMEOUT).unwrap();
    assert!(matches!(prober.check().await, Probe::Up { .. }));
    let mut link = RedisLink::new(&url, TIMEOUT).unwrap();
    set(&mut link, "before").await.unwrap();
    let first = format!("127.0.0.1:{}", primary.port());
    assert_eq!(link.master(), Some(first.as_str()));
    assert_eq!(get(&primary.url(0), "before").await.as_deref(), Some("1"));

    // The Cache page's server facts name the master the sentinel gave.
    let caches = Caches::new(std::slice::from_ref(&target), TIMEOUT);
    let details = caches.details("cache").await.unwrap();
    let server = details.server.unwrap();
    assert_eq!(server.role, "master");
    assert_eq!(server.sentinel_master.as_deref(), Some(first.as_str()));

    // The cache jobs' keyspace: one node, the master.
    let mut keyspace = Keyspace::open(&url, TIMEOUT).await.unwrap();
    assert_eq!(keyspace.nodes(), 1);
    let exists: Vec<i64> = keyspace.each("EXISTS", &["before".into()]).await.unwrap();
    assert_eq!(exists, [1]);

    // Fail over to the replica (once the sentinel has found it through the primary's INFO).
    let mut asker = conn(&format!("redis://127.0.0.1:{}", sentinel.port())).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer: redis::RedisResult<String> = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg("cache")
            .query_async(&mut asker)
            .await;
        match answer {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no failover: {e}\n{}",
                sentinel.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let second = format!("127.0.0.1:{}", replica.port());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("cache")
            .query_async(&mut asker)
            .await
            .unwrap();
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn(&replica.url(0)).await)
            .await
            .unwrap();
        if format!("{host}:{port}") == second
            && role.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel never named the replica\n{}",
            sentinel.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // After its recheck the link writes to the new master.
    tokio::time::sleep(SENTINEL_RECHECK).await;
    set(&mut link, "after").await.unwrap();
    assert_eq!(link.master(), Some(second.as_str()));
    assert_eq!(get(&replica.url(0), "after").await.as_deref(), Some("1"));
    assert!(matches!(prober.check().await, Probe::Up { .. }));
    // A twin of the link (a tag purge scans on one) goes to the same master.
    let mut twin = link.twin();
    set(&mut twin, "twin").await.unwrap();
    assert_eq!(twin.master(), Some(second.as_str()));
    assert_eq!(get(&replica.url(0), "twin").await.as_deref(), Some("1"));

    // With no sentinel answering, the link goes on with the master named last.
    let unknown = SecretUrl::parse(&format!(
        "redis+sentinel://127.0.0.1:{}/elsewhere/0",
        sentinel.port()
    ))
    .unwrap();
    let mut wrong = RedisLink::new(&unknown, TIMEOUT).unwrap();
    sentinel.stop();
    tokio::time::sleep(SENTINEL_RECHECK).await;
    set(&mut link, "sentinel-gone").await.unwrap();
    assert_eq!(link.master(), Some(second.as_str()));
    assert_eq!(
        get(&replica.url(0), "sentinel-gone").await.as_deref(),
        Some("1")
    );
    // A link that never learnt its master fails, naming the sentinel it asked.
    let e = set(&mut wrong, "x").await.unwrap_err();
    assert!(
        e.starts_with(&format!("sentinel 127.0.0.1:{}: ", sentinel.port())),
        "{e}"
    );

    // A master a running sentinel does not watch: refused with the reason.
    let other = RedisSentinel::start("cache", &replica).await.unwrap();
    let unknown = SecretUrl::parse(&format!(
        "redis+sentinel://127.0.0.1:{}/elsewhere/0",
        other.port()
    ))
    .unwrap();
    let e = set(&mut RedisLink::new(&unknown, TIMEOUT).unwrap(), "x")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        format!(
            "sentinel 127.0.0.1:{}: it monitors no master named `elsewhere`",
            other.port()
        )
    );
}
