//! Recommendations for the console's machine, from the latest host figures.

use pitwall::telemetry::{Family, Snapshot, Thresholds, metric};

/// What to do about each resource past its threshold.
pub fn advise(s: &Snapshot, t: &Thresholds) -> Vec<String> {
    let Some(host) = s.reading("host", Family::Host) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut check = |m: &str, limit: f64, what: &str, todo: &str| {
        if let Some(v) = host.value(m).filter(|v| *v > limit) {
            out.push(format!("{what} at {v:.0} % (threshold {limit} %): {todo}"));
        }
    };
    check(
        metric::CPU,
        t.cpu_pct,
        "CPU",
        "find the busiest processes (top, sorted by CPU); for the console itself, lengthen \
         [telemetry] interval_ms or look at the open streams below.",
    );
    check(
        metric::MEMORY,
        t.memory_pct,
        "Memory",
        "find what holds it (ps sorted by RSS); leave room for the page cache when sizing \
         PostgreSQL shared_buffers and Redis maxmemory on this machine.",
    );
    check(
        metric::DISK,
        t.disk_pct,
        "Disk space",
        "the console's data directory is on this file system: free space or move data_dir; \
         PostgreSQL and Redis on the same disk stop writing when it is full.",
    );
    out
}

#[cfg(test)]
mod tests {
    use pitwall::telemetry::{Health, Reading};

    use super::*;

    #[test]
    fn advises_only_past_the_threshold() {
        let host = |cpu: f64, mem: f64, disk: f64| Snapshot {
            seq: 1,
            readings: vec![Reading {
                target: "host".into(),
                family: Family::Host,
                health: Health::Ok,
                since_ms: 0,
                at_ms: 1,
                values: vec![
                    (metric::CPU.into(), cpu),
                    (metric::MEMORY.into(), mem),
                    (metric::DISK.into(), disk),
                ],
            }],
        };
        let t = Thresholds::default();
        assert!(advise(&host(10.0, 50.0, 50.0), &t).is_empty());
        let advice = advise(&host(95.0, 85.0, 50.0), &t);
        assert_eq!(advice.len(), 2);
        assert!(
            advice[0].starts_with("CPU at 95 % (threshold 70 %)"),
            "{advice:?}"
        );
        assert!(
            advice[1].starts_with("Memory at 85 % (threshold 80 %)"),
            "{advice:?}"
        );
        assert!(advise(&Snapshot::default(), &t).is_empty());
    }
}
