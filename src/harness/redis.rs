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
}

impl RedisServer {
    /// Starts `redis-server` (or `PITWALL_REDIS_SERVER`) on a free loopback port.
    pub async fn start() -> Result<Self> {
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
