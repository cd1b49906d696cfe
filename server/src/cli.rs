//! The command line. Every command reads the same configuration: `--config` or `PITWALL_CONFIG`,
//! then the environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Check every configured target once and print its state, each Celery broker's queue
    /// depths, and the alerts of the running console; exits with an error when a target is down
    /// or a critical alert fires.
    Status {
        /// The running console to ask for its alerts (default: `listen` of the config).
        #[arg(long)]
        console: Option<SocketAddr>,
    },
    /// Show the next messages workers will take from a Celery queue, without taking them.
    Peek {
        /// The broker (a `[[celery]]` target's name).
        broker: String,
        /// The queue.
        queue: String,
        /// How many messages (1 to 50).
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Manage console users (in the store under the data directory).
    #[command(subcommand)]
    User(UserCommand),
    /// Mint, list and revoke the read-only tokens that open embeddable panels.
    #[command(subcommand)]
    Embed(EmbedCommand),
    /// Maintenance jobs in the store: list, show, start, cancel, retry.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// PostgreSQL: slow queries, index suggestions, and index builds and vacuums as jobs.
    #[command(subcommand)]
    Db(DbCommand),
    /// Write the metric history in the store (one-minute buckets of every collected figure) to a
    /// JSON file.
    Metrics {
        /// The file to write (replaced whole, never left half-written).
        #[arg(long, value_name = "FILE.json")]
        export: PathBuf,
        /// How far back: `30m`, `6h`, `7d`.
        #[arg(long, default_value = "1h")]
        since: String,
    },
    /// Redis caches: figures, keys, slow log and latency.
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Queue a warming recipe's job (or every recipe's) and print its plan; a running console
    /// runs it.
    Warm {
        /// The recipe's name.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        recipe: Option<String>,
        /// Every recipe of every Redis target.
        #[arg(long)]
        all: bool,
        /// Only print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Wait for the job(s) to finish, printing progress; fails unless each succeeds.
        #[arg(long)]
        wait: bool,
    },
    /// Queue the invalidation of a tag's keys or of the keys matching a pattern (SCAN-based,
    /// capped); with --dry-run only print the plan: the count and a sample of keys.
    Invalidate {
        /// The Redis target.
        #[arg(long)]
        target: String,
        /// The tag's name (without `tag:`).
        #[arg(long, required_unless_present = "pattern", conflicts_with = "pattern")]
        tag: Option<String>,
        /// A glob pattern with a literal prefix, such as `cache:project:*`.
        #[arg(long)]
        pattern: Option<String>,
        /// At most this many keys for a pattern (default 100000).
        #[arg(long, requires = "pattern")]
        cap: Option<u64>,
        /// Only print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Wait for the job to finish, printing progress; fails unless it succeeds.
        #[arg(long)]
        wait: bool,
    },
    /// Queue the removal of a tag's members whose key is gone.
    Prune {
        /// The Redis target.
        #[arg(long)]
        target: String,
        /// The tag's name (without `tag:`).
        #[arg(long)]
        tag: String,
        /// Wait for the job to finish, printing progress; fails unless it succeeds.
        #[arg(long)]
        wait: bool,
    },
    /// The tags of a Redis target, most members first: members, stale members and memory (a
    /// paced, bounded SCAN); with --start only those whose names start with it.
    Tags {
        /// The Redis target.
        #[arg(long)]
        target: String,
        /// The start of the tags' names (a tag named exactly so is always found).
        #[arg(long, default_value = "")]
        start: String,
        /// Print the registry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Each Redis target's figures over one second (hit rate, ops/s, memory, evictions, …),
    /// keys per database, slow log and latency; fails when a target cannot be read.
    Stats {
        /// Only this Redis target.
        #[arg(long)]
        target: Option<String>,
        /// Print everything as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Statements over the `[queries]` thresholds, from pg_stat_statements' totals (never reset).
    SlowQueries {
        /// The PostgreSQL target (default: the first).
        #[arg(long)]
        target: Option<String>,
    },
    /// Indexes that would serve the slow statements, with their reasoning.
    SuggestIndexes {
        /// The PostgreSQL target (default: the first).
        #[arg(long)]
        target: Option<String>,
        /// Print the whole advice as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Plan a CREATE INDEX CONCURRENTLY job and, with --confirm TARGET, queue it.
    CreateIndex {
        /// The PostgreSQL target.
        #[arg(long)]
        target: String,
        /// The table, `table` or `schema.table`.
        #[arg(long)]
        table: String,
        /// The columns, in order, separated by commas (`a,b DESC`).
        #[arg(long, value_delimiter = ',', required = true)]
        columns: Vec<String>,
        /// btree (default), hash, gin, gist or brin.
        #[arg(long)]
        method: Option<String>,
        /// A unique index.
        #[arg(long)]
        unique: bool,
        /// A partial index's predicate (`col IS NOT NULL`, `col = 'x' AND n > 3`).
        #[arg(long = "where")]
        predicate: Option<String>,
        /// The index's name (default: `<table>_<columns>_idx`).
        #[arg(long)]
        name: Option<String>,
        /// Queue it: the target's name.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Plan a VACUUM job (one table or the whole database) and, with --confirm, queue it.
    Vacuum {
        /// The PostgreSQL target.
        #[arg(long)]
        target: String,
        /// One table, `table` or `schema.table` (default: the whole database).
        #[arg(long)]
        table: Option<String>,
        /// Also ANALYZE.
        #[arg(long)]
        analyze: bool,
        /// FREEZE.
        #[arg(long)]
        freeze: bool,
        /// FULL: rewrites the table under an ACCESS EXCLUSIVE lock (confirm with the target's name).
        #[arg(long)]
        full: bool,
        /// Queue it (for FULL: the target's name).
        #[arg(long)]
        confirm: Option<String>,
    },
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
    /// Queue a dead, interrupted or cancelled job again, planned again (the plan is printed);
    /// one that changes data needs --confirm with the name of what it works on (the target).
    Retry {
        /// The job's id.
        id: i64,
        /// For a job that changes data: the name of what it works on (the target).
        #[arg(long)]
        confirm: Option<String>,
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
    /// Lift a user's sign-in locks: every address's, and the account-wide wait.
    Unlock {
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
    #[error(transparent)]
    Queues(#[from] pitwall::queues::Error),
    #[error("{0}")]
    Db(String),
    #[error("{0}")]
    Cache(String),
    #[error("{0}")]
    Metrics(String),
    #[error("--params: {0}")]
    Params(serde_json::Error),
    #[error("{0} target(s) down")]
    Down(usize),
    #[error("{0} critical alert(s) firing")]
    Critical(usize),
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
                config.jobs.noop = true;
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
                for r in &config.alerts {
                    println!("alert  {:<28} {}", r.name(), r.expr());
                }
                println!("configuration OK");
            }
            Command::Status { console } => status(&config, console).await?,
            Command::Peek {
                broker,
                queue,
                count,
            } => peek(&config, &broker, &queue, count).await?,
            Command::User(command) => user(command, &config).await?,
            Command::Embed(command) => embed(command, &config).await?,
            Command::Jobs(command) => jobs(command, &config).await?,
            Command::Db(command) => db(command, &config).await?,
            Command::Cache(command) => cache(command, &config).await?,
            Command::Metrics { export, since } => export_metrics(&config, &export, &since).await?,
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
        UserCommand::Unlock { name } => {
            access.unlock_user(&cli, &name).await?;
            println!("unlocked {name}");
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
    use pitwall::embed::{Embeds, Error as E, Scope, catalogue};
    use pitwall::format::parse_duration;

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
    use pitwall::jobs::{Enqueued, Jobs, NewJob};

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
            plan_and_queue(config, &jobs, job, confirm.as_deref()).await?;
        }
        JobsCommand::Cancel { id } => {
            let state = jobs.cancel(&cli, id).await?;
            println!("job {id}: {state}");
        }
        JobsCommand::Retry { id, confirm } => {
            let kinds = pitwall::jobs::kinds::configured(config);
            match jobs.retry(&cli, &kinds, id, confirm.as_deref()).await {
                Ok((plan, queued)) => {
                    print_plan(&plan);
                    match queued {
                        Enqueued::New(new) => println!("job {id} queued again as job {new}"),
                        Enqueued::Duplicate(new) => println!("job {new} is already queued"),
                    }
                }
                Err(e) => {
                    // Refused for want of the confirmation: show what it would have done.
                    if let pitwall::jobs::Error::Unconfirmed { plan, .. } = &e {
                        print_plan(plan);
                    }
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

/// Writes the stored metric history since `since` ago to `path` as JSON: per series (target,
/// family, metric) its buckets. Written to a temporary file beside it, then renamed.
async fn export_metrics(config: &Config, path: &Path, since: &str) -> Result<(), Error> {
    let since_ms = pitwall::format::parse_duration(since).ok_or_else(|| {
        Error::Metrics(format!(
            "--since must be a duration such as `30m`, `6h` or `7d`, not `{since}`"
        ))
    })?;
    let to_ms = pitwall::status::now_ms();
    let from_ms = to_ms.saturating_sub(since_ms);
    let store = pitwall::store::open(&config.data_dir).await?;
    let buckets = store.all_buckets(from_ms, to_ms).await?;
    let mut series: Vec<serde_json::Value> = Vec::new();
    for group in buckets.chunk_by(|a, b| a.series == b.series && a.width_ms == b.width_ms) {
        let (name, width_ms) = (&group[0].series, group[0].width_ms);
        let mut parts = name.splitn(3, '/');
        let (target, family, metric) = (parts.next(), parts.next(), parts.next());
        series.push(serde_json::json!({
            "target": target,
            "family": family,
            "metric": metric,
            "bucket_ms": width_ms,
            "points": group
                .iter()
                .map(|b| serde_json::json!({
                    "start_ms": b.start_ms,
                    "min": b.min,
                    "avg": b.avg,
                    "max": b.max,
                    "last": b.last,
                    "samples": b.samples,
                }))
                .collect::<Vec<_>>(),
        }));
    }
    let document = serde_json::json!({
        "exported_at_ms": to_ms,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "series": series,
    });
    let failed = |e: std::io::Error| Error::Metrics(format!("writing {}: {e}", path.display()));
    let partial = path.with_extension("json.partial");
    std::fs::write(
        &partial,
        serde_json::to_vec_pretty(&document).expect("JSON encodes"),
    )
    .map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)?;
    println!(
        "wrote {} series ({} buckets) since {} to {}",
        series.len(),
        buckets.len(),
        pitwall::format_utc(from_ms),
        path.display()
    );
    Ok(())
}

/// Plans `job` as the command line's admin, prints the plan and, with `confirm`, queues it;
/// the queued job's id.
async fn plan_and_queue(
    config: &Config,
    jobs: &pitwall::jobs::Jobs,
    job: pitwall::jobs::NewJob,
    confirm: Option<&str>,
) -> Result<Option<i64>, Error> {
    use pitwall::jobs::{Enqueued, kinds};
    let (plan, queued) = jobs
        .submit(
            &Actor::command_line(),
            &kinds::configured(config),
            job,
            confirm,
        )
        .await?;
    print_plan(&plan);
    Ok(match queued {
        Some(Enqueued::New(id)) => {
            println!("queued job {id}");
            Some(id)
        }
        Some(Enqueued::Duplicate(id)) => {
            println!("job {id} is already queued");
            Some(id)
        }
        None => {
            println!("not queued: add --confirm to queue it");
            None
        }
    })
}

/// Prints what a job would do.
fn print_plan(plan: &pitwall::jobs::Plan) {
    println!("plan: {}", plan.summary);
    for statement in &plan.statements {
        println!("  {statement}");
    }
}

/// Follows job `id` until it finishes, printing its progress; an error unless it succeeded.
async fn wait_for(jobs: &pitwall::jobs::Jobs, id: i64) -> Result<(), Error> {
    let mut shown = String::new();
    loop {
        let job = jobs.job(id).await?;
        let line = match &job.progress {
            Some(p) => match p.total {
                Some(t) => format!("job {id}: {} {}/{t} {}", job.state, p.done, p.phase),
                None => format!("job {id}: {} {} {}", job.state, p.done, p.phase),
            },
            None => format!("job {id}: {}", job.state),
        };
        if line != shown {
            println!("{line}");
            shown = line;
        }
        if job.state.is_finished() {
            if let Some(report) = &job.report {
                println!("job {id}: {report}");
            }
            return match job.state {
                JobState::Succeeded => Ok(()),
                state => Err(Error::Cache(format!(
                    "job {id} is {state}{}",
                    job.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                ))),
            };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn cache(command: CacheCommand, config: &Config) -> Result<(), Error> {
    use pitwall::jobs::NewJob;
    let on = |target: &str, kind: &str, parameters: serde_json::Value| NewJob {
        target: Some(target.to_owned()),
        ..NewJob::new(kind, parameters)
    };
    match command {
        CacheCommand::Stats { target, json } => cache_stats(config, target, json).await,
        CacheCommand::Tags {
            target,
            start,
            json,
        } => cache_tags(config, &target, &start, json).await,
        CacheCommand::Warm {
            recipe,
            all,
            dry_run,
            wait,
        } => {
            let recipes: Vec<_> = config
                .targets
                .iter()
                .flat_map(|t| t.recipes.iter().map(move |r| (t, r)))
                .filter(|(_, r)| all || recipe.as_deref() == Some(r.name.as_str()))
                .map(|(t, r)| {
                    on(
                        &t.name,
                        "warm_cache",
                        serde_json::json!({ "recipe": r.name }),
                    )
                })
                .collect();
            if recipes.is_empty() {
                return Err(Error::Cache(match recipe {
                    Some(r) => format!("no recipe is named `{r}` in the config"),
                    None => "the config declares no recipe".into(),
                }));
            }
            queue_jobs(config, recipes, dry_run, wait).await
        }
        CacheCommand::Invalidate {
            target,
            tag,
            pattern,
            cap,
            dry_run,
            wait,
        } => {
            let job = match (tag, pattern) {
                (Some(tag), _) => on(&target, "invalidate_tag", serde_json::json!({ "tag": tag })),
                (None, pattern) => {
                    let mut p = serde_json::json!({ "pattern": pattern.unwrap_or_default() });
                    if let Some(cap) = cap {
                        p["cap"] = cap.into();
                    }
                    on(&target, "invalidate_pattern", p)
                }
            };
            queue_jobs(config, vec![job], dry_run, wait).await
        }
        CacheCommand::Prune { target, tag, wait } => {
            let job = on(&target, "prune_tag", serde_json::json!({ "tag": tag }));
            queue_jobs(config, vec![job], false, wait).await
        }
    }
}

/// Plans each job, queues it unless `dry_run` (the command named the target, which confirms it),
/// and with `wait` follows each to its end.
async fn queue_jobs(
    config: &Config,
    queue: Vec<pitwall::jobs::NewJob>,
    dry_run: bool,
    wait: bool,
) -> Result<(), Error> {
    let jobs = pitwall::jobs::Jobs::new(
        pitwall::store::open(&config.data_dir).await?,
        config.jobs.backoff,
    );
    let mut queued = Vec::new();
    for job in queue {
        let confirm = (!dry_run).then(|| job.target.clone().unwrap_or_default());
        queued.extend(plan_and_queue(config, &jobs, job, confirm.as_deref()).await?);
    }
    if wait {
        for id in queued {
            wait_for(&jobs, id).await?;
        }
    }
    Ok(())
}

/// `pitwall cache tags`: the tag registry of one Redis target.
async fn cache_tags(config: &Config, target: &str, start: &str, json: bool) -> Result<(), Error> {
    use pitwall::Unit;
    let caches = pitwall::cache::inspect::Caches::new(&config.targets, config.telemetry.timeout);
    let registry = caches.tags(target, start).await.map_err(Error::Cache)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&registry).expect("registry encodes")
        );
        return Ok(());
    }
    if registry.tags.is_empty() {
        println!("no tag under {}{start}*", registry.prefix);
    }
    for t in &registry.tags {
        println!(
            "{}  ({}, {}): members {}, stale {}, memory {}",
            t.name,
            t.key,
            t.layout,
            Unit::Count.format(t.members as f64),
            t.stale_text(),
            Unit::Bytes.format_or_dash(t.memory_bytes.map(|b| b as f64)),
        );
    }
    if !registry.complete {
        println!("the scan stopped at its budget: more tags may exist (narrow them with --start)");
    }
    Ok(())
}

async fn cache_stats(config: &Config, target: Option<String>, json: bool) -> Result<(), Error> {
    use pitwall::Unit;
    use pitwall::cache::Setting;
    use pitwall::telemetry::metric;
    let targets: Vec<_> = config
        .targets
        .iter()
        .filter(|t| t.kind == pitwall::TargetKind::Redis)
        .filter(|t| target.as_deref().is_none_or(|n| t.name == n))
        .collect();
    if targets.is_empty() {
        return Err(Error::Cache(match target {
            Some(n) => format!("no Redis target is named {n:?}"),
            None => "no Redis target is configured".into(),
        }));
    }
    let timeout = config.telemetry.timeout;
    let mut all = serde_json::Map::new();
    let mut failed = Vec::new();
    for t in targets {
        let stats = match pitwall::cache::inspect::stats(t, Duration::from_secs(1), timeout).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e}", t.name);
                failed.push(t.name.clone());
                continue;
            }
        };
        if json {
            all.insert(
                t.name.clone(),
                serde_json::to_value(&stats).expect("stats encode"),
            );
            continue;
        }
        let value_of = |m: &str| stats.figures.get(m).copied();
        let figure = |m: &str, unit: Unit| unit.format_or_dash(value_of(m));
        let of_max = match metric::absent_means(metric::MEMORY_OF_MAX, value_of) {
            Some(means) => format!("maxmemory: {means}"),
            None => format!(
                "{} of maxmemory",
                figure(metric::MEMORY_OF_MAX, Unit::Percent)
            ),
        };
        println!("{} ({})", t.name, t.url);
        println!(
            "  hit rate {}, {}, memory {} ({of_max}), fragmentation {}",
            figure(metric::HIT_RATE, Unit::Percent),
            figure(metric::OPS, Unit::PerSecond),
            figure(metric::USED_MEMORY, Unit::Bytes),
            figure(metric::FRAGMENTATION, Unit::Plain),
        );
        println!(
            "  evictions {}, expirations {}, clients {}, rejected {}",
            figure(metric::EVICTIONS, Unit::PerSecond),
            figure(metric::EXPIRATIONS, Unit::PerSecond),
            figure(metric::CLIENTS, Unit::Count),
            figure(metric::REJECTED, Unit::PerSecond),
        );
        let d = stats.details;
        match d.server {
            Ok(s) => {
                println!(
                    "  Redis {} {} {}, policy {}{}",
                    s.version,
                    s.mode,
                    s.role,
                    s.maxmemory_policy,
                    s.eviction_warning()
                        .map(|w| format!(" (warning: {w})"))
                        .unwrap_or_default()
                );
            }
            Err(e) => println!("  server: {e}"),
        }
        match d.keyspace {
            Ok(list) => {
                for k in list {
                    println!(
                        "  db{}: {} keys, {} with a TTL, {} without",
                        k.db,
                        Unit::Count.format(k.keys as f64),
                        Unit::Count.format(k.expires as f64),
                        Unit::Count.format(k.persistent() as f64)
                    );
                }
            }
            Err(e) => println!("  keys: {e}"),
        }
        match d.slowlog {
            Ok(log) => {
                let threshold = match log.threshold_us {
                    Setting::Value(us) => format!("{us} µs"),
                    Setting::Unavailable(why) => why,
                };
                println!(
                    "  slow log: {} entries (slowlog-log-slower-than {threshold})",
                    log.entries.len()
                );
                for e in log.entries.iter().take(5) {
                    println!(
                        "    {:>10} {}",
                        Unit::Millis.format(e.duration_us as f64 / 1000.0),
                        e.command
                    );
                }
            }
            Err(e) => println!("  slow log: {e}"),
        }
        match d.latency {
            Ok(l) => {
                for e in &l.events {
                    println!(
                        "  latency {}: latest {} ms, largest {} ms",
                        e.event, e.latest_ms, e.max_ms
                    );
                }
                if let Setting::Value(0) = l.threshold_ms {
                    println!("  latency monitor off (latency-monitor-threshold 0)");
                }
            }
            Err(e) => println!("  latency: {e}"),
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("stats encode")
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Down(failed.len()))
    }
}

/// The address of PostgreSQL target `name` (default: the first).
fn pg_target<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> Result<&'a pitwall::secret::SecretUrl, Error> {
    let target = config
        .targets
        .iter()
        .filter(|t| t.kind == pitwall::TargetKind::Postgres)
        .find(|t| name.is_none_or(|n| t.name == n))
        .ok_or_else(|| {
            Error::Db(match name {
                Some(n) => format!("no PostgreSQL target is named {n:?}"),
                None => "no PostgreSQL target is configured".into(),
            })
        })?;
    Ok(&target.url)
}

async fn db(command: DbCommand, config: &Config) -> Result<(), Error> {
    use pitwall::postgres::{AdvisorSettings, advisor, catalog};
    let timeout = config.telemetry.timeout * 4;
    let slow = config.queries;
    match command {
        DbCommand::SlowQueries { target } => {
            let pool = pitwall::link::pg_pool(pg_target(config, target.as_deref())?, timeout)
                .map_err(Error::Db)?;
            let statements = catalog::top_statements(&pool, catalog::STATEMENT_LIMIT, timeout)
                .await
                .map_err(|e| Error::Db(e.to_string()))?;
            let slow: Vec<_> = statements
                .iter()
                .filter(|s| s.mean_ms >= slow.mean_ms && s.calls >= slow.calls)
                .collect();
            if slow.is_empty() {
                println!(
                    "no statement has a mean of {} ms or more over {} calls or more",
                    config.queries.mean_ms, config.queries.calls
                );
            }
            for s in slow {
                let text: String = s.query.split_whitespace().collect::<Vec<_>>().join(" ");
                println!(
                    "{:>10.2} ms mean {:>10} calls {:>12.0} ms total  {}",
                    s.mean_ms,
                    s.calls,
                    s.total_ms,
                    pitwall::format::truncate(&text, 200)
                );
            }
        }
        DbCommand::SuggestIndexes { target, json } => {
            let pool = pitwall::link::pg_pool(pg_target(config, target.as_deref())?, timeout)
                .map_err(Error::Db)?;
            let settings = AdvisorSettings {
                min_mean_ms: slow.mean_ms,
                min_calls: slow.calls,
                ..Default::default()
            };
            let advice = advisor::suggest(&pool, &settings, timeout)
                .await
                .map_err(|e| Error::Db(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&advice).expect("advice encodes")
                );
                return Ok(());
            }
            if advice.suggestions.is_empty() {
                println!("no index to suggest");
            }
            for s in &advice.suggestions {
                println!("{};", s.statement);
                for r in &s.reasoning {
                    println!("  - {r}");
                }
            }
            for s in &advice.statements {
                let text: String = s
                    .statement
                    .query
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                println!(
                    "# {}: {}",
                    pitwall::format::truncate(&text, 120),
                    s.verdict.summary()
                );
            }
        }
        DbCommand::CreateIndex {
            target,
            table,
            columns,
            method,
            unique,
            predicate,
            name,
            confirm,
        } => {
            let mut params =
                serde_json::json!({ "table": table, "columns": columns, "unique": unique });
            for (key, value) in [("method", method), ("where", predicate), ("name", name)] {
                if let Some(v) = value {
                    params[key] = v.into();
                }
            }
            submit_job(config, "create_index", &target, params, confirm).await?;
        }
        DbCommand::Vacuum {
            target,
            table,
            analyze,
            freeze,
            full,
            confirm,
        } => {
            let mut params =
                serde_json::json!({ "analyze": analyze, "freeze": freeze, "full": full });
            if let Some(t) = table {
                params["table"] = t.into();
            }
            submit_job(config, "vacuum", &target, params, confirm).await?;
        }
    }
    Ok(())
}

/// Plans job `kind` on `target` as the command line's admin, and queues it with `confirm`.
async fn submit_job(
    config: &Config,
    kind: &str,
    target: &str,
    parameters: serde_json::Value,
    confirm: Option<String>,
) -> Result<(), Error> {
    jobs(
        JobsCommand::Start {
            kind: kind.to_owned(),
            params: parameters.to_string(),
            target: Some(target.to_owned()),
            priority: Priority::Normal,
            attempts: 1,
            confirm,
        },
        config,
    )
    .await
}

async fn peek(config: &Config, broker: &str, queue: &str, count: usize) -> Result<(), Error> {
    let brokers = pitwall::queues::Brokers::new(&config.targets, config.telemetry.timeout);
    let messages = brokers.peek(broker, queue, count).await?;
    if messages.is_empty() {
        println!("{queue} on {broker} is empty");
    }
    for (i, m) in messages.iter().enumerate() {
        println!(
            "{:>3}  {:<40} {:<36} priority {} retries {}  {} {}",
            i + 1,
            m.task,
            m.id,
            m.priority,
            m.retries,
            m.args,
            m.kwargs
        );
    }
    Ok(())
}

async fn status(config: &Config, console: Option<SocketAddr>) -> Result<(), Error> {
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
    let console = console.unwrap_or(config.listen);
    let critical = match console_alerts(console, config.metrics.token.as_deref(), timeout).await {
        Ok(alerts) => {
            let firing = alerts.iter().filter(|a| a.state == "firing").count();
            println!(
                "alerts of the console at {console}: {firing} firing, {} other active",
                alerts.len() - firing
            );
            for a in &alerts {
                println!(
                    "  {:<9} {:<9} {:<28} {}{}",
                    a.state,
                    a.severity,
                    a.rule,
                    a.target,
                    if a.silenced { " (silenced)" } else { "" }
                );
            }
            alerts
                .iter()
                .filter(|a| a.state == "firing" && a.severity == "critical" && !a.silenced)
                .count()
        }
        Err(reason) => {
            println!("alerts: {reason}");
            0
        }
    };
    match (down, critical) {
        (0, 0) => Ok(()),
        (0, n) => Err(Error::Critical(n)),
        (n, _) => Err(Error::Down(n)),
    }
}

/// An active alert as `/metrics` reports it.
struct ActiveAlert {
    rule: String,
    target: String,
    state: String,
    severity: String,
    silenced: bool,
}

/// The active alerts of the console at `addr`, read from its `/metrics` (plain HTTP on the
/// console's own address; the bearer token when configured), most urgent first.
async fn console_alerts(
    addr: SocketAddr,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Vec<ActiveAlert>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        stream
            .write_all(
                format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(timeout.max(Duration::from_secs(2)), ask)
        .await
        .map_err(|_| format!("the console at {addr} did not answer in time"))?
        .map_err(|e| format!("no console answers at {addr} ({e}); start `pitwall serve`"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("the console at {addr} sent no HTTP response"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!(
            "the console at {addr} answered /metrics with {status}{}",
            if status == "401" {
                " (set [metrics] token to the console's)"
            } else {
                ""
            }
        ));
    }
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| format!("the console's /metrics could not be read: {e}"))?;
    let label = |s: &prometheus_parse::Sample, k: &str| s.labels.get(k).unwrap_or("").to_owned();
    let mut alerts: Vec<ActiveAlert> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "pitwall_alert")
        .map(|s| ActiveAlert {
            rule: label(s, "rule"),
            target: label(s, "target"),
            state: label(s, "state"),
            severity: label(s, "severity"),
            silenced: label(s, "silenced") == "true",
        })
        .collect();
    let rank = |a: &ActiveAlert| {
        (
            a.state != "firing",
            a.severity != "critical",
            a.rule.clone(),
            a.target.clone(),
        )
    };
    alerts.sort_by_key(rank);
    Ok(alerts)
}
