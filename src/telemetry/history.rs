//! Downsampled history: every completed bucket (default one minute) of every series is saved to
//! the console's store with its min, avg, max and last, and kept for the retention (default
//! seven days), so charts survive a restart and reach back past the in-memory live window.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::{Point, Ring};
use crate::status::now_ms;
use crate::store::{Bucket, Store};

/// How history is downsampled and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySettings {
    /// Width of a bucket.
    pub bucket: Duration,
    /// How long buckets are kept.
    pub retention: Duration,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            bucket: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Summarises the points of the complete buckets in `[from_ms, until_ms)`; buckets are aligned to
/// multiples of `width_ms` and only those that ended by `until_ms` are returned.
pub fn downsample(
    series: &str,
    points: &[Point],
    width_ms: u64,
    from_ms: u64,
    until_ms: u64,
) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for &(t, v) in points
        .iter()
        .filter(|(t, _)| *t >= from_ms && *t < until_ms)
    {
        let start = t - t % width_ms;
        if start + width_ms > until_ms {
            continue;
        }
        match out.last_mut() {
            Some(b) if b.start_ms == start => {
                b.min = b.min.min(v);
                b.max = b.max.max(v);
                b.avg += (v - b.avg) / f64::from(b.samples + 1);
                b.last = v;
                b.samples += 1;
            }
            _ => out.push(Bucket {
                series: series.to_owned(),
                start_ms: start,
                width_ms,
                min: v,
                avg: v,
                max: v,
                last: v,
                samples: 1,
            }),
        }
    }
    out
}

/// Saves completed buckets every bucket width and prunes old ones every hour, until the rings
/// are gone (the hub was dropped).
pub(super) async fn keep(
    rings: Weak<RwLock<HashMap<String, Ring>>>,
    store: Arc<dyn Store>,
    settings: HistorySettings,
) {
    let width = settings.bucket.as_millis() as u64;
    let mut flushed_until = now_ms() - now_ms() % width;
    let mut last_prune = 0u64;
    let mut ticker = tokio::time::interval(settings.bucket);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(rings) = rings.upgrade() else { return };
        let now = now_ms();
        let until = now - now % width;
        if until <= flushed_until {
            continue;
        }
        let buckets: Vec<Bucket> = {
            let rings = rings.read().unwrap_or_else(|e| e.into_inner());
            rings
                .iter()
                .flat_map(|(key, ring)| {
                    downsample(key, &ring.since(flushed_until), width, flushed_until, until)
                })
                .collect()
        };
        drop(rings);
        match store.save_buckets(&buckets).await {
            Ok(()) => flushed_until = until,
            Err(e) => tracing::error!("saving metric history: {e}"),
        }
        if now.saturating_sub(last_prune) >= 3_600_000 {
            last_prune = now;
            let before = now.saturating_sub(settings.retention.as_millis() as u64);
            if let Err(e) = store.prune_buckets(before).await {
                tracing::error!("pruning metric history: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_aligned_buckets_with_min_avg_max_last() {
        let points = [
            (60_000, 1.0),
            (61_000, 3.0),
            (119_999, 2.0),
            (120_000, 10.0),
            (121_000, 20.0),
        ];
        let b = downsample("s", &points, 60_000, 0, 150_000);
        assert_eq!(
            b.len(),
            1,
            "the bucket starting at 120 s is not complete yet"
        );
        let b = &b[0];
        assert_eq!(
            (b.start_ms, b.min, b.max, b.last, b.samples),
            (60_000, 1.0, 3.0, 2.0, 3)
        );
        assert!((b.avg - 2.0).abs() < 1e-12);
        let later = downsample("s", &points, 60_000, 120_000, 180_000);
        assert_eq!(later.len(), 1);
        assert_eq!(
            (later[0].min, later[0].avg, later[0].max),
            (10.0, 15.0, 20.0)
        );
    }
}
