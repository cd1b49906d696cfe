//! The hub: runs every collector on its own schedule, keeps one ring per series, and publishes
//! one snapshot that every reader shares (a `watch` channel: a slow reader skips to the newest).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::collect::{Collector, Scheduled};
use super::history::{self, HistorySettings};
use super::{Family, Health, Point, Reading, Ring, Snapshot, series_key};
use crate::link::no_answer;
use crate::status::now_ms;
use crate::store::Store;

/// How often families are collected and how long one round may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// Cheap families (server counters, host): default 2 s.
    pub live: Duration,
    /// Expensive families (`pg_stat_statements`): default 10 s.
    pub slow: Duration,
    /// One round's limit, after which the family reads stale: default 1.5 s.
    pub timeout: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            live: Duration::from_secs(2),
            slow: Duration::from_secs(10),
            timeout: Duration::from_millis(1_500),
        }
    }
}

/// How long the rings keep points at full resolution.
const LIVE_WINDOW: Duration = Duration::from_secs(3_600);

/// Every series' ring, by [`series_key`].
pub type Rings = HashMap<String, Ring>;

/// Shared access to the collectors' results. Cloning is cheap.
#[derive(Clone)]
pub struct Telemetry {
    rx: watch::Receiver<Arc<Snapshot>>,
    rings: Arc<RwLock<Rings>>,
    streams: Arc<AtomicUsize>,
    persisted: Option<(Arc<dyn Store>, HistorySettings)>,
}

/// Counts an open stream while it lives.
pub struct StreamGuard(Arc<AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Telemetry {
    /// Starts every collector; `streams` is the counter the console collector reports. The tasks
    /// stop when every clone of the hub is dropped.
    pub fn spawn(collectors: Vec<Scheduled>, timeout: Duration, streams: Arc<AtomicUsize>) -> Self {
        let started = now_ms();
        let readings = collectors
            .iter()
            .map(|s| Reading {
                target: s.collector.target().to_owned(),
                family: s.collector.family(),
                health: Health::Pending,
                since_ms: started,
                at_ms: 0,
                values: Vec::new(),
            })
            .collect();
        let (tx, rx) = watch::channel(Arc::new(Snapshot { seq: 0, readings }));
        let rings = Arc::new(RwLock::new(HashMap::new()));
        for (index, scheduled) in collectors.into_iter().enumerate() {
            let capacity =
                (LIVE_WINDOW.as_millis() / scheduled.interval.as_millis().max(1)) as usize;
            tokio::spawn(run(
                index,
                scheduled,
                timeout,
                capacity,
                tx.clone(),
                rings.clone(),
            ));
        }
        Self {
            rx,
            rings,
            streams,
            persisted: None,
        }
    }

    /// Also keeps downsampled history in `store` (saved every bucket, pruned after the
    /// retention), and answers [`Telemetry::range`] from it beyond the live window.
    pub fn persist(mut self, store: Arc<dyn Store>, settings: HistorySettings) -> Self {
        tokio::spawn(history::keep(
            Arc::downgrade(&self.rings),
            store.clone(),
            settings,
        ));
        self.persisted = Some((store, settings));
        self
    }

    /// The points of one series since `since_ms`: the live window at full resolution, and before
    /// it (or after a restart) the stored buckets' averages.
    pub async fn range(
        &self,
        target: &str,
        family: Family,
        metric: &str,
        since_ms: u64,
    ) -> Vec<Point> {
        let live = self.history(target, family, metric, since_ms);
        let Some((store, settings)) = &self.persisted else {
            return live;
        };
        let live_from = live.first().map_or(u64::MAX, |p| p.0);
        if live_from <= since_ms + settings.bucket.as_millis() as u64 {
            return live;
        }
        let key = series_key(target, family, metric);
        let width = settings.bucket.as_millis() as u64;
        match store
            .buckets(&key, width, since_ms, live_from.min(now_ms()))
            .await
        {
            Ok(buckets) => {
                let mut points: Vec<Point> = buckets
                    .iter()
                    .map(|b| (b.start_ms, b.avg))
                    .filter(|p| p.0 < live_from)
                    .collect();
                points.extend(live);
                points
            }
            Err(e) => {
                tracing::error!("reading metric history: {e}");
                live
            }
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    /// A receiver that sees every new snapshot (or skips to the newest when slow).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    /// The points of one series at or after `since_ms`.
    pub fn history(&self, target: &str, family: Family, metric: &str, since_ms: u64) -> Vec<Point> {
        let rings = self.rings.read().unwrap_or_else(|e| e.into_inner());
        rings
            .get(&series_key(target, family, metric))
            .map_or_else(Vec::new, |r| r.since(since_ms))
    }

    /// Runs `f` on every series' ring at once (under the read lock: keep `f` short).
    pub fn read_rings<R>(&self, f: impl FnOnce(&Rings) -> R) -> R {
        f(&self.rings.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Registers an open stream until the guard is dropped.
    pub fn stream_opened(&self) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.streams.clone())
    }
}

async fn run(
    index: usize,
    scheduled: Scheduled,
    timeout: Duration,
    capacity: usize,
    tx: watch::Sender<Arc<Snapshot>>,
    rings: Arc<RwLock<Rings>>,
) {
    let Scheduled {
        mut collector,
        interval,
    } = scheduled;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if tx.is_closed() {
            return;
        }
        let now = now_ms();
        let (health, values) = match tokio::time::timeout(timeout, collector.collect(now)).await {
            Ok(Ok(values)) => (Health::Ok, Some(values)),
            Ok(Err(reason)) => (Health::Down { reason }, None),
            Err(_) => {
                collector.abandon();
                (
                    Health::Stale {
                        reason: no_answer(timeout),
                    },
                    None,
                )
            }
        };
        if let Some(values) = &values {
            record(&rings, collector.as_ref(), values, now, capacity);
        }
        publish(&tx, index, health, values, now);
    }
}

fn record(
    rings: &RwLock<Rings>,
    c: &dyn Collector,
    values: &[(String, f64)],
    now: u64,
    capacity: usize,
) {
    let mut rings = rings.write().unwrap_or_else(|e| e.into_inner());
    for (metric, value) in values {
        rings
            .entry(series_key(c.target(), c.family(), metric))
            .or_insert_with(|| Ring::new(capacity))
            .push((now, *value));
    }
}

fn publish(
    tx: &watch::Sender<Arc<Snapshot>>,
    index: usize,
    health: Health,
    values: Option<Vec<(String, f64)>>,
    now: u64,
) {
    tx.send_modify(|snapshot| {
        let s = Arc::make_mut(snapshot);
        s.seq += 1;
        let r = &mut s.readings[index];
        if std::mem::discriminant(&r.health) != std::mem::discriminant(&health) {
            r.since_ms = now;
            match &health {
                Health::Down { reason } | Health::Stale { reason } => {
                    tracing::warn!(target_name = %r.target, family = r.family.as_str(), "collection failed: {reason}")
                }
                _ => tracing::info!(target_name = %r.target, family = r.family.as_str(), "collection ok"),
            }
        }
        r.health = health;
        if let Some(values) = values {
            r.values = values;
            r.at_ms = now;
        }
    });
}
