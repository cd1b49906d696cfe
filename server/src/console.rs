//! Wiring: the store, the status board, the collectors, the alert rules and the HTTP router,
//! bound to the listen address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pitwall::access::{Access, Bootstrap};
use pitwall::alerts::{Alerts, OnCall};
use pitwall::cache::inspect::Caches;
use pitwall::config::Config;
use pitwall::config::HttpConfig;
use pitwall::embed::Embeds;
use pitwall::jobs::{Jobs, Runner, RunnerSettings, kinds};
use pitwall::postgres::workload::Workloads;
use pitwall::queues::Brokers;
use pitwall::status::{Schedule, StatusBoard};
use pitwall::store::{self, Store};
use pitwall::telemetry::{Telemetry, collect};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use crate::http::metrics::Metrics;
use crate::http::{self, AppState};
use crate::site::{self, Site};

/// Why the console could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Site(#[from] site::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("creating the first admin: {0}")]
    Bootstrap(#[from] pitwall::access::Error),
    #[error("loading the embed token key: {0}")]
    Embeds(#[from] pitwall::embed::Error),
}

/// How the console makes sure an admin can sign in.
pub enum AdminSetup {
    /// With no user yet: create `admin` from this password (`PITWALL_ADMIN_PASSWORD`), or print
    /// a one-time setup link.
    FirstRun(Option<String>),
    /// The demo: `admin` gets this password, whatever the store held before.
    Demo(String),
}

/// A console that is bound and ready to serve.
pub struct Console {
    listener: TcpListener,
    state: AppState,
    /// Connection limits.
    http: HttpConfig,
    stopping: watch::Sender<bool>,
    /// This console's job workers.
    runner: Runner,
    /// Removes finished jobs past their retention.
    pruner: tokio::task::JoinHandle<()>,
    /// Queues the jobs that run on a schedule (warming recipes with `every_secs`).
    scheduler: tokio::task::JoinHandle<()>,
    /// Ends the live streams of sessions that ended.
    stream_watch: tokio::task::JoinHandle<()>,
}

/// Every hour, removes the finished jobs older than `retention`.
async fn prune_jobs(jobs: Jobs, retention: Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let before = pitwall::status::now_ms().saturating_sub(retention.as_millis() as u64);
        match jobs.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} finished job(s) past their retention"),
            Err(e) => tracing::warn!("pruning jobs: {e}"),
        }
    }
}

impl Console {
    /// Opens the store (applying migrations), makes sure an admin can sign in, starts checking the
    /// targets and binds the address.
    pub async fn start(config: Config, admin: AdminSetup) -> Result<Self, Error> {
        let site = Site::locate(config.site_dir.as_deref())?;
        let store: Arc<dyn Store> = store::open(&config.data_dir).await?;
        let access = Access::new(store.clone(), config.access.settings)
            .with_streams_per_session(config.http.streams_per_session);
        let embeds = Embeds::open(store.clone()).await?;
        let jobs = Jobs::new(store.clone(), config.jobs.backoff);
        let kinds = kinds::configured(&config);
        let runner = Runner::spawn(
            jobs.clone(),
            kinds.clone(),
            RunnerSettings {
                name: format!("pitwall-{}", std::process::id()),
                workers: config.jobs.workers,
                lease: config.jobs.lease,
                poll: Duration::from_millis(500),
                per_target: config.jobs.per_target,
            },
        );
        let pruner = tokio::spawn(prune_jobs(jobs.clone(), config.jobs.retention));
        let scheduler = tokio::spawn(pitwall::jobs::schedule::run(
            jobs.clone(),
            kinds.clone(),
            pitwall::cache::warm::schedules(&config.targets),
        ));
        let bootstrap = match admin {
            AdminSetup::FirstRun(password) => access.bootstrap(password.as_deref()).await?,
            AdminSetup::Demo(password) => {
                access.reset_admin(&password).await?;
                Bootstrap::Ready
            }
        };
        let board = StatusBoard::spawn(&config.targets, Schedule::default());
        let streams = Arc::new(AtomicUsize::new(0));
        let intervals = config.telemetry;
        let collectors = collect::for_targets(
            &config.targets,
            &config.data_dir,
            streams.clone(),
            intervals.live,
            intervals.slow,
            intervals.timeout,
        );
        let telemetry = Telemetry::spawn(collectors, intervals.timeout, streams)
            .persist(store.clone(), config.history);
        let alerts = Alerts::spawn(config.alerts.clone(), telemetry.clone(), board.clone());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        tracing::info!(%addr, site = %site.root.display(), data = %config.data_dir.display(), targets = config.targets.len(), "console ready");
        match bootstrap {
            Bootstrap::Ready => {}
            Bootstrap::AdminCreated => {
                println!("Created the admin user `admin` from PITWALL_ADMIN_PASSWORD.")
            }
            Bootstrap::SetupToken(token) => {
                println!("No user exists yet. Create the first admin (this link works once):");
                println!("  http://{}/setup?token={token}", reachable(addr));
            }
        }
        let mut notify = config.notify;
        if notify.external_url.is_empty() {
            notify.external_url = format!("http://{}", reachable(addr));
        }
        let oncall = OnCall::spawn(store.clone(), alerts.clone(), &config.alerts, notify);
        let trusted_proxy = config.access.trusted_proxy.map(Arc::new);
        for network in trusted_proxy.iter().flat_map(|p| p.wide_networks()) {
            tracing::warn!(
                %network,
                "access.trusted_proxy.proxies lists a wide network: every address in it is \
                 believed when it names a user or a client address; list the proxies' own addresses"
            );
        }
        let stopping = watch::Sender::new(false);
        let active_jobs = jobs.watch_active(Duration::from_millis(500));
        let metrics = Metrics::new(
            telemetry.clone(),
            board.clone(),
            active_jobs.clone(),
            alerts.clone(),
            oncall.clone(),
            config.metrics.token.clone(),
        );
        let stream_watch = tokio::spawn(access.clone().watch_streams(STREAM_CHECK));
        let state = AppState {
            leptos_options: site.leptos_options(addr),
            board,
            store,
            access,
            trusted_proxy,
            telemetry,
            thresholds: config.thresholds,
            embeds,
            embed_policy: Arc::new(config.embed),
            active_jobs: active_jobs.clone(),
            metrics,
            brokers: Brokers::new(&config.targets, config.telemetry.timeout),
            caches: Caches::new(&config.targets, config.telemetry.timeout),
            workloads: Workloads::spawn(
                &config.targets,
                config.telemetry.slow,
                config.telemetry.timeout,
                config.queries,
            ),
            jobs,
            kinds,
            alerts,
            oncall,
            stopping: stopping.subscribe(),
            hosts: config.http.hosts.clone().into(),
        };
        Ok(Self {
            listener,
            state,
            http: config.http,
            stopping,
            runner,
            pruner,
            scheduler,
            stream_watch,
        })
    }

    /// The URL people open.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}/", addr.port()),
            Ok(addr) => format!("http://{addr}/"),
            Err(_) => "(unknown address)".into(),
        }
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
    /// Live streams end when shutdown begins; requests still running after `SHUTDOWN_GRACE`
    /// are abandoned.
    pub async fn serve_until_shutdown(self) -> Result<(), Error> {
        let (runner, pruner, scheduler) = (self.runner, self.pruner, self.scheduler);
        let router = http::router(self.state);
        serve(self.listener, router, &self.http, self.stopping).await;
        // Jobs still running stop where they are; their leases run out and the next console
        // (or another one on the same store) takes them up.
        self.stream_watch.abort();
        pruner.abort();
        scheduler.abort();
        runner.stop().await;
        Ok(())
    }
}

/// Accepts connections until shutdown begins: at most `max_connections` at once (the next waits
/// to be accepted), each closed when it does not send a request's headers within
/// `header_timeout` (slowloris). At shutdown, lets the connections finish their requests.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    http: &HttpConfig,
    stopping: watch::Sender<bool>,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout);
    let max = u32::try_from(http.max_connections).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = match make_service.call(peer).await {
            Ok(service) => TowerToHyperService::new(service),
            Err(never) => match never {},
        };
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let mut stopping = stopping.subscribe();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(%peer, "connection closed: {e}");
                    }
                }
                _ = async { stopping.wait_for(|stopping| *stopping).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    // Every connection holds a slot until it closes: all slots back means all closed.
    let finished = slots.acquire_many(max);
    match tokio::time::timeout(SHUTDOWN_GRACE, finished).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}: stopping anyway")
        }
    }
}

/// How often the sessions holding live streams are checked against the store.
const STREAM_CHECK: Duration = Duration::from_secs(2);

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `addr` as a browser on this machine reaches it (loopback for an unspecified address).
fn reachable(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
