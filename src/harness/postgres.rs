//! A throwaway PostgreSQL cluster with `pg_stat_statements` preloaded.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;

use super::process::{ServiceProcess, Slot, free_port, log_tail, wait_ready};
use super::{Error, Result, io};

const SERVICE: &str = "PostgreSQL";

/// A PostgreSQL server of its own, for as long as this handle lives.
pub struct PgServer {
    // Declared first so it is dropped (the server killed) before the directory is removed.
    slot: Slot,
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<(Uid, Gid)>,
}

impl PgServer {
    /// Creates a cluster in a temporary directory and starts it on a free loopback port, with
    /// `pg_stat_statements` preloaded and created in `postgres` and `template1` (so in every new
    /// database).
    pub async fn start() -> Result<Self> {
        let bin = bin_dir()?;
        let run_as = if Uid::effective().is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("pitwall-pg-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(io("handing the temporary directory to the postgres user"))?;
        }
        let mut server = Self {
            dir,
            bin,
            port: free_port()?,
            run_as,
            slot: Slot::new(
                SERVICE,
                (Signal::SIGINT, Duration::from_secs(10)),
                Signal::SIGQUIT,
            ),
        };
        server.initdb().await?;
        server.launch().await?;
        // In template1 too, so every database created later has the view.
        for db in ["template1", "postgres"] {
            let mut conn = server.connect(db).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .await
                .map_err(|e| {
                    start_error(format!("creating pg_stat_statements: {e}"), &server.log())
                })?;
        }
        Ok(server)
    }

    /// A program of the same installation, such as `pgbench`.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db` as the `postgres` superuser (trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Opens one connection to database `db`.
    pub async fn connect(&self, db: &str) -> Result<PgConnection> {
        PgConnection::connect(&self.url(db))
            .await
            .map_err(|e| start_error(format!("connecting: {e}"), &self.log()))
    }

    /// Stops the server with a fast shutdown; the data directory is kept for [`PgServer::restart`].
    pub fn stop(&mut self) {
        self.slot.stop();
    }

    /// Starts the server again on the same port with the same data (stopping it first if running).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch().await
    }

    /// Freezes every process of the server (`SIGSTOP`): connections hang instead of failing.
    pub fn pause(&self) -> Result<()> {
        self.slot.pause()
    }

    /// Thaws a paused server (`SIGCONT`).
    pub fn resume(&self) -> Result<()> {
        self.slot.resume()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    async fn initdb(&self) -> Result<()> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.data());
        cmd.args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        let log = self.log();
        let status = tokio::task::spawn_blocking(move || {
            let out = std::fs::File::create(&log)?;
            cmd.stdout(out.try_clone()?).stderr(out).status()
        })
        .await
        .map_err(|e| Error::Io {
            context: "initdb task".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io("running initdb"))?;
        if !status.success() {
            return Err(start_error(
                format!("initdb exited with {status}"),
                &self.log(),
            ));
        }
        Ok(())
    }

    async fn launch(&mut self) -> Result<()> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string());
        cmd.arg("-k").arg(self.dir.path());
        for setting in [
            "listen_addresses=127.0.0.1",
            "shared_preload_libraries=pg_stat_statements",
            "pg_stat_statements.track=top",
            "track_io_timing=on",
            "max_connections=60",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "logging_collector=off",
        ] {
            cmd.arg("-c").arg(setting);
        }
        let log = self.log();
        let mut process = ServiceProcess::spawn(SERVICE, cmd, &log)?;
        let url = self.url("postgres");
        wait_ready(&mut process, &log, Duration::from_secs(30), || {
            let url = url.clone();
            async move { PgConnection::connect(&url).await.is_ok() }
        })
        .await?;
        self.slot.fill(process);
        Ok(())
    }
}

fn start_error(reason: String, log: &Path) -> Error {
    Error::Start {
        service: SERVICE,
        reason,
        log: log_tail(log, 20),
    }
}

fn postgres_user() -> Result<(Uid, Gid)> {
    match User::from_name("postgres") {
        Ok(Some(u)) => Ok((u.uid, u.gid)),
        _ => Err(Error::NotFound {
            what: "the `postgres` system user",
            hint: "PostgreSQL refuses to run as root; install the postgresql package, which creates it".into(),
        }),
    }
}

/// Where `initdb` and `postgres` live: `PITWALL_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian), else the directory of `initdb` on `PATH`.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PITWALL_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, bin)| bin);
    if let Some(bin) = debian {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| is_executable(&d.join("initdb")) && is_executable(&d.join("postgres")))
        .ok_or_else(|| Error::NotFound {
            what: "PostgreSQL server binaries (initdb, postgres)",
            hint: "install the postgresql package or set PITWALL_PG_BINDIR".into(),
        })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
