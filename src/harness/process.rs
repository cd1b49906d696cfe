//! A server child process in its own process group.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Error, Result, io};

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed again).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(io("binding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("reading the bound port"))?
        .port())
}

/// A running server process, leader of its own process group.
pub struct ServiceProcess {
    service: &'static str,
    child: Child,
}

impl ServiceProcess {
    /// Spawns `command` in a new process group with stdout and stderr appended to `log`.
    pub fn spawn(service: &'static str, mut command: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(format!("opening {}", log.display())))?;
        let err = out.try_clone().map_err(io("duplicating the log handle"))?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // If the process that owns the server dies without cleaning up (SIGKILL), the server
        // goes with it rather than lingering. (The signal follows the spawning thread, which for
        // a tokio worker or a test thread outlives the server.)
        // SAFETY: prctl is async-signal-safe and touches nothing shared with the parent.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = command.spawn().map_err(io(format!("starting {service}")))?;
        Ok(Self { service, child })
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the whole process group and to every descendant: PostgreSQL backends
    /// start sessions of their own, so the group alone would miss them.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let leader = self.child.id() as i32;
        killpg(Pid::from_raw(leader), signal).map_err(|source| Error::Signal {
            service: self.service,
            source,
        })?;
        for pid in descendants(leader) {
            // A descendant may exit meanwhile; that is fine.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        Ok(())
    }

    /// Sends `signal`, waits up to `grace` for the process to exit, then kills the group.
    pub fn shut_down(&mut self, signal: Signal, grace: Duration) {
        let _ = self.signal(Signal::SIGCONT);
        let _ = self.signal(signal);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a stuck leader, orphaned workers) goes now.
        let _ = self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Every process below `root`, from the parent ids in `/proc/<pid>/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            found.push(*pid);
            frontier.push(*pid);
        }
    }
    found
}

/// A server that may be running or stopped: starts, stops, pauses and resumes its process, and
/// kills it when dropped.
pub struct Slot {
    service: &'static str,
    /// The signal for an orderly stop, and how long to wait for it.
    stop: (Signal, Duration),
    /// The signal when the handle is dropped (the server is thrown away).
    drop: Signal,
    process: Option<ServiceProcess>,
}

impl Slot {
    /// An empty slot for `service`.
    pub fn new(service: &'static str, stop: (Signal, Duration), drop: Signal) -> Self {
        Self {
            service,
            stop,
            drop,
            process: None,
        }
    }

    /// Holds a started process.
    pub fn fill(&mut self, process: ServiceProcess) {
        self.process = Some(process);
    }

    /// Stops the process in an orderly way, if it runs.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.shut_down(self.stop.0, self.stop.1);
        }
    }

    /// Freezes the whole process group (`SIGSTOP`).
    pub fn pause(&self) -> Result<()> {
        self.running()?.signal(Signal::SIGSTOP)
    }

    /// Thaws it (`SIGCONT`).
    pub fn resume(&self) -> Result<()> {
        self.running()?.signal(Signal::SIGCONT)
    }

    fn running(&self) -> Result<&ServiceProcess> {
        self.process.as_ref().ok_or_else(|| Error::Start {
            service: self.service,
            reason: "it is stopped".into(),
            log: String::new(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.shut_down(self.drop, Duration::from_secs(5));
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `ready` every 50 ms until it succeeds, the process exits, or `timeout` passes.
pub async fn wait_ready<F, Fut>(
    process: &mut ServiceProcess,
    log: &Path,
    timeout: Duration,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        let reason = if !process.is_running() {
            "the process exited".to_owned()
        } else if Instant::now() > deadline {
            format!("not ready after {timeout:?}")
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        return Err(Error::Start {
            service: process.service,
            reason,
            log: log_tail(log, 20),
        });
    }
}
