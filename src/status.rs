//! The status board: every target checked on its own schedule, the latest result shared by all
//! readers (pages, `/health`), so viewers never add load to the targets.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};

use crate::config::Target;
use crate::probe::{Probe, Prober};
use crate::{TargetState, TargetStatus};

/// How often and how patiently targets are checked.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Time between two checks of the same target.
    pub interval: Duration,
    /// How long one check may take before the target counts as down.
    pub timeout: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        }
    }
}

/// A cheap, cloneable view of the latest status of every target.
#[derive(Clone)]
pub struct StatusBoard {
    rx: watch::Receiver<Arc<Vec<TargetStatus>>>,
    recheck: Arc<Notify>,
}

impl StatusBoard {
    /// Starts one checking task per target and returns the board they report to.
    /// The tasks stop when every clone of the board is dropped.
    pub fn spawn(targets: &[Target], schedule: Schedule) -> Self {
        let initial: Vec<TargetStatus> = targets
            .iter()
            .map(|t| TargetStatus {
                name: t.name.clone(),
                kind: t.kind,
                address: t.url.redacted().to_owned(),
                state: TargetState::Unknown,
                version: None,
                latency_ms: None,
                error: None,
                checked_at_ms: 0,
                since_ms: now_ms(),
            })
            .collect();
        let (tx, rx) = watch::channel(Arc::new(initial));
        let recheck = Arc::new(Notify::new());
        for (index, target) in targets.iter().enumerate() {
            let tx = tx.clone();
            let prober = Prober::new(target, schedule.timeout);
            tokio::spawn(watch_target(
                index,
                prober,
                schedule.interval,
                tx,
                recheck.clone(),
            ));
        }
        Self { rx, recheck }
    }

    /// Asks every target to be checked now rather than at its next tick.
    pub fn recheck(&self) {
        self.recheck.notify_waiters();
    }

    /// The latest status of every target, in configuration order.
    pub fn snapshot(&self) -> Arc<Vec<TargetStatus>> {
        self.rx.borrow().clone()
    }

    /// Notified of every change to the statuses.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<TargetStatus>>> {
        self.rx.clone()
    }
}

async fn watch_target(
    index: usize,
    prober: Result<Prober, String>,
    interval: Duration,
    tx: watch::Sender<Arc<Vec<TargetStatus>>>,
    recheck: Arc<Notify>,
) {
    let mut prober = match prober {
        Ok(p) => p,
        Err(reason) => {
            update(&tx, index, Probe::Down { reason });
            return;
        }
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = recheck.notified() => ticker.reset(),
        }
        if tx.is_closed() {
            return;
        }
        let probe = prober.check().await;
        update(&tx, index, probe);
    }
}

fn update(tx: &watch::Sender<Arc<Vec<TargetStatus>>>, index: usize, probe: Probe) {
    let now = now_ms();
    tx.send_modify(|all| {
        let s = &mut Arc::make_mut(all)[index];
        let state = match &probe {
            Probe::Up { .. } => TargetState::Up,
            Probe::Down { .. } => TargetState::Down,
        };
        if s.state != state {
            s.since_ms = now;
            match state {
                TargetState::Down => {
                    tracing::warn!(target_name = %s.name, "target down: {probe:?}")
                }
                _ => tracing::info!(target_name = %s.name, "target up"),
            }
        }
        s.state = state;
        s.checked_at_ms = now;
        match probe {
            Probe::Up { version, latency } => {
                s.version = Some(version);
                s.latency_ms = Some(latency.as_secs_f64() * 1000.0);
                s.error = None;
            }
            Probe::Down { reason } => {
                s.latency_ms = None;
                s.error = Some(reason);
            }
        }
    });
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
