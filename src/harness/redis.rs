//! A throwaway Redis server.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use super::process::{ServiceProcess, Slot, free_port, log_tail, wait_ready};
use super::{Error, Result, io};

const SERVICE: &str = "Redis";

/// A Redis server of its own (no persistence), for as long as this handle lives.
pub struct RedisServer {
    // Declared first so it is dropped (the server killed) before the directory is removed.
    slot: Slot,
    dir: TempDir,
    binary: String,
    port: u16,
    /// Arguments beyond the defaults (cluster mode).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` (or `PITWALL_REDIS_SERVER`) on a free loopback port.
    pub async fn start() -> Result<Self> {
        Self::start_with(Vec::new()).await
    }

    async fn start_with(extra: Vec<String>) -> Result<Self> {
        let binary =
            std::env::var("PITWALL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = tempfile::Builder::new()
            .prefix("pitwall-redis-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let mut server = Self {
            dir,
            binary,
            port: free_port()?,
            extra,
            slot: Slot::new(
                SERVICE,
                (Signal::SIGTERM, Duration::from_secs(5)),
                Signal::SIGKILL,
            ),
        };
        server.launch().await?;
        Ok(server)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for logical database `db`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (its data is lost: it keeps nothing on disk).
    pub fn stop(&mut self) {
        self.slot.stop();
    }

    /// Starts the server again on the same port (stopping it first if running).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch().await
    }

    /// Freezes the server (`SIGSTOP`): commands hang instead of failing.
    pub fn pause(&self) -> Result<()> {
        self.slot.pause()
    }

    /// Thaws a paused server (`SIGCONT`).
    pub fn resume(&self) -> Result<()> {
        self.slot.resume()
    }

    async fn launch(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.current_dir(self.dir.path());
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()]);
        cmd.args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]);
        cmd.args(&self.extra);
        let log = self.dir.path().join("redis.log");
        let mut process = ServiceProcess::spawn(SERVICE, cmd, &log).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotFound {
                    what: "redis-server",
                    hint: "install the redis-server package or set PITWALL_REDIS_SERVER".into(),
                }
            }
            other => other,
        })?;
        let url = self.url(0);
        wait_ready(&mut process, &log, Duration::from_secs(15), || {
            let url = url.clone();
            async move { ping(&url).await }
        })
        .await
        .map_err(|e| match e {
            Error::Start { reason, .. } => Error::Start {
                service: SERVICE,
                reason,
                log: log_tail(&log, 20),
            },
            other => other,
        })?;
        self.slot.fill(process);
        Ok(())
    }
}

/// A throwaway Redis Cluster of primaries only, each a [`RedisServer`] in cluster mode, the
/// 16,384 slots split evenly between them.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `primaries` servers, gives each its slot range (`CLUSTER ADDSLOTSRANGE`), has them
    /// meet, and waits until every node reports the cluster `ok` and knows every other.
    pub async fn start(primaries: usize) -> Result<Self> {
        let cluster_args = || {
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]
            .map(String::from)
            .to_vec()
        };
        let nodes = futures_util::future::try_join_all(
            (0..primaries).map(|_| RedisServer::start_with(cluster_args())),
        )
        .await?;
        let cluster = Self { nodes };
        let per = 16_384 / primaries;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let first = i * per;
            let last = if i + 1 == primaries {
                16_383
            } else {
                first + per - 1
            };
            let mut c = node.connect().await?;
            command(
                &mut c,
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first)
                    .arg(last),
            )
            .await?;
            if i > 0 {
                let seed = cluster.nodes[0].port;
                command(
                    &mut c,
                    redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(seed),
                )
                .await?;
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut ready = true;
            for node in &cluster.nodes {
                let mut c = node.connect().await?;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .map_err(cluster_failed)?;
                ready &= info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{primaries}\r"));
            }
            if ready {
                return Ok(cluster);
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Start {
                    service: SERVICE,
                    reason: "the cluster did not reach cluster_state:ok within 30 s".into(),
                    log: log_tail(&cluster.nodes[0].dir.path().join("redis.log"), 20),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The nodes, in slot order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The URL of the first node (a cluster has database 0 only).
    pub fn url(&self) -> String {
        self.nodes[0].url(0)
    }
}

fn cluster_failed(e: redis::RedisError) -> Error {
    Error::Start {
        service: SERVICE,
        reason: format!("forming the cluster: {e}"),
        log: String::new(),
    }
}

async fn command(c: &mut redis::aio::MultiplexedConnection, cmd: &redis::Cmd) -> Result<()> {
    cmd.query_async::<()>(c).await.map_err(cluster_failed)
}

impl RedisServer {
    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url(0))
            .map_err(cluster_failed)?
            .get_multiplexed_async_connection()
            .await
            .map_err(cluster_failed)
    }
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

impl RedisServer {
    /// Makes this server a replica of `primary` (`REPLICAOF`).
    pub async fn follow(&self, primary: &RedisServer) -> Result<()> {
        let mut c = self.connect().await?;
        command(
            &mut c,
            redis::cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port),
        )
        .await
    }
}

/// A throwaway Redis Sentinel watching one primary under a name: quorum 1, the primary judged
/// down after one second, so a test can fail over (`SENTINEL FAILOVER`) to a replica.
pub struct RedisSentinel {
    // Declared first so it is dropped (the sentinel killed) before the directory is removed.
    slot: Slot,
    dir: TempDir,
    port: u16,
    master: String,
}

impl RedisSentinel {
    /// Starts `redis-server --sentinel` on a free loopback port, watching `primary` as `master`.
    pub async fn start(master: &str, primary: &RedisServer) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pitwall-sentinel-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let port = free_port()?;
        let config = dir.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                 sentinel monitor {master} 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds {master} 1000\n\
                 sentinel failover-timeout {master} 10000\n",
                dir = dir.path().display(),
                primary = primary.port,
            ),
        )
        .map_err(io("writing the sentinel's configuration"))?;
        let mut cmd = Command::new(&primary.binary);
        cmd.current_dir(dir.path());
        cmd.arg(&config).arg("--sentinel");
        let log = dir.path().join("sentinel.log");
        let mut process = ServiceProcess::spawn("Redis Sentinel", cmd, &log)?;
        let url = format!("redis://127.0.0.1:{port}");
        wait_ready(&mut process, &log, Duration::from_secs(15), || {
            let url = url.clone();
            async move { ping(&url).await }
        })
        .await?;
        let mut slot = Slot::new(
            "Redis Sentinel",
            (Signal::SIGTERM, Duration::from_secs(5)),
            Signal::SIGKILL,
        );
        slot.fill(process);
        Ok(Self {
            slot,
            dir,
            port,
            master: master.to_owned(),
        })
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `redis+sentinel://` URL of the master it watches, database `db`.
    pub fn url(&self, db: u8) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}/{db}",
            self.port, self.master
        )
    }

    /// Stops the sentinel.
    pub fn stop(&mut self) {
        self.slot.stop();
    }

    /// The end of its log, for a test's failure message.
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("sentinel.log"), 30)
    }
}
