//! Console configuration: `pitwall.toml` plus environment overrides.
//!
//! The file is optional. `PITWALL_ADDR`, `PITWALL_DATA`, `PITWALL_SITE` and `PITWALL_METRICS_TOKEN`
//! override the listen address, the data directory, the site directory and the `/metrics` token; `DATABASE_URL` and `REDIS_URL` each add one target (named `postgres` and `redis`)
//! without a file. Every mistake is reported with the file, line and column, or the variable.

mod access;
mod error;
mod file;
mod http;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use access::{AccessConfig, IpNet, TrustedProxy};
pub use error::{Error, Result};
pub use http::HttpConfig;

use crate::TargetKind;
use crate::alerts::Rule;
use crate::jobs::Backoff;
use crate::secret::SecretUrl;
use crate::telemetry::{HistorySettings, Intervals, Thresholds};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_VAR: &str = "PITWALL_CONFIG";
/// The file read from the working directory when neither `--config` nor `PITWALL_CONFIG` is set.
pub const DEFAULT_FILE: &str = "pitwall.toml";

/// The console's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the console listens.
    pub listen: SocketAddr,
    /// Where the console keeps its own store.
    pub data_dir: PathBuf,
    /// The site directory (wasm, JS, CSS, assets); `None` means `site/` next to the binary.
    pub site_dir: Option<PathBuf>,
    /// The monitored targets, names unique across kinds.
    pub targets: Vec<Target>,
    /// Sessions, sign-in protection and trusted-proxy sign-in.
    pub access: AccessConfig,
    /// How often the collectors run.
    pub telemetry: Intervals,
    /// How metric history is downsampled and kept.
    pub history: HistorySettings,
    /// When the console's machine deserves a recommendation.
    pub thresholds: Thresholds,
    /// Who may frame the embeddable panels.
    pub embed: EmbedPolicy,
    /// How maintenance jobs run.
    pub jobs: JobsConfig,
    /// When a statement counts as slow (`[queries]`).
    pub queries: crate::postgres::workload::SlowQuery,
    /// The alert rules in force (`[alerts]`): the defaults unless switched off or replaced.
    pub alerts: Vec<Rule>,
    /// Who may scrape `/metrics` (`[metrics]`).
    pub metrics: MetricsConfig,
    /// Host names and connection limits (`[http]`).
    pub http: HttpConfig,
    /// Where alert notifications go (`[[alerts.webhooks]]`, `alerts.external_url`).
    pub notify: crate::alerts::notify::Settings,
}

/// Who may scrape `/metrics` (`[metrics]`; `PITWALL_METRICS_TOKEN` overrides the token).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// With a token, a scrape needs `Authorization: Bearer <token>`; without, it is open.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// How this console runs maintenance jobs (`[jobs]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// Jobs this console runs at once.
    pub workers: usize,
    /// A running job's lease: renewed every third of it; when it runs out (the console died),
    /// another worker takes the job up.
    pub lease: Duration,
    /// Jobs running at once on one target, across consoles.
    pub per_target: u32,
    /// The wait before retrying a failed attempt.
    pub backoff: Backoff,
    /// Finished jobs are kept this long.
    pub retention: Duration,
    /// Whether the `noop` kind, which only waits, is offered (the demo and tests; `[jobs] noop`,
    /// `PITWALL_JOBS_NOOP`).
    pub noop: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            lease: Duration::from_secs(30),
            per_target: 1,
            backoff: Backoff::default(),
            retention: Duration::from_secs(30 * 86_400),
            noop: false,
        }
    }
}

/// Which origins may frame `/embed/...` panels (CSP `frame-ancestors`); none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedPolicy {
    /// Bare origins, such as `https://portal.example.com`.
    pub frame_ancestors: Vec<String>,
}

impl EmbedPolicy {
    /// Whether any origin may frame the panels.
    pub fn enabled(&self) -> bool {
        !self.frame_ancestors.is_empty()
    }

    /// The CSP `frame-ancestors` sources: the allow-list, or `'none'`.
    pub fn frame_ancestors(&self) -> String {
        if self.enabled() {
            self.frame_ancestors.join(" ")
        } else {
            "'none'".into()
        }
    }
}

/// One monitored service.
#[derive(Debug, Clone)]
pub struct Target {
    /// Unique name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// What kind of service this is.
    pub kind: TargetKind,
    /// How to reach it (redacted when printed).
    pub url: SecretUrl,
    /// Broker settings, for Celery targets only.
    pub celery: Option<CeleryBroker>,
    /// Application hit counters, for Redis targets only.
    pub counters: Vec<crate::cache::HitCounter>,
    /// Cache-warming recipes writing into this target, for Redis targets only.
    pub recipes: Vec<crate::cache::recipe::Recipe>,
    /// The longest TTL per key prefix, checked by keyspace analysis, for Redis targets only.
    pub ttl_policies: Vec<crate::cache::keyspace::TtlPolicy>,
}

impl Target {
    /// A target of `kind` at `url`, without broker settings, counters, recipes or TTL policies.
    pub fn new(name: impl Into<String>, kind: TargetKind, url: SecretUrl) -> Self {
        Self {
            name: name.into(),
            kind,
            url,
            celery: None,
            counters: Vec::new(),
            recipes: Vec::new(),
            ttl_policies: Vec::new(),
        }
    }
}

/// How a Celery broker lays out its queues on Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CeleryBroker {
    /// Queue names to watch (more are discovered from kombu's binding sets).
    pub queues: Vec<String>,
    /// kombu's `global_keyprefix`, prepended to every key.
    pub global_keyprefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("pitwall-data"),
            site_dir: None,
            targets: Vec::new(),
            access: AccessConfig::default(),
            telemetry: Intervals::default(),
            history: HistorySettings::default(),
            thresholds: Thresholds::default(),
            embed: EmbedPolicy::default(),
            jobs: JobsConfig::default(),
            queries: Default::default(),
            alerts: crate::alerts::defaults::rules(),
            metrics: MetricsConfig::default(),
            http: HttpConfig::default(),
            notify: Default::default(),
        }
    }
}

impl Config {
    /// Loads the configuration the way every CLI command does: the file from `explicit`, else from
    /// `PITWALL_CONFIG`, else `pitwall.toml` if it exists; then the environment overrides.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        Self::load_with(explicit, |var| {
            std::env::var(var).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`Config::load`] with the environment given as a function, for tests.
    pub fn load_with(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => match env(CONFIG_VAR) {
                Some(p) => Some(PathBuf::from(p)),
                None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()),
            },
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                file::parse(&path, &text)?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Parses a config file's text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        file::parse(path, text)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(addr) = env("PITWALL_ADDR") {
            self.listen = addr.parse().map_err(|e| Error::Env {
                var: "PITWALL_ADDR",
                message: format!("{e}: expected an address such as 127.0.0.1:3000"),
            })?;
        }
        if let Some(dir) = env("PITWALL_DATA") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(dir) = env("PITWALL_SITE") {
            self.site_dir = Some(PathBuf::from(dir));
        }
        if let Some(token) = env("PITWALL_METRICS_TOKEN") {
            self.metrics.token = Some(file::check_token(&token).map_err(|message| Error::Env {
                var: "PITWALL_METRICS_TOKEN",
                message,
            })?);
        }
        if let Some(noop) = env("PITWALL_JOBS_NOOP") {
            self.jobs.noop = match noop.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(Error::Env {
                        var: "PITWALL_JOBS_NOOP",
                        message: format!("expected true, false, 1 or 0, not `{noop}`"),
                    });
                }
            };
        }
        for (var, name, kind) in [
            ("DATABASE_URL", "postgres", TargetKind::Postgres),
            ("REDIS_URL", "redis", TargetKind::Redis),
        ] {
            let Some(value) = env(var) else { continue };
            let url = SecretUrl::parse(&value)
                .and_then(|u| file::check_scheme(kind, &u).map(|()| u))
                .map_err(|e| Error::Env {
                    var,
                    message: e.to_string(),
                })?;
            if self.targets.iter().any(|t| t.name == name) {
                return Err(Error::Env {
                    var,
                    message: format!("the config file already defines a target named `{name}`"),
                });
            }
            self.targets.push(Target::new(name, kind, url));
        }
        Ok(())
    }

    /// The target with this name.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests;
