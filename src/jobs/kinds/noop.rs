//! `noop` exercises the engine: it sleeps through its steps, reporting progress at each, and can
//! be told to fail its first attempts. It touches no target.

use std::time::Duration;

use serde::Deserialize;

use crate::jobs::{Checkpoint, JobContext, JobError, JobKind, Plan};

/// The no-op demo kind: `{"steps": 20, "step_ms": 250, "fail_attempts": 0}`.
pub struct Noop;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoopParameters {
    #[serde(default = "default_steps")]
    steps: u64,
    #[serde(default = "default_step_ms")]
    step_ms: u64,
    /// Attempts (from the first) that fail on purpose.
    #[serde(default)]
    fail_attempts: u32,
}

fn default_steps() -> u64 {
    10
}

fn default_step_ms() -> u64 {
    200
}

impl NoopParameters {
    fn read(parameters: &serde_json::Value) -> Result<Self, String> {
        let p: Self = serde_json::from_value(parameters.clone())
            .map_err(|e| format!("noop parameters: {e}"))?;
        if !(1..=100_000).contains(&p.steps) {
            return Err(format!(
                "`steps` must be between 1 and 100000, not {}",
                p.steps
            ));
        }
        if p.step_ms > 60_000 {
            return Err(format!(
                "`step_ms` must be at most 60000, not {}",
                p.step_ms
            ));
        }
        Ok(p)
    }
}

#[async_trait::async_trait]
impl JobKind for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }

    async fn plan(
        &self,
        _target: Option<&str>,
        parameters: &serde_json::Value,
    ) -> Result<Plan, String> {
        let p = NoopParameters::read(parameters)?;
        Ok(Plan {
            summary: format!(
                "Waits {} steps of {} ms and changes nothing.",
                p.steps, p.step_ms
            ),
            statements: vec![format!("sleep {} ms, {} times", p.step_ms, p.steps)],
            total: Some(p.steps),
            destructive: false,
        })
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        parameters: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let p = NoopParameters::read(parameters).map_err(JobError::Failed)?;
        if ctx.job().attempt <= p.fail_attempts {
            return Err(JobError::Failed(format!(
                "attempt {} fails on purpose",
                ctx.job().attempt
            )));
        }
        for done in 0..p.steps {
            ctx.checkpoint(Checkpoint {
                done,
                total: Some(p.steps),
                phase: "waiting".into(),
            })
            .await?;
            tokio::time::sleep(Duration::from_millis(p.step_ms)).await;
        }
        ctx.checkpoint(Checkpoint {
            done: p.steps,
            total: Some(p.steps),
            phase: "done".into(),
        })
        .await?;
        Ok(serde_json::json!({ "steps": p.steps }))
    }
}
