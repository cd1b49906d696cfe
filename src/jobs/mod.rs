//! Maintenance jobs: what a job is, its priority, state and progress (shared with the browser),
//! and, behind the `services` feature, the durable engine that queues them in the console's store
//! and the workers that run them.
//!
//! A job is enqueued with a priority, a time to run at, a number of attempts and an optional
//! idempotency key; a worker claims it under a lease it keeps renewing; a failed attempt is
//! retried after an exponential backoff until the attempts run out (then it is dead-lettered
//! with its last error); a job whose worker stopped renewing its lease is noticed and retried or,
//! with no attempt left, marked interrupted. Cancelling a running job stops it at its next
//! checkpoint. Every state change is audited.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(feature = "services")]
mod engine;
#[cfg(feature = "services")]
pub mod kinds;
#[cfg(feature = "services")]
mod runner;
#[cfg(feature = "services")]
pub mod schedule;

#[cfg(feature = "services")]
pub use engine::{ActiveJobs, Backoff, Claimed, Enqueued, Error, Jobs, NewJob, Outcome, Result};
#[cfg(feature = "services")]
pub use runner::{Checkpoint, JobContext, JobError, JobKind, Kinds, Runner, RunnerSettings};

/// How urgent a job is; a worker always takes the most urgent ready job first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Ahead of everything.
    Critical,
    /// Ahead of normal work.
    High,
    /// The default.
    Normal,
    /// After normal work.
    Low,
    /// Only when nothing else waits.
    Batch,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Batch,
    ];

    /// The name in configs, URLs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
            Priority::Batch => "batch",
        }
    }

    /// The rank stored (0 is the most urgent).
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The priority of a stored rank.
    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown priority `{s}`: use critical, high, normal, low or batch")
            })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (first time, or for a retry after its backoff).
    Pending,
    /// A worker holds its lease.
    Running,
    /// Done.
    Succeeded,
    /// Cancelled before it ran, or stopped at a checkpoint after cancel was asked.
    Cancelled,
    /// Every attempt failed; kept with the last error.
    Dead,
    /// Its worker stopped (the console died) with no attempt left.
    Interrupted,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Running,
        JobState::Succeeded,
        JobState::Cancelled,
        JobState::Dead,
        JobState::Interrupted,
    ];

    /// The name in the store and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Cancelled => "cancelled",
            JobState::Dead => "dead",
            JobState::Interrupted => "interrupted",
        }
    }

    /// Whether the job is over (kept for history, subject to retention).
    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job would do: shown before it is confirmed, kept with the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// One sentence: what, where, how much.
    pub summary: String,
    /// The exact statements or commands, in order (a sample when there are very many).
    pub statements: Vec<String>,
    /// Units of work in all, when known.
    pub total: Option<u64>,
    /// Whether it deletes or rewrites anything (confirmation must then be typed).
    pub destructive: bool,
}

/// How far a running job is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Units done (keys, rows, steps).
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// What it is doing now.
    pub phase: String,
    /// Units per second since the attempt started.
    pub rate_per_sec: Option<f64>,
    /// Seconds left at that rate, when the total is known.
    pub eta_secs: Option<u64>,
}

/// A job as lists and pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Its id.
    pub id: i64,
    /// What kind of job, such as `noop` or `vacuum`.
    pub kind: String,
    /// The target it works on, if any.
    pub target: Option<String>,
    /// Its priority.
    pub priority: Priority,
    /// Its state.
    pub state: JobState,
    /// What it was asked to do.
    pub parameters: serde_json::Value,
    /// The plan confirmed when it was started, if it was planned.
    pub plan: Option<serde_json::Value>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it runs (next), Unix ms.
    pub run_at_ms: u64,
    /// The last progress reported.
    pub progress: Option<Progress>,
    /// The last error.
    pub last_error: Option<String>,
    /// Whether cancelling was asked while it ran.
    pub cancel_requested: bool,
    /// The outcome report, once it succeeded.
    pub report: Option<serde_json::Value>,
    /// Who asked for it.
    pub requested_by: String,
    /// Unix ms.
    pub created_at_ms: u64,
    /// When it finished, Unix ms.
    pub finished_at_ms: Option<u64>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only in this state.
    pub state: Option<JobState>,
    /// Only on this target.
    pub target: Option<String>,
    /// Only asked for by this user.
    pub requested_by: Option<String>,
    /// Only created at or after this time (Unix ms).
    pub since_ms: Option<u64>,
    /// Jobs before this id (the next page).
    pub before_id: Option<i64>,
    /// At most this many (capped at 200).
    pub limit: u32,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// The jobs.
    pub rows: Vec<JobSummary>,
    /// How many match the filter in all.
    pub total: u64,
    /// Where the next page starts, if there is one.
    pub next_before_id: Option<i64>,
}

/// One attempt at a job: the timeline on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// From 1.
    pub attempt: u32,
    /// Which worker (`console:n`).
    pub worker: String,
    /// Unix ms.
    pub started_at_ms: u64,
    /// Unix ms, once over.
    pub finished_at_ms: Option<u64>,
    /// `succeeded`, `failed`, `cancelled` or `lost`, once over.
    pub outcome: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>(), Ok(s));
        }
        assert!(Priority::Critical < Priority::Batch);
        assert!(
            "urgent"
                .parse::<Priority>()
                .unwrap_err()
                .contains("critical, high")
        );
        assert!(JobState::Dead.is_finished() && !JobState::Running.is_finished());
    }
}
