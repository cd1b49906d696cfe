//! The cache features against a throwaway 3-primary Redis Cluster started by the harness, keys
//! placed where Redis itself says they belong (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`): the Cache
//! page lists every primary with its slots and keys; the tag registry finds tags on every
//! primary; a tag whose keys are spread over all primaries is invalidated key by key and
//! nothing else is touched; pruning, pattern invalidation and keyspace analysis reach every
//! primary; a warming recipe writes each key on its primary and tags it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pitwall::TargetKind;
use pitwall::access::{Actor, Role};
use pitwall::cache::inspect::Caches;
use pitwall::cache::keyspace::KeyspaceReport;
use pitwall::cache::recipe::{Recipe, Template, WarmValue};
use pitwall::config::Target;
use pitwall::harness::{PgServer, RedisCluster};
use pitwall::jobs::{
    Backoff, Enqueued, JobState, Jobs, Kinds, NewJob, Runner, RunnerSettings, kinds,
};
use pitwall::secret::SecretUrl;
use pitwall::store::{SqliteStore, Store};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use sqlx::Executor;

/// Connections to every node and, per slot, the node serving it, as the cluster reports them.
struct Placed {
    conns: Vec<MultiplexedConnection>,
    owner: Vec<usize>,
}

impl Placed {
    async fn new(cluster: &RedisCluster) -> Self {
        let mut conns = Vec::new();
        for node in cluster.nodes() {
            conns.push(
                redis::Client::open(node.url(0))
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            );
        }
        // [[start, end, [ip, port, id], …], …]
        let slots: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Vec<redis::Value>>(&mut conns[0])
            .await
            .unwrap()
            .into_iter()
            .map(|v| {
                let parts: Vec<redis::Value> = redis::from_redis_value(v).unwrap();
                let start: u16 = redis::from_redis_value(parts[0].clone()).unwrap();
                let end: u16 = redis::from_redis_value(parts[1].clone()).unwrap();
                // [ip, port, id] (and, from Redis 7, a map of metadata).
                let node: Vec<redis::Value> = redis::from_redis_value(parts[2].clone()).unwrap();
                let ip: String = redis::from_redis_value(node[0].clone()).unwrap();
                let port: u16 = redis::from_redis_value(node[1].clone()).unwrap();
                (start, end, (ip, port))
            })
            .collect();
        let mut owner = vec![usize::MAX; 16_384];
        for (start, end, (_, port)) in slots {
            let node = cluster
                .nodes()
                .iter()
                .position(|n| n.port() == port)
                .unwrap();
            for s in start..=end {
                owner[usize::from(s)] = node;
            }
        }
        assert!(owner.iter().all(|o| *o != usize::MAX));
        Self { conns, owner }
    }

    /// The node of each key, by `CLUSTER KEYSLOT`.
    async fn nodes_of(&mut self, keys: &[String]) -> Vec<usize> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("CLUSTER").arg("KEYSLOT").arg(k);
        }
        let slots: Vec<u16> = pipe.query_async(&mut self.conns[0]).await.unwrap();
        slots
            .into_iter()
            .map(|s| self.owner[usize::from(s)])
            .collect()
    }

    /// Runs `cmd(key)` for each key on the node holding it; the replies in the keys' order.
    async fn each<T: redis::FromRedisValue + Default + Clone>(
        &mut self,
        keys: &[String],
        cmd: impl Fn(&str) -> redis::Cmd,
    ) -> Vec<T> {
        let nodes = self.nodes_of(keys).await;
        let mut out = vec![T::default(); keys.len()];
        for node in 0..self.conns.len() {
            let mine: Vec<usize> = (0..keys.len()).filter(|i| nodes[*i] == node).collect();
            if mine.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for i in &mine {
                pipe.add_command(cmd(&keys[*i]));
            }
            let got: Vec<T> = pipe.query_async(&mut self.conns[node]).await.unwrap();
            for (i, v) in mine.into_iter().zip(got) {
                out[i] = v;
            }
        }
        out
    }

    /// Keys on every node.
    async fn keys(&mut self) -> Vec<u64> {
        let mut sizes = Vec::new();
        for c in &mut self.conns {
            sizes.push(redis::cmd("DBSIZE").query_async(c).await.unwrap());
        }
        sizes
    }

    /// Writes `{prefix}0..n` (value `v`) on their nodes and, with a tag, names them in it.
    async fn write(&mut self, prefix: &str, n: usize, tag: Option<&str>) {
        let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let _: Vec<String> = self
            .each(&keys, |k| redis::cmd("SET").arg(k).arg("v").clone())
            .await;
        if let Some(tag) = tag {
            let _: Vec<u64> = self
                .each(&[tag.to_owned()], |t| {
                    redis::cmd("SADD").arg(t).arg(&keys).clone()
                })
                .await;
        }
    }
}

fn operator() -> Actor {
    Actor {
        name: "operator".into(),
        role: Role::Operator,
        client_addr: None,
    }
}

async fn run(
    jobs: &Jobs,
    kinds: &Kinds,
    kind: &str,
    parameters: serde_json::Value,
) -> serde_json::Value {
    let job = NewJob {
        target: Some("cache".into()),
        ..NewJob::new(kind, parameters)
    };
    let (_, queued) = jobs
        .submit(&operator(), kinds, job, Some("cache"))
        .await
        .unwrap();
    let Some(Enqueued::New(id)) = queued else {
        panic!("{queued:?}")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = jobs.job(id).await.unwrap();
        if job.state.is_finished() {
            assert_eq!(job.state, JobState::Succeeded, "{job:?}");
            return job.report.unwrap();
        }
        assert!(Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_primary_cluster_is_seen_per_node_and_every_job_reaches_every_primary() {
    let (cluster, pg) = tokio::join!(RedisCluster::start(3), PgServer::start());
    let (cluster, pg) = (cluster.unwrap(), pg.unwrap());
    pg.connect("postgres")
        .await
        .unwrap()
        .execute(
            "CREATE TABLE w AS SELECT i AS id, 'row ' || i AS name FROM generate_series(1, 200) i",
        )
        .await
        .unwrap();
    let url = |s: String| SecretUrl::parse(&s).unwrap();
    let targets = [
        Target::new("db", TargetKind::Postgres, url(pg.url("postgres"))),
        Target {
            recipes: vec![Recipe {
                name: "rows".into(),
                postgres: "db".into(),
                sql: "SELECT id, name FROM w".into(),
                key: Template::parse("w:{id}").unwrap(),
                value: WarmValue::Row,
                ttl_secs: 600,
                jitter: 0.1,
                tags: vec![Template::parse("rows").unwrap()],
                refresh_ahead: None,
                every_secs: None,
                batch: 64,
                timeout_secs: 30,
                max_rows: pitwall::cache::recipe::DEFAULT_MAX_ROWS,
            }],
            ..Target::new("cache", TargetKind::Redis, url(cluster.url()))
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
            name: "test".into(),
            workers: 1,
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(20),
            per_target: 1,
        },
    );
    let mut placed = Placed::new(&cluster).await;
    placed.write("item:", 3_000, Some("tag:spread")).await;
    placed.write("other:", 300, None).await;
    // Two members whose keys are gone.
    let _: Vec<u64> = placed
        .each(&["tag:spread".to_owned()], |t| {
            redis::cmd("SADD")
                .arg(t)
                .arg("gone:1")
                .arg("gone:2")
                .clone()
        })
        .await;
    let sizes = placed.keys().await;
    assert!(
        sizes.iter().all(|n| *n > 500),
        "keys spread over the primaries: {sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<u64>(), 3_301);

    // The Cache page: each primary with its slots and keys; tags found on whichever holds them;
    // one slow log of every primary's entries, each naming its primary.
    for conn in &mut placed.conns {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(0)
            .query_async(conn)
            .await
            .unwrap();
    }
    let caches = Caches::new(&targets, Duration::from_secs(2));
    let details = caches.details("cache").await.unwrap();
    assert_eq!(details.server.unwrap().mode, "cluster");
    let nodes = details.nodes.expect("a cluster lists its nodes").unwrap();
    assert_eq!(nodes.len(), 3);
    let slowlog = details.slowlog.unwrap();
    let mut logged_by: Vec<String> = slowlog
        .entries
        .iter()
        .map(|e| e.node.clone().expect("a cluster's entry names its node"))
        .collect();
    logged_by.sort();
    logged_by.dedup();
    let mut addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    addrs.sort();
    assert_eq!(logged_by, addrs, "{:#?}", slowlog.entries);
    assert!(
        slowlog.entries.windows(2).all(|w| w[0].at_ms >= w[1].at_ms),
        "newest first"
    );
    assert_eq!(nodes.iter().map(|n| n.slots).sum::<u32>(), 16_384);
    assert_eq!(nodes.iter().map(|n| n.keys).sum::<u64>(), 3_301);
    let registry = caches.tags("cache", "").await.unwrap();
    assert!(registry.complete);
    let spread = registry.tags.iter().find(|t| t.name == "spread").unwrap();
    assert_eq!(spread.members, 3_002);
    // By name, from the primary that holds it.
    let named = caches.tags("cache", "spread").await.unwrap();
    assert_eq!(named.tags.len(), 1, "{named:?}");
    assert_eq!(named.tags[0].members, 3_002);

    // Tag invalidation: every tagged key, wherever it lives, and nothing else.
    let report = run(
        &jobs,
        &kinds,
        "invalidate_tag",
        json!({"tag": "spread", "batch": 250}),
    )
    .await;
    assert_eq!(
        (report["unlinked"].as_u64(), report["already_gone"].as_u64()),
        (Some(3_000), Some(2))
    );
    assert_eq!(placed.keys().await.iter().sum::<u64>(), 300);
    let others: Vec<u64> = placed
        .each(
            &(0..300).map(|i| format!("other:{i}")).collect::<Vec<_>>(),
            |k| redis::cmd("EXISTS").arg(k).clone(),
        )
        .await;
    assert!(others.iter().all(|e| *e == 1));

    // Pruning: members whose keys were deleted on their own primaries.
    placed.write("p:", 100, Some("tag:p")).await;
    let doomed: Vec<String> = (0..40).map(|i| format!("p:{i}")).collect();
    let _: Vec<u64> = placed
        .each(&doomed, |k| redis::cmd("DEL").arg(k).clone())
        .await;
    let report = run(&jobs, &kinds, "prune_tag", json!({"tag": "p", "batch": 30})).await;
    assert_eq!(
        (report["removed"].as_u64(), report["members_left"].as_u64()),
        (Some(40), Some(60))
    );
    assert!(report["checked"].as_u64().unwrap() >= 100, "{report}");

    // Pattern invalidation over every primary, within its cap, then the rest.
    let report = run(
        &jobs,
        &kinds,
        "invalidate_pattern",
        json!({"pattern": "other:*", "cap": 100}),
    )
    .await;
    assert_eq!(
        (report["unlinked"].as_u64(), report["capped"].as_bool()),
        (Some(100), Some(true))
    );
    let report = run(
        &jobs,
        &kinds,
        "invalidate_pattern",
        json!({"pattern": "other:*"}),
    )
    .await;
    assert_eq!(
        (report["unlinked"].as_u64(), report["capped"].as_bool()),
        (Some(200), Some(false))
    );

    // Keyspace analysis over every primary.
    let report: KeyspaceReport =
        serde_json::from_value(run(&jobs, &kinds, "analyze_keyspace", json!({})).await).unwrap();
    assert!(report.complete && report.memory_known);
    let p = report.prefixes.iter().find(|s| s.prefix == "p:").unwrap();
    assert_eq!(p.keys, 60);
    assert_eq!(report.sampled, 61, "60 keys and their tag");

    // Warming: each key on its primary, then tagged.
    let report = run(&jobs, &kinds, "warm_cache", json!({"recipe": "rows"})).await;
    assert_eq!(report["written"], 200);
    let keys: Vec<String> = (1..=200).map(|i| format!("w:{i}")).collect();
    let ttls: Vec<i64> = placed
        .each(&keys, |k| redis::cmd("TTL").arg(k).clone())
        .await;
    assert!(ttls.iter().all(|t| (530..=660).contains(t)), "{ttls:?}");
    let tagged: Vec<u64> = placed
        .each(&["tag:rows".to_owned()], |t| {
            redis::cmd("SCARD").arg(t).clone()
        })
        .await;
    assert_eq!(tagged, [200]);
}
