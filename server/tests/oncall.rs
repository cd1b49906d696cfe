//! On-call against real services: a console runs the default rules (their `for` and windows
//! shortened to seconds) over throwaway PostgreSQL and Redis servers and a Celery broker, and the
//! test drives each condition it can produce here: a Redis stopped, a queue filled past 1,000, a
//! slow query without its index, a cache missing, Redis memory near `maxmemory`, evictions,
//! rejected connections and an invalid index. Each alert is seen pending, firing, then resolved
//! after recovery, and a local webhook receiver gets exactly one signed firing and one resolved
//! Alertmanager message per alert, although it refuses every first attempt (so each is retried)
//! and the console is restarted while alerts fire. Acknowledgements, silences and the history
//! go through the server functions, refused to a viewer, and are audited.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{ADMIN_PASSWORD, Console, password_of};
use pitwall::alerts::notify;
use pitwall::harness::{PgServer, RedisServer};
use serde_json::Value;
use sqlx::Connection;

const SECRET: &str = "webhook-secret-0123456789";

/// One message the receiver took in.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    status: String,
    rule: String,
    target: String,
    accepted: bool,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on a free port: it checks the signature, refuses the first attempt of
/// every delivery with 503 and takes the next.
async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let inbox = inbox.clone();
            move |headers: HeaderMap, body: Bytes| {
                let inbox = inbox.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let timestamp: u64 = header(notify::TIMESTAMP_HEADER).parse().unwrap_or(0);
                    let signature = header(notify::SIGNATURE_HEADER);
                    if !notify::verify(SECRET, timestamp, &body, &signature) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let payload: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(payload["version"], "4");
                    assert_eq!(payload["externalURL"], "http://pitwall.test");
                    let alert = &payload["alerts"][0];
                    let delivery = header(notify::DELIVERY_HEADER);
                    let mut inbox = inbox.lock().unwrap();
                    let seen = inbox.iter().any(|r| r.delivery == delivery);
                    inbox.push(Received {
                        delivery,
                        status: payload["status"].as_str().unwrap().to_owned(),
                        rule: alert["labels"]["alertname"].as_str().unwrap().to_owned(),
                        target: alert["labels"]["target"].as_str().unwrap().to_owned(),
                        accepted: seen,
                    });
                    if seen {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// The default rules as TOML, each `for` shortened to 2 s, `keep_firing_for` to none and every
/// window to 3 s; the host's rules (this machine's load is not the test's) switched off.
fn shortened_defaults() -> String {
    let mut toml = String::from(
        "[alerts]\nexternal_url = \"http://pitwall.test\"\n\
         disable = [\"host_memory_high\", \"host_cpu_high\", \"host_disk_full\"]\n\n",
    );
    for spec in pitwall::alerts::defaults::specs() {
        if spec.name.starts_with("host_") {
            continue;
        }
        let expr = spec.expr.replace("[1m]", "[3s]").replace("[5m]", "[3s]");
        toml.push_str(&format!(
            "[[alerts.rules]]\nname = {:?}\nexpr = {expr:?}\nfor = \"2s\"\nkeep_firing_for = \"0s\"\n\
             severity = {:?}\nsummary = {:?}\nrunbook_url = {:?}\n\n",
            spec.name,
            spec.severity.unwrap(),
            spec.summary,
            spec.runbook_url.unwrap(),
        ));
    }
    toml
}

/// The states of every alert instance of `rule` on `target`, as the Alerts page reads them.
async fn states(console: &Console, client: &reqwest::Client) -> Vec<(String, String, String)> {
    let (status, body) = console.get(client, "/api/alerts_now").await;
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = &a["alert"];
            (
                a["rule"].as_str().unwrap().to_owned(),
                a["target"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Follows `(rule, target)` pairs until each was seen in `state`; panics after `limit`.
struct Watch {
    seen: HashMap<(String, String), Vec<String>>,
}

impl Watch {
    fn new() -> Self {
        Self {
            seen: HashMap::new(),
        }
    }

    async fn until(
        &mut self,
        console: &Console,
        client: &reqwest::Client,
        wanted: &[(&str, &str)],
        state: &str,
        limit: Duration,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            for (rule, target, s) in states(console, client).await {
                let list = self.seen.entry((rule, target)).or_default();
                if list.last() != Some(&s) {
                    list.push(s);
                }
            }
            let missing: Vec<_> = wanted
                .iter()
                .filter(|(r, t)| {
                    !self
                        .seen
                        .get(&(r.to_string(), t.to_string()))
                        .is_some_and(|l| l.iter().any(|s| s == state))
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never {state}: {missing:?}; seen {:#?}\n{}",
                self.seen,
                console.log()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Whether `(rule, target)` went through `order` (other states may come between).
    fn went_through(&self, rule: &str, target: &str, order: &[&str]) -> bool {
        let Some(list) = self.seen.get(&(rule.to_owned(), target.to_owned())) else {
            return false;
        };
        let mut at = 0;
        for s in list {
            if at < order.len() && s == order[at] {
                at += 1;
            }
        }
        at == order.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_conditions_page_once_and_resolve_once_through_a_restart() {
    let pg = PgServer::start().await.unwrap();
    let cache = RedisServer::start().await.unwrap();
    let evict = RedisServer::start().await.unwrap();
    let mut spare = RedisServer::start().await.unwrap();
    let broker = RedisServer::start().await.unwrap();
    let (hook, inbox) = receiver().await;

    let mut db = pg.connect("postgres").await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE big AS SELECT g AS id, g AS v FROM generate_series(1, 600000) g;
         CREATE TABLE t (id int); CREATE INDEX t_id ON t (id);",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let config = format!(
        "[[postgres]]\nname = \"db\"\nurl = \"{}\"\n\n\
         [[redis]]\nname = \"cache\"\nurl = \"{}\"\n\n\
         [[redis]]\nname = \"evict\"\nurl = \"{}\"\n\n\
         [[redis]]\nname = \"spare\"\nurl = \"{}\"\n\n\
         [[celery]]\nname = \"broker\"\nurl = \"{}\"\n\n\
         [telemetry]\ninterval_ms = 500\nslow_interval_ms = 1000\ntimeout_ms = 400\n\n\
         {}\
         [[alerts.webhooks]]\nname = \"oncall\"\nurl = \"{hook}\"\nsecret = \"{SECRET}\"\nmin_severity = \"info\"\ntimeout = \"2s\"\n",
        pg.url("postgres"),
        cache.url(0),
        evict.url(0),
        spare.url(0),
        broker.url(0),
        shortened_defaults(),
    );
    let mut console = Console::spawn(&config).await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let mut watch = Watch::new();
    // Let the console's collectors and checks connect before the servers stop taking clients.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Drive every condition at once.
    spare.stop();
    let mut broker_conn = redis_conn(&broker).await;
    let messages: Vec<String> = (0..1_001).map(|i| format!("{{\"id\": {i}}}")).collect();
    let _: () = redis::cmd("RPUSH")
        .arg("celery")
        .arg(&messages)
        .query_async(&mut broker_conn)
        .await
        .unwrap();
    let mut cache_conn = redis_conn(&cache).await;
    let used: u64 = info_field(&mut cache_conn, "used_memory").await;
    set(
        &mut cache_conn,
        "maxmemory",
        &(used + used / 20).to_string(),
    )
    .await;
    let mut evict_conn = redis_conn(&evict).await;
    let load_connections = (
        sqlx::PgConnection::connect(&pg.url("postgres"))
            .await
            .unwrap(),
        redis_conn(&cache).await,
        redis_conn(&evict).await,
    );
    set(&mut evict_conn, "maxmemory-policy", "allkeys-lru").await;
    let evict_used: u64 = info_field(&mut evict_conn, "used_memory").await;
    set(
        &mut evict_conn,
        "maxmemory",
        &(evict_used + 2_000_000).to_string(),
    )
    .await;
    let clients: u64 = info_field(&mut evict_conn, "connected_clients").await;
    set(&mut evict_conn, "maxclients", &clients.to_string()).await;
    sqlx::raw_sql("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 't_id'::regclass")
        .execute(&mut db)
        .await
        .unwrap();
    let stop_load = Arc::new(AtomicBool::new(false));
    let (load_db, load_cache, load_evict) = load_connections;
    let load = tokio::spawn(drive_load(
        load_db,
        load_cache,
        load_evict,
        redis::Client::open(evict.url(0)).unwrap(),
        stop_load.clone(),
    ));

    let conditions = [
        ("target_down", "spare"),
        ("queue_backlog", "broker"),
        ("query_p95_high", "db"),
        ("cache_hit_rate_low", "cache"),
        ("redis_memory_high", "cache"),
        ("redis_evictions", "evict"),
        ("redis_rejected_connections", "evict"),
        ("invalid_indexes", "db"),
    ];
    watch
        .until(
            &console,
            &admin,
            &conditions,
            "firing",
            Duration::from_secs(40),
        )
        .await;
    for (rule, target) in conditions {
        assert!(
            watch.went_through(rule, target, &["pending", "firing"]),
            "{rule} on {target} fired without pending first: {:?}",
            watch.seen
        );
    }

    // A viewer may read but not acknowledge or silence; an operator acknowledges with a comment.
    console.add_user(&admin, "vera", "viewer").await;
    console.add_user(&admin, "otto", "operator").await;
    let viewer = console.sign_in("vera", &password_of("vera")).await;
    let operator = console.sign_in("otto", &password_of("otto")).await;
    let key = "queue_backlog{target=\"broker\",metric=\"depth:celery\"}";
    let (status, body) = console
        .call(&viewer, "ack_alert", &[("key", key), ("comment", "mine")])
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = console
        .call(&operator, "ack_alert", &[("key", key), ("comment", "")])
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("comment"), "{body}");
    let (status, body) = console
        .call(
            &operator,
            "ack_alert",
            &[("key", key), ("comment", "draining the workers")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = console
        .call(
            &operator,
            "ack_alert",
            &[("key", "no_such{target=\"x\"}"), ("comment", "x")],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not firing"), "{body}");
    // Another user sees it acknowledged.
    let (_, body) = console.get(&viewer, "/api/alerts_now").await;
    let view: Value = serde_json::from_str(&body).unwrap();
    let backlog = view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert"]["rule"] == "queue_backlog")
        .unwrap();
    assert_eq!(backlog["ack"]["by"], "otto");
    assert_eq!(backlog["ack"]["comment"], "draining the workers");

    // Bad silences are refused with the reason; a good one is listed.
    for (matchers, lasting, comment, why) in [
        ("", "1h", "x", "at least one matcher"),
        ("alertname", "1h", "x", "label=value"),
        ("alertname=x", "forever", "x", "not a duration"),
        ("alertname=x", "45d", "x", "30 days"),
        ("alertname=x", "1h", " ", "comment"),
    ] {
        let (status, body) = console
            .call(
                &operator,
                "silence_alerts",
                &[
                    ("matchers", matchers),
                    ("lasting", lasting),
                    ("comment", comment),
                ],
            )
            .await;
        assert_eq!(status, 422, "{matchers} {lasting}: {body}");
        assert!(body.contains(why), "{matchers} {lasting}: {body}");
    }
    let (status, body) = console
        .call(
            &operator,
            "silence_alerts",
            &[
                ("matchers", "alertname=xid_wraparound_margin_low"),
                ("lasting", "2h"),
                ("comment", "known, vacuum scheduled"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let silence_id: i64 = body.trim().parse().unwrap();
    let (status, _) = console
        .call(
            &operator,
            "expire_silence",
            &[("id", &silence_id.to_string())],
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = console
        .call(
            &operator,
            "expire_silence",
            &[("id", &silence_id.to_string())],
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // Every firing message is delivered once (after one refused attempt), then the console
    // restarts while the alerts still fire: nothing is recorded or sent again.
    wait_for(&inbox, "firing", &conditions, Duration::from_secs(30)).await;
    console.terminate();
    console = console.sibling().await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let mut watch_after = Watch::new();
    watch_after
        .until(
            &console,
            &admin,
            &conditions,
            "firing",
            Duration::from_secs(30),
        )
        .await;
    // The acknowledgement belongs to the episode, which went on through the restart.
    let (_, body) = console.get(&admin, "/api/alerts_now").await;
    assert!(body.contains("draining the workers"), "{body}");

    // Recover everything.
    stop_load.store(true, Ordering::Relaxed);
    load.await.unwrap();
    spare.restart().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg("celery")
        .query_async(&mut broker_conn)
        .await
        .unwrap();
    set(&mut cache_conn, "maxmemory", "0").await;
    set(&mut evict_conn, "maxclients", "10000").await;
    set(&mut evict_conn, "maxmemory", "0").await;
    sqlx::raw_sql(
        "DROP INDEX t_id; CREATE INDEX big_md5 ON big (md5(repeat(v::text, 20))); ANALYZE big;",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let stop_recovery = Arc::new(AtomicBool::new(false));
    let recovery = tokio::spawn(drive_recovery(
        pg.url("postgres"),
        cache.url(0),
        stop_recovery.clone(),
    ));
    watch_after
        .until(
            &console,
            &admin,
            &conditions,
            "resolved",
            Duration::from_secs(40),
        )
        .await;
    stop_recovery.store(true, Ordering::Relaxed);
    recovery.await.unwrap();
    wait_for(&inbox, "resolved", &conditions, Duration::from_secs(30)).await;
    // Leave time for anything duplicated to arrive, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let inbox = inbox.lock().unwrap().clone();
    for (rule, target) in conditions {
        for status in ["firing", "resolved"] {
            let of = |accepted: bool| {
                inbox
                    .iter()
                    .filter(|r| {
                        r.rule == rule
                            && r.target == target
                            && r.status == status
                            && r.accepted == accepted
                    })
                    .count()
            };
            assert_eq!(
                of(true),
                1,
                "{rule} on {target}: accepted {status} messages: {inbox:#?}"
            );
            assert!(
                of(false) >= 1,
                "{rule} on {target}: the refused first attempt"
            );
        }
    }

    // The history holds each episode with its duration; the acknowledgement and silence are
    // audited.
    let (status, body) = console.get(&admin, "/api/alert_history").await;
    assert_eq!(status, 200, "{body}");
    let history: Vec<Value> = serde_json::from_str(&body).unwrap();
    for (rule, target) in conditions {
        let episodes: Vec<&Value> = history
            .iter()
            .filter(|e| e["rule"] == rule && e["target"] == target)
            .collect();
        assert_eq!(episodes.len(), 1, "{rule} on {target}: {episodes:#?}");
        let e = episodes[0];
        assert!(e["ended_ms"].as_u64().unwrap() >= e["started_ms"].as_u64().unwrap());
    }
    let (status, audit) = console
        .call(
            &admin,
            "audit_log",
            &[("filter[action]", "alert."), ("filter[limit]", "50")],
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    for expected in [
        "alert.ack",
        "draining the workers",
        "alert.silence",
        "known, vacuum scheduled",
        "alert.unsilence",
        "otto",
    ] {
        assert!(audit.contains(expected), "{expected}: {audit}");
    }
}

async fn redis_conn(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn set(conn: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(conn)
        .await
        .unwrap();
}

async fn info_field(conn: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The failing workload until `stop`, on connections opened before the servers stopped taking
/// clients: a slow query without its index, cache misses, writes past `maxmemory` and new
/// connections past `maxclients`.
async fn drive_load(
    mut db: sqlx::PgConnection,
    mut cache: redis::aio::MultiplexedConnection,
    mut evict: redis::aio::MultiplexedConnection,
    evict_client: redis::Client,
    stop: Arc<AtomicBool>,
) {
    let stopped = stop.clone();
    let slow = tokio::spawn(async move {
        while !stopped.load(Ordering::Relaxed) {
            sqlx::query("SELECT count(*) FROM big WHERE md5(repeat(v::text, 20)) = 'nothing'")
                .execute(&mut db)
                .await
                .unwrap();
        }
    });
    let value = "x".repeat(10_000);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("missing:{i}"))
            .query_async(&mut cache)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("fill:{i}"))
            .arg(&value)
            .query_async(&mut evict)
            .await
            .unwrap();
        if i.is_multiple_of(20) {
            // Refused while the server is at maxclients (it says so on the first command); the
            // rule firing is the proof, since a console reconnecting can free a slot now and then.
            if let Ok(mut extra) = evict_client.get_multiplexed_async_connection().await {
                let _ = redis::cmd("PING").query_async::<String>(&mut extra).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    slow.await.unwrap();
}

/// The healthy workload until `stop` that brings the hit rate and the slow query back: hits,
/// and the query now served by its index.
async fn drive_recovery(pg: String, cache: String, stop: Arc<AtomicBool>) {
    let mut db = sqlx::PgConnection::connect(&pg).await.unwrap();
    let mut cache = redis::Client::open(cache)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("hot")
        .arg("1")
        .query_async(&mut cache)
        .await
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let _: Option<String> = redis::cmd("GET")
            .arg("hot")
            .query_async(&mut cache)
            .await
            .unwrap();
        sqlx::query("SELECT count(*) FROM big WHERE md5(repeat(v::text, 20)) = 'nothing'")
            .execute(&mut db)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the receiver accepted a `status` message for every pair.
async fn wait_for(inbox: &Inbox, status: &str, pairs: &[(&str, &str)], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let missing: Vec<_> = {
            let inbox = inbox.lock().unwrap();
            pairs
                .iter()
                .filter(|(rule, target)| {
                    !inbox.iter().any(|r| {
                        r.accepted && r.status == status && r.rule == *rule && r.target == *target
                    })
                })
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no accepted {status} message for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A receiver that takes every connection and never answers; how many it took.
async fn silent_receiver() -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let taken: Arc<Mutex<usize>> = Arc::default();
    let count = taken.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            held.push(stream);
        }
    });
    (addr.to_string(), taken)
}

/// A receiver that takes every message at once; each delivery number with its arrival (Unix ms).
async fn prompt_receiver() -> (String, Arc<Mutex<Vec<(i64, u64)>>>) {
    let arrivals: Arc<Mutex<Vec<(i64, u64)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let arrivals = arrivals.clone();
            move |headers: HeaderMap| {
                let arrivals = arrivals.clone();
                async move {
                    let delivery = headers[notify::DELIVERY_HEADER]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    arrivals
                        .lock()
                        .unwrap()
                        .push((delivery, pitwall::status::now_ms()));
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

/// A port on loopback nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_delays_only_its_own_messages_and_its_url_is_never_shown() {
    let (dead, taken) = silent_receiver().await;
    let (good, arrivals) = prompt_receiver().await;
    // The URL carries a token in its path and query, as Slack's and many bridges' do.
    let dead_url = format!("http://{dead}/services/T0PS3CRET-path?token=Q7-secret-query");
    // Two targets that never answer: two episodes, each queued to the dead receiver first.
    let config = format!(
        "[[redis]]\nname = \"gone-a\"\nurl = \"redis://127.0.0.1:{}\"\n\n\
         [[redis]]\nname = \"gone-b\"\nurl = \"redis://127.0.0.1:{}\"\n\n\
         [alerts]\nexternal_url = \"http://pitwall.test\"\n\n\
         [[alerts.rules]]\nname = \"target_down\"\nexpr = \"up < 1\"\nfor = \"1s\"\n\
         keep_firing_for = \"0s\"\nseverity = \"critical\"\nsummary = \"{{target}} is down\"\n\n\
         [[alerts.webhooks]]\nname = \"dead\"\nurl = \"{dead_url}\"\nsecret = \"{SECRET}\"\n\
         min_severity = \"info\"\ntimeout = \"5s\"\n\n\
         [[alerts.webhooks]]\nname = \"good\"\nurl = \"{good}\"\nsecret = \"{SECRET}\"\n\
         min_severity = \"info\"\ntimeout = \"5s\"\n",
        closed_port(),
        closed_port(),
    );
    let console = Console::spawn(&config).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the working receiver got {:?}\n{}",
            arrivals.lock().unwrap(),
            console.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        console.data_dir().join("pitwall.db").display()
    ))
    .await
    .unwrap();
    let queued: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, webhook, created_at FROM alert_notifications ORDER BY id")
            .fetch_all(&store)
            .await
            .unwrap();
    // Each episode's message to the dead receiver was queued ahead of the working one's.
    let webhooks: Vec<&str> = queued.iter().map(|(_, w, _)| w.as_str()).collect();
    assert_eq!(webhooks, ["dead", "good", "dead", "good"], "{queued:?}");
    for (delivery, arrived) in arrivals.lock().unwrap().iter() {
        let (_, webhook, created) = queued.iter().find(|(id, ..)| id == delivery).unwrap();
        assert_eq!(webhook, "good");
        let waited = *arrived as i64 - created;
        assert!(
            waited < 1_000,
            "message {delivery} arrived {waited} ms after it was queued"
        );
    }

    // The dead receiver's attempt times out and is recorded; neither the log nor the error
    // shows its URL, only its name and host.
    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        let error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM alert_notifications WHERE webhook = 'dead' AND last_error IS NOT NULL",
        )
        .fetch_optional(&store)
        .await
        .unwrap()
        .flatten();
        if let Some(error) = error {
            break error;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt\n{}",
            console.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(*taken.lock().unwrap() >= 1);
    assert!(
        error.contains("dead") && error.contains(&dead) && error.contains("timed out"),
        "{error}"
    );
    // The log is written as the failure is recorded; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = console.log();
    assert!(log.contains("alert notification failed"), "{log}");
    for secret in ["T0PS3CRET", "Q7-secret", "/services/"] {
        assert!(!error.contains(secret), "{error}");
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
