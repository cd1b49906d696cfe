//! The console's own machine and process, read from `/proc` (Linux) and `statvfs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Collector, Values};
use crate::telemetry::rate::share;
use crate::telemetry::{Counters, Family, metric};

/// The name the host and console readings carry as their target.
pub const HOST: &str = "host";
/// The name of the console's own process readings.
pub const CONSOLE: &str = "console";

/// CPU, memory, swap, load, disk space and I/O, and network of the machine.
pub struct HostCollector {
    data_dir: PathBuf,
    counters: Counters,
}

impl HostCollector {
    /// A collector measuring the file system that holds `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            counters: Counters::default(),
        }
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// `(busy, total)` jiffies of all CPUs from `/proc/stat`.
fn cpu_times(stat: &str) -> Option<(f64, f64)> {
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0.0);
    Some((total - idle, total))
}

/// A field of `/proc/meminfo` in bytes.
fn meminfo(text: &str, field: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib * 1024.0)
}

/// Received and sent bytes of every interface but loopback, from `/proc/net/dev`.
fn network(text: &str) -> (f64, f64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let v: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*v.first()?, *v.get(8)?))
        })
        .fold((0.0, 0.0), |(r, t), (a, b)| (r + a, t + b))
}

/// Bytes read and written by whole block devices (those in `/sys/block`), from `/proc/diskstats`.
fn disk_io(text: &str) -> (f64, f64) {
    let devices: Vec<String> = std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
        .collect();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = *f.get(2)?;
            if !devices.iter().any(|d| d == name) {
                return None;
            }
            Some((
                f.get(5)?.parse::<f64>().ok()? * 512.0,
                f.get(9)?.parse::<f64>().ok()? * 512.0,
            ))
        })
        .fold((0.0, 0.0), |(r, w), (a, b)| (r + a, w + b))
}

#[async_trait::async_trait]
impl Collector for HostCollector {
    fn target(&self) -> &str {
        HOST
    }

    fn family(&self) -> Family {
        Family::Host
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        let c = &mut self.counters;
        let mut out = Values::new();
        let (busy, total) =
            cpu_times(&read("/proc/stat")?).ok_or("/proc/stat: unexpected format")?;
        if let (Some(db), Some(dt)) = (
            c.delta("cpu_busy", busy, now_ms),
            c.delta("cpu_total", total, now_ms),
        ) {
            out.push((metric::CPU.into(), share(db, dt - db).unwrap_or(0.0)));
        }
        let mem = read("/proc/meminfo")?;
        if let (Some(t), Some(a)) = (meminfo(&mem, "MemTotal"), meminfo(&mem, "MemAvailable")) {
            out.push((metric::MEMORY.into(), share(t - a, a).unwrap_or(0.0)));
        }
        if let (Some(t), Some(f)) = (meminfo(&mem, "SwapTotal"), meminfo(&mem, "SwapFree")) {
            out.push((metric::SWAP.into(), share(t - f, f).unwrap_or(0.0)));
        }
        if let Some(load) = read("/proc/loadavg")?
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
        {
            out.push((metric::LOAD1.into(), load));
        }
        if let Ok(fs) = nix::sys::statvfs::statvfs(&self.data_dir) {
            let size = fs.blocks() as f64 * fs.fragment_size() as f64;
            let free = fs.blocks_available() as f64 * fs.fragment_size() as f64;
            if size > 0.0 {
                out.push((metric::DISK.into(), (size - free) * 100.0 / size));
            }
        }
        let (rx, tx) = network(&read("/proc/net/dev")?);
        let (r, w) = disk_io(&read("/proc/diskstats")?);
        for (name, value, key) in [
            (metric::NET_RX, rx, "rx"),
            (metric::NET_TX, tx, "tx"),
            (metric::DISK_READ, r, "read"),
            (metric::DISK_WRITE, w, "write"),
        ] {
            if let Some(rate) = c.rate(key, value, now_ms) {
                out.push((name.into(), rate));
            }
        }
        Ok(out)
    }
}

/// The console's own resident memory, CPU, open streams, and open connections to each target
/// endpoint.
pub struct ConsoleCollector {
    streams: Arc<AtomicUsize>,
    counters: Counters,
    endpoints: Vec<Endpoint>,
}

/// A `host:port` the console connects to, with its addresses once resolved.
struct Endpoint {
    host: String,
    port: u16,
    resolved: Vec<std::net::SocketAddr>,
}

impl ConsoleCollector {
    /// A collector reporting `streams` as the number of open live streams, and the connections
    /// open to each `(host, port)` in `endpoints` (duplicates are counted once).
    pub fn new(streams: Arc<AtomicUsize>, endpoints: &[(String, u16)]) -> Self {
        let mut unique: Vec<(String, u16)> = endpoints.to_vec();
        unique.sort();
        unique.dedup();
        Self {
            streams,
            counters: Counters::default(),
            endpoints: unique
                .into_iter()
                .map(|(host, port)| Endpoint {
                    host,
                    port,
                    resolved: Vec::new(),
                })
                .collect(),
        }
    }

    async fn connections(&mut self, out: &mut Values) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Ok(());
        }
        let open = super::sockets::established()?;
        for e in &mut self.endpoints {
            if e.resolved.is_empty() {
                // Resolved once; a name that does not resolve yet is tried again next round.
                if let Ok(addrs) = tokio::net::lookup_host((e.host.as_str(), e.port)).await {
                    e.resolved = addrs.collect();
                }
            }
            let n: u32 = e.resolved.iter().filter_map(|a| open.get(a)).sum();
            out.push((
                metric::connections_to(&format!("{}:{}", e.host, e.port)),
                f64::from(n),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Collector for ConsoleCollector {
    fn target(&self) -> &str {
        CONSOLE
    }

    fn family(&self) -> Family {
        Family::Console
    }

    async fn collect(&mut self, now_ms: u64) -> Result<Values, String> {
        let mut out = Values::new();
        let status = read("/proc/self/status")?;
        if let Some(rss) = meminfo(&status, "VmRSS") {
            out.push((metric::RSS.into(), rss));
        }
        // utime and stime, in clock ticks (100 per second on Linux), after the command name.
        let stat = read("/proc/self/stat")?;
        let ticks: f64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0);
        if let Some(rate) = self.counters.rate("cpu_ticks", ticks, now_ms) {
            out.push((metric::PROCESS_CPU.into(), rate));
        }
        out.push((
            metric::STREAMS.into(),
            self.streams.load(Ordering::Relaxed) as f64,
        ));
        self.connections(&mut out).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            cpu_times("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            Some((20.0, 100.0))
        );
        let mem = "MemTotal:       1000 kB\nMemAvailable:    250 kB\n";
        assert_eq!(meminfo(mem, "MemTotal"), Some(1_024_000.0));
        assert_eq!(meminfo(mem, "SwapTotal"), None);
        let net = "Inter-|\n face |\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 300 3 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n";
        assert_eq!(network(net), (300.0, 700.0));
    }

    #[tokio::test]
    async fn measures_this_machine_and_process() {
        let mut host = HostCollector::new(Path::new("/"));
        host.collect(1_000).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let v = host.collect(1_050).await.unwrap();
        let get = |m: &str| v.iter().find(|(k, _)| k == m).map(|(_, x)| *x);
        for m in [
            metric::CPU,
            metric::MEMORY,
            metric::LOAD1,
            metric::DISK,
            metric::NET_RX,
        ] {
            assert!(get(m).is_some_and(|x| x >= 0.0), "{m} missing: {v:?}");
        }
        assert!(get(metric::MEMORY).unwrap() <= 100.0);
        let streams = Arc::new(AtomicUsize::new(3));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _open = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let endpoints = [
            ("127.0.0.1".to_owned(), port),
            ("127.0.0.1".to_owned(), port),
        ];
        let v = ConsoleCollector::new(streams, &endpoints)
            .collect(1_000)
            .await
            .unwrap();
        let key = metric::connections_to(&format!("127.0.0.1:{port}"));
        assert_eq!(
            v.iter().filter(|(k, _)| *k == key).collect::<Vec<_>>(),
            [&(key.clone(), 1.0)],
            "one endpoint, counted once: {v:?}"
        );
        assert!(
            v.iter().any(|(k, x)| k == metric::RSS && *x > 1_000_000.0),
            "{v:?}"
        );
        assert!(v.contains(&(metric::STREAMS.to_owned(), 3.0)));
    }
}
