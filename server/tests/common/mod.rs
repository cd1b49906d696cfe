//! A `pitwall` binary spawned on a free port with its own data and (empty) site directory, and
//! HTTP clients that sign in to it.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ORIGIN};
use reqwest::redirect::Policy;
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_pitwall");
/// The first admin's password in every spawned console.
pub const ADMIN_PASSWORD: &str = "admin-test-pw-3141";

/// The password [`Console::add_user`] gives user `name`.
pub fn password_of(name: &str) -> String {
    format!("{name}-test-pw-2718")
}

/// A running console, killed on drop.
pub struct Console {
    child: Child,
    pub base: String,
    dir: Arc<TempDir>,
    log_name: String,
}

impl Console {
    /// Spawns `pitwall serve` with `config` and waits until it answers.
    pub async fn spawn(config: &str) -> Console {
        Self::spawn_in(Self::dir_with(config), &[]).await
    }

    /// The same, without the test switch that offers the `noop` kind: a plain `pitwall serve`.
    pub async fn spawn_plain(config: &str) -> Console {
        Self::spawn_in(Self::dir_with(config), &["PITWALL_JOBS_NOOP"]).await
    }

    /// The same as `spawn`, once `prepare` has readied the console's directory (such as mounting
    /// a small file system as its data directory); returns what `prepare` returned too.
    pub async fn spawn_prepared<T>(config: &str, prepare: impl FnOnce(&Path) -> T) -> (Console, T) {
        let dir = Self::dir_with(config);
        let prepared = prepare(dir.path());
        (Self::spawn_in(dir, &[]).await, prepared)
    }

    fn dir_with(config: &str) -> Arc<TempDir> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
        std::fs::write(dir.path().join("pitwall.toml"), config).unwrap();
        Arc::new(dir)
    }

    /// Spawns another console on this one's config, data and store (as a second instance
    /// sharing the store would), on a port of its own.
    pub async fn sibling(&self) -> Console {
        Self::spawn_in(self.dir.clone(), &[]).await
    }

    async fn spawn_in(dir: Arc<TempDir>, unset: &[&str]) -> Console {
        let config_path = dir.path().join("pitwall.toml");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_name = format!("console-{port}.log");
        let log = std::fs::File::create(dir.path().join(&log_name)).unwrap();
        let mut command = command(dir.path());
        for var in unset {
            command.env_remove(var);
        }
        let child = command
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("PITWALL_ADDR", format!("127.0.0.1:{port}"))
            .env("PITWALL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PITWALL_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let console = Console {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            log_name,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(console.url("/health")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "console did not come up:\n{}",
                console.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        console
    }

    /// Sends SIGTERM and waits for the process to exit; returns how long that took.
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = started + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the console did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The console's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the console printed and logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(&self.log_name)).unwrap_or_default()
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a `pitwall` command on this console's config and data; returns its exit code and
    /// everything it printed.
    pub fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = command(self.dir.path())
            .arg("--config")
            .arg(self.dir.path().join("pitwall.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// A client as a browser on the console's own origin: keeps cookies, sends `Origin`, does not
    /// follow redirects.
    pub fn client(&self) -> reqwest::Client {
        self.client_from(&self.base)
    }

    /// The same, but claiming to come from another origin.
    pub fn client_from(&self, origin: &str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// Posts the sign-in form; returns the client and where it was sent.
    pub async fn try_sign_in(&self, user: &str, password: &str) -> (reqwest::Client, String) {
        let client = self.client();
        let r = client
            .post(self.url("/login"))
            .form(&[
                ("username", user),
                ("password", password),
                ("next", "/users"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        (client, location)
    }

    /// A signed-in client; panics if the sign-in is refused.
    pub async fn sign_in(&self, user: &str, password: &str) -> reqwest::Client {
        let (client, location) = self.try_sign_in(user, password).await;
        assert_eq!(location, "/users", "sign-in of {user} refused");
        client
    }

    /// Adds user `name` with `role` through the admin's `add_user` server function; their
    /// password is [`password_of`] the name.
    pub async fn add_user(&self, admin: &reqwest::Client, name: &str, role: &str) {
        let password = password_of(name);
        let args = [("username", name), ("password", &password), ("role", role)];
        let (code, body) = self.call(admin, "add_user", &args).await;
        assert_eq!(code, 200, "adding {name}: {body}");
    }

    /// Calls a server function with form arguments; returns the status and body.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        function: &str,
        args: &[(&str, &str)],
    ) -> (u16, String) {
        let r = client
            .post(self.url(&format!("/api/{function}")))
            .form(args)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let r = client.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn health(&self) -> (u16, Value) {
        let r = reqwest::get(self.url("/health")).await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with a clean environment: no config or target variables from the caller.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env("PITWALL_DATA", dir.join("data"))
        .env("PITWALL_SITE", dir.join("site"))
        .env("PITWALL_LOG", "warn")
        // The tests start `noop` jobs; a plain `pitwall serve` does not offer the kind.
        .env("PITWALL_JOBS_NOOP", "1")
        .env_remove("PITWALL_CONFIG")
        .env_remove("PITWALL_ADDR")
        .env_remove("PITWALL_ADMIN_PASSWORD")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL");
    cmd
}
