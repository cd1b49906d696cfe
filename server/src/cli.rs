//! The command line. Every command reads the same configuration: `--config` or `PITWALL_CONFIG`,
//! then the environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pitwall::config::Config;
use pitwall::demo::{Demo, Scale};

use pitwall::access::{Access, Actor, Role};
use pitwall::jobs::{JobState, Priority};
use rand::Rng;

use crate::console::{self, AdminSetup, Console};

/// Pitwall: a performance-operations console for PostgreSQL, Redis and Celery queues.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// The config file (default: ./pitwall.toml when it exists).
    #[arg(long, global = true, env = "PITWALL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console against the configured targets.
    Serve {
        /// Listen address (overrides `listen` and PITWALL_ADDR).
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Start throwaway PostgreSQL and Redis with a sample application and a live workload, and
    /// serve the console against them. Stop with Ctrl-C; the services are thrown away.
    Demo {
        /// Listen address (overrides `listen` and PITWALL_ADDR).
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// A small data set and a gentler workload (for end-to-end tests).
        #[arg(long)]
        small: bool,
    },
    /// Check the configuration and print it (addresses redacted).
    CheckConfig,
    /// Check every configured target once and print its state, and each Celery broker's queue
    /// depths; exits with an error when a target is down.
    Status,
    /// Manage console users (in the store under the data directory).
    #[command(subcommand)]
    User(UserCommand),
    /// Mint, list and revoke the read-only tokens that open embeddable panels.
    #[command(subcommand)]
    Embed(EmbedCommand),
    /// Maintenance jobs in the store: list, show, start, cancel, retry.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The newest jobs.
    List {
        /// Only jobs in this state (pending, running, succeeded, cancelled, dead, interrupted).
        #[arg(long, value_parser = |s: &str| s.parse::<JobState>())]
        state: Option<JobState>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One job in full, as JSON.
    Show {
        /// The job's id.
        id: i64,
    },
    /// Plan a job and, with --confirm, queue it (a running console's workers run it).
    Start {
        /// The kind, such as `noop`.
        kind: String,
        /// Its parameters, as a JSON object.
        #[arg(long, default_value = "{}")]
        params: String,
        /// The target it works on.
        #[arg(long)]
        target: Option<String>,
        /// critical, high, normal, low or batch.
        #[arg(long, default_value = "normal", value_parser = |s: &str| s.parse::<Priority>())]
        priority: Priority,
        /// Attempts allowed.
        #[arg(long, default_value_t = 3)]
        attempts: u32,
        /// Queue it: any text for a harmless job; for one that changes data, the name of what
        /// it works on (the target). Without it, only the plan is printed.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Cancel a job: a pending one at once, a running one at its next checkpoint.
    Cancel {
        /// The job's id.
        id: i64,
    },
    /// Queue a dead, interrupted or cancelled job again.
    Retry {
        /// The job's id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum EmbedCommand {
    /// Mint a token and print it with an embed address (the token is not shown again).
    Mint {
        /// What it is for, such as the portal that uses it.
        #[arg(long)]
        label: String,
        /// The panel it opens, such as `host/cpu` (see `pitwall embed panels`); every panel when
        /// left out.
        #[arg(long)]
        panel: Option<String>,
        /// How long it works: `12h`, `30d`, `365d`.
        #[arg(long, default_value = "30d")]
        lifetime: String,
    },
    /// List the tokens minted.
    List,
    /// Revoke a token by id; panels opened with it stop at their next refresh.
    Revoke {
        /// The token's id (from `pitwall embed list`).
        id: String,
    },
    /// List the panels that can be embedded, with their addresses.
    Panels,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// The user name.
        name: String,
        /// viewer, operator or admin.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
    },
    /// Set a user's password (read from standard input); their sessions end.
    Passwd {
        /// The user name.
        name: String,
    },
    /// Remove a user; their sessions end.
    Remove {
        /// The user name.
        name: String,
    },
    /// List users.
    List,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// What a command can fail with, printed as `error: …`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] pitwall::config::Error),
    #[error(transparent)]
    Demo(#[from] pitwall::demo::Error),
    #[error(transparent)]
    Console(#[from] console::Error),
    #[error(transparent)]
    Store(#[from] pitwall::store::Error),
    #[error(transparent)]
    Access(#[from] pitwall::access::Error),
    #[error(transparent)]
    Embed(#[from] pitwall::embed::Error),
    #[error(transparent)]
    Jobs(#[from] pitwall::jobs::Error),
    #[error("--params: {0}")]
    Params(serde_json::Error),
    #[error("{0} target(s) down")]
    Down(usize),
    #[error("reading the password from standard input: {0}")]
    Stdin(std::io::Error),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> Result<(), Error> {
        let mut config = Config::load(self.config.as_deref())?;
        match self.command {
            Command::Serve { addr } => {
                config.listen = addr.unwrap_or(config.listen);
                let console =
                    Console::start(config, AdminSetup::FirstRun(admin_password())).await?;
                println!("Pitwall is serving on {}", console.url());
                console.serve_until_shutdown().await?;
            }
            Command::Demo { addr, small } => {
                config.listen = addr.unwrap_or(config.listen);
                println!(
                    "Starting throwaway PostgreSQL and Redis and loading the sample application…"
                );
                let demo = Demo::start(if small { Scale::SMALL } else { Scale::FULL }).await?;
                config.targets = demo.targets();
                let password = admin_password().unwrap_or_else(random_password);
                let console = Console::start(config, AdminSetup::Demo(password.clone())).await?;
                println!("Demo targets (thrown away when Pitwall stops):");
                for t in demo.targets() {
                    println!("  {:<8} {:<14} {}", t.name, t.kind.label(), t.url);
                }
                println!("Pitwall demo console: {}", console.url());
                println!("Sign in as `admin` with password `{password}`.");
                println!("Press Ctrl-C to stop.");
                console.serve_until_shutdown().await?;
                drop(demo);
            }
            Command::CheckConfig => {
                println!("listen   = {}", config.listen);
                println!("data_dir = {}", config.data_dir.display());
                if let Some(site) = &config.site_dir {
                    println!("site_dir = {}", site.display());
                }
                for t in &config.targets {
                    println!("target {:<16} {:<14} {}", t.name, t.kind.label(), t.url);
                }
                println!("configuration OK");
            }
            Command::Status => status(&config).await?,
            Command::User(command) => user(command, &config).await?,
            Command::Embed(command) => embed(command, &config).await?,
            Command::Jobs(command) => jobs(command, &config).await?,
        }
        Ok(())
    }
}

/// `PITWALL_ADMIN_PASSWORD`, if set.
fn admin_password() -> Option<String> {
    std::env::var("PITWALL_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
}

fn random_password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// One line from standard input (a prompt goes to standard error when it is a terminal).
fn read_password() -> Result<String, Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("Password (shown as you type; at least 10 characters): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(Error::Stdin)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn user(command: UserCommand, config: &Config) -> Result<(), Error> {
    let store = pitwall::store::open(&config.data_dir).await?;
    let access = Access::new(store, config.access.settings);
    let cli = Actor::command_line();
    match command {
        UserCommand::Add { name, role } => {
            access
                .add_user(&cli, &name, &read_password()?, role)
                .await?;
            println!("added {name} ({role})");
        }
        UserCommand::Passwd { name } => {
            access.set_password(&cli, &name, &read_password()?).await?;
            println!("password of {name} changed; their sessions ended");
        }
        UserCommand::Remove { name } => {
            access.remove_user(&cli, &name).await?;
            println!("removed {name}; their sessions ended");
        }
        UserCommand::List => {
            for u in access.users().await? {
                let state = if u.locked_until_ms.is_some() {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<9} {:<7} sessions: {}",
                    u.username, u.role, state, u.sessions
                );
            }
        }
    }
    Ok(())
}

async fn embed(command: EmbedCommand, config: &Config) -> Result<(), Error> {
    use pitwall::embed::{Embeds, Error as E, Scope, catalogue, parse_duration};

    let targets: Vec<_> = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.kind))
        .collect();
    let panels = catalogue(&targets, &config.thresholds);
    let open = async || -> Result<Embeds, Error> {
        Ok(Embeds::open(pitwall::store::open(&config.data_dir).await?).await?)
    };
    match command {
        EmbedCommand::Panels => {
            for p in &panels {
                println!("{:<24} /embed/{:<24} {}", p.id, p.id, p.title);
            }
        }
        EmbedCommand::Mint {
            label,
            panel,
            lifetime,
        } => {
            let scope = match panel {
                None => Scope::All,
                Some(id) if panels.iter().any(|p| p.id == id) => Scope::Panel(id),
                Some(id) => {
                    return Err(E::Invalid(format!(
                        "there is no panel `{id}`; `pitwall embed panels` lists them"
                    ))
                    .into());
                }
            };
            let lifetime = parse_duration(&lifetime)
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| {
                    E::Invalid(format!(
                        "--lifetime must be a duration such as `12h` or `30d`, not `{lifetime}`"
                    ))
                })?;
            let (summary, token) = open()
                .await?
                .mint(&Actor::command_line(), &label, scope, lifetime)
                .await?;
            let example = match &summary.scope {
                Scope::All => panels.first().map_or("host/cpu", |p| p.id.as_str()),
                Scope::Panel(id) => id,
            };
            println!(
                "minted {} for {}, expires {}",
                summary.id,
                summary.scope,
                pitwall::format_utc(summary.expires_at_ms)
            );
            println!("token: {}", token.expose());
            println!("embed: {}", token.path(example));
        }
        EmbedCommand::List => {
            let now = pitwall::status::now_ms();
            for t in open().await?.list().await? {
                println!(
                    "{:<14} {:<8} {:<24} {:<20} expires {}  by {}",
                    t.id,
                    t.state(now),
                    t.label,
                    t.scope.to_string(),
                    pitwall::format_utc(t.expires_at_ms),
                    t.created_by
                );
            }
        }
        EmbedCommand::Revoke { id } => {
            open().await?.revoke(&Actor::command_line(), &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn jobs(command: JobsCommand, config: &Config) -> Result<(), Error> {
    use pitwall::jobs::{Enqueued, Jobs, NewJob, kinds};

    let jobs = Jobs::new(
        pitwall::store::open(&config.data_dir).await?,
        config.jobs.backoff,
    );
    let cli = Actor::command_line();
    match command {
        JobsCommand::List { state, limit } => {
            for j in jobs.list(state, limit).await? {
                let progress = j
                    .progress
                    .map(|p| match p.total {
                        Some(t) => format!("{}/{t} {}", p.done, p.phase),
                        None => format!("{} {}", p.done, p.phase),
                    })
                    .unwrap_or_default();
                println!(
                    "{:<6} {:<12} {:<8} {:<12} {:<9} attempts {}/{}  by {:<12} {}",
                    j.id,
                    j.kind,
                    j.priority,
                    j.target.as_deref().unwrap_or("-"),
                    j.state,
                    j.attempts,
                    j.max_attempts,
                    j.requested_by,
                    progress
                );
            }
        }
        JobsCommand::Show { id } => {
            let job = jobs.job(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&job).expect("jobs encode")
            );
        }
        JobsCommand::Start {
            kind,
            params,
            target,
            priority,
            attempts,
            confirm,
        } => {
            let parameters = serde_json::from_str(&params).map_err(Error::Params)?;
            let job = NewJob {
                target,
                priority,
                max_attempts: attempts,
                ..NewJob::new(&kind, parameters)
            };
            let (plan, queued) = jobs
                .submit(&cli, &kinds::all(), job, confirm.as_deref())
                .await?;
            println!("plan: {}", plan.summary);
            for statement in &plan.statements {
                println!("  {statement}");
            }
            match queued {
                Some(Enqueued::New(id)) => println!("queued job {id}"),
                Some(Enqueued::Duplicate(id)) => println!("job {id} is already queued"),
                None => println!("not queued: add --confirm to queue it"),
            }
        }
        JobsCommand::Cancel { id } => {
            let state = jobs.cancel(&cli, id).await?;
            println!("job {id}: {state}");
        }
        JobsCommand::Retry { id } => match jobs.retry(&cli, id).await? {
            Enqueued::New(new) | Enqueued::Duplicate(new) => {
                println!("job {id} queued again as job {new}")
            }
        },
    }
    Ok(())
}

async fn status(config: &Config) -> Result<(), Error> {
    use pitwall::TargetKind;
    use pitwall::probe::{Probe, Prober};
    use pitwall::telemetry::collect::{Collector, QueuesCollector};
    use pitwall::telemetry::metric;

    let timeout = config.telemetry.timeout;
    let mut down = 0;
    for t in &config.targets {
        let probe = match Prober::new(t, timeout) {
            Ok(mut prober) => prober.check().await,
            Err(reason) => Probe::Down { reason },
        };
        match probe {
            Probe::Up { version, latency } => println!(
                "{:<16} {:<14} {:<28} up    {version} ({:.1} ms)",
                t.name,
                t.kind.label(),
                t.url.to_string(),
                latency.as_secs_f64() * 1000.0
            ),
            Probe::Down { reason } => {
                down += 1;
                println!(
                    "{:<16} {:<14} {:<28} down  {reason}",
                    t.name,
                    t.kind.label(),
                    t.url.to_string()
                );
                continue;
            }
        }
        if t.kind != TargetKind::Celery {
            continue;
        }
        let round = async {
            QueuesCollector::new(t, timeout)?
                .collect(pitwall::status::now_ms())
                .await
        };
        match tokio::time::timeout(timeout, round).await {
            Ok(Ok(values)) => {
                let get = |m: &str| values.iter().find(|(k, _)| k == m).map(|(_, v)| *v);
                let prefix = metric::queue_depth("");
                let mut queues: Vec<_> = values
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, *v)))
                    .collect();
                queues.sort_by(|a, b| a.0.cmp(b.0));
                for (queue, depth) in queues {
                    println!("  queue {queue:<24} {depth:>10} waiting");
                }
                println!(
                    "  {:<30} {:>10} waiting, {} unacked",
                    "all queues",
                    get(metric::QUEUE_DEPTH).unwrap_or(0.0),
                    get(metric::UNACKED).unwrap_or(0.0)
                );
            }
            Ok(Err(reason)) => println!("  queues: {reason}"),
            Err(_) => println!("  queues: no answer within {} ms", timeout.as_millis()),
        }
    }
    if down > 0 {
        return Err(Error::Down(down));
    }
    Ok(())
}
