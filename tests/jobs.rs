//! The job engine on a real SQLite store: exclusive claims across workers and store handles (as
//! two console processes would hold), lease recovery, backoff, idempotency, cancel at a
//! checkpoint, retention, and the audit trail of each job.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{until_job, until_state};
use pitwall::access::{Actor, AuditFilter, Role};
use pitwall::jobs::kinds::Noop;
use pitwall::jobs::{
    Backoff, Enqueued, Error, JobContext, JobError, JobKind, JobState, Jobs, Kinds, NewJob,
    Outcome, Plan, Priority, Runner, RunnerSettings,
};
use pitwall::store::{SqliteStore, Store};
use tempfile::TempDir;

fn admin() -> Actor {
    Actor {
        name: "ada".into(),
        role: Role::Admin,
        client_addr: None,
    }
}

async fn store(dir: &TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.path()).await.unwrap())
}

fn fast(name: &str, workers: usize) -> RunnerSettings {
    RunnerSettings {
        name: name.into(),
        workers,
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(20),
        per_target: 100,
    }
}

/// Counts how often each job ran.
struct Counting(Arc<Mutex<HashMap<i64, u32>>>);

#[async_trait::async_trait]
impl JobKind for Counting {
    fn name(&self) -> &'static str {
        "count"
    }

    async fn plan(&self, _: Option<&str>, _: &serde_json::Value) -> Result<Plan, String> {
        Err("not planned".into())
    }

    async fn run(
        &self,
        ctx: &mut JobContext,
        _: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        *self.0.lock().unwrap().entry(ctx.job().id).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(serde_json::json!({}))
    }
}

#[tokio::test]
async fn workers_of_two_store_handles_never_run_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (store(&dir).await, store(&dir).await);
    let jobs = Jobs::new(one.clone(), Backoff::default());
    let mut ids = Vec::new();
    for i in 0..120 {
        let mut job = NewJob::new("count", serde_json::json!({ "i": i }));
        job.priority = Priority::ALL[i % 5];
        match jobs.enqueue(&admin(), job).await.unwrap() {
            Enqueued::New(id) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let kinds = || Kinds::new(vec![Arc::new(Counting(runs.clone()))]);
    let a = Runner::spawn(jobs.clone(), kinds(), fast("a", 4));
    let b = Runner::spawn(Jobs::new(two, Backoff::default()), kinds(), fast("b", 4));
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs
        .list(Some(JobState::Succeeded), 1_000)
        .await
        .unwrap()
        .len()
        < ids.len()
    {
        assert!(Instant::now() < deadline, "not all jobs ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await;
    b.stop().await;
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), ids.len());
    assert!(runs.values().all(|n| *n == 1), "a job ran twice: {runs:?}");
}

#[tokio::test]
async fn the_most_urgent_ready_job_goes_first_and_targets_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let enqueue = |priority, target: Option<&str>, delay_ms: Option<u64>| {
        let jobs = jobs.clone();
        let target = target.map(str::to_owned);
        async move {
            let mut job = NewJob::new("noop", serde_json::json!({}));
            job.priority = priority;
            job.target = target;
            job.run_at_ms = delay_ms.map(|d| pitwall::status::now_ms() + d);
            match jobs.enqueue(&admin(), job).await.unwrap() {
                Enqueued::New(id) => id,
                other => panic!("{other:?}"),
            }
        }
    };
    let batch = enqueue(Priority::Batch, None, None).await;
    let _later = enqueue(Priority::Critical, None, Some(60_000)).await;
    let db1 = enqueue(Priority::High, Some("db"), None).await;
    let db2 = enqueue(Priority::High, Some("db"), None).await;
    let lease = Duration::from_secs(30);
    assert_eq!(jobs.claim("w", lease, 1).await.unwrap().unwrap().id, db1);
    // One job per target at a time: the second `db` job waits, the batch job goes.
    assert_eq!(jobs.claim("w", lease, 1).await.unwrap().unwrap().id, batch);
    assert_eq!(jobs.claim("w", lease, 1).await.unwrap(), None);
    assert_eq!(jobs.claim("w", lease, 2).await.unwrap().unwrap().id, db2);
}

#[tokio::test]
async fn failed_attempts_back_off_then_go_to_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let backoff = Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(600),
    };
    let jobs = Jobs::new(store(&dir).await, backoff);
    let mut job = NewJob::new("noop", serde_json::json!({}));
    job.max_attempts = 3;
    let Enqueued::New(id) = jobs.enqueue(&admin(), job).await.unwrap() else {
        panic!()
    };
    let lease = Duration::from_secs(30);
    for (attempt, wait_s) in [(1u32, Some(5u64)), (2, Some(10)), (3, None)] {
        let claimed = jobs.claim("w", lease, 1).await.unwrap().expect("ready");
        assert_eq!((claimed.id, claimed.attempt), (id, attempt));
        let failed_at = pitwall::status::now_ms();
        let outcome = Outcome::Failed {
            error: format!("boom {attempt}"),
            retry_at_ms: None,
        };
        assert!(jobs.finish(&claimed, "w", outcome).await.unwrap());
        let job = jobs.job(id).await.unwrap();
        assert_eq!(
            job.last_error.as_deref(),
            Some(format!("boom {attempt}").as_str())
        );
        match wait_s {
            Some(wait) => {
                assert_eq!(job.state, JobState::Pending);
                let delay = job.run_at_ms - failed_at;
                assert!(
                    (wait * 1000..wait * 1000 + 1_000).contains(&delay),
                    "attempt {attempt}: retry in {delay} ms, expected {wait} s"
                );
                assert_eq!(
                    jobs.claim("w", lease, 1).await.unwrap(),
                    None,
                    "not before its time"
                );
                // Pretend the backoff passed.
                jobs_run_now(&dir, id).await;
            }
            None => {
                assert_eq!(job.state, JobState::Dead);
                assert!(job.finished_at_ms.is_some());
            }
        }
    }
}

/// Moves job `id`'s next run to now, as if its backoff had passed.
async fn jobs_run_now(dir: &TempDir, id: i64) {
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("pitwall.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET run_at = 0 WHERE id = ?")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_idempotency_key_holds_while_its_job_is_pending_or_running() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let keyed = || {
        let mut job = NewJob::new("noop", serde_json::json!({}));
        job.idempotency_key = Some("vacuum:app-db:events".into());
        job
    };
    let Enqueued::New(id) = jobs.enqueue(&admin(), keyed()).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        jobs.enqueue(&admin(), keyed()).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    let claimed = jobs
        .claim("w", Duration::from_secs(30), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        jobs.enqueue(&admin(), keyed()).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    jobs.finish(&claimed, "w", Outcome::Succeeded(serde_json::json!({})))
        .await
        .unwrap();
    assert!(matches!(
        jobs.enqueue(&admin(), keyed()).await.unwrap(),
        Enqueued::New(other) if other != id
    ));
    let err = jobs
        .enqueue(
            &admin(),
            NewJob {
                max_attempts: 0,
                ..keyed()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("max_attempts must be between 1 and 100"),
        "{err}"
    );
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_taken_up_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let mut job = NewJob::new("noop", serde_json::json!({ "steps": 2, "step_ms": 10 }));
    job.max_attempts = 2;
    let Enqueued::New(id) = jobs.enqueue(&admin(), job).await.unwrap() else {
        panic!()
    };
    // A worker that claims the job and then is never heard of again.
    let gone = jobs
        .claim("gone:0", Duration::from_millis(300), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.id, id);
    let runner = Runner::spawn(
        jobs.clone(),
        Kinds::new(vec![Arc::new(Noop)]),
        fast("alive", 1),
    );
    until_state(&jobs, id, JobState::Succeeded).await;
    runner.stop().await;
    let done = jobs.job(id).await.unwrap();
    assert_eq!(done.attempts, 2);
    // The vanished worker can no longer touch it.
    assert_eq!(
        jobs.heartbeat(id, "gone:0", Duration::from_secs(1), None)
            .await
            .unwrap(),
        None
    );
    assert!(
        !jobs
            .finish(&gone, "gone:0", Outcome::Cancelled)
            .await
            .unwrap()
    );

    // With no attempt left, a lost lease marks the job interrupted.
    let Enqueued::New(id) = jobs
        .enqueue(&admin(), NewJob::new("noop", serde_json::json!({})))
        .await
        .unwrap()
    else {
        panic!()
    };
    jobs.claim("gone:1", Duration::from_millis(50), 1)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(jobs.recover_expired().await.unwrap(), 1);
    let job = jobs.job(id).await.unwrap();
    assert_eq!(job.state, JobState::Interrupted);
    assert!(
        job.last_error
            .unwrap()
            .contains("stopped renewing the lease")
    );
}

#[tokio::test]
async fn cancel_stops_a_running_job_at_its_next_checkpoint_with_an_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let jobs = Jobs::new(store.clone(), Backoff::default());
    let Enqueued::New(id) = jobs
        .enqueue(
            &admin(),
            NewJob::new("noop", serde_json::json!({ "steps": 1000, "step_ms": 20 })),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let runner = Runner::spawn(jobs.clone(), Kinds::new(vec![Arc::new(Noop)]), fast("w", 1));
    until_state(&jobs, id, JobState::Running).await;
    // Progress arrives while it runs.
    until_job(&jobs, id, Duration::from_secs(5), |j| {
        j.progress
            .as_ref()
            .is_some_and(|p| p.done > 0 && p.total == Some(1000) && p.rate_per_sec.is_some())
    })
    .await;
    let viewer = Actor {
        role: Role::Viewer,
        ..admin()
    };
    assert!(matches!(
        jobs.cancel(&viewer, id).await,
        Err(Error::Forbidden(Role::Operator))
    ));
    assert_eq!(jobs.cancel(&admin(), id).await.unwrap(), JobState::Running);
    until_state(&jobs, id, JobState::Cancelled).await;
    let job = jobs.job(id).await.unwrap();
    assert!(job.progress.unwrap().done < 1000, "stopped early");
    assert!(matches!(
        jobs.cancel(&admin(), id).await,
        Err(Error::Finished(_, JobState::Cancelled))
    ));
    runner.stop().await;

    // A pending job is cancelled at once.
    let Enqueued::New(pending) = jobs
        .enqueue(&admin(), NewJob::new("noop", serde_json::json!({})))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        jobs.cancel(&admin(), pending).await.unwrap(),
        JobState::Cancelled
    );

    let trail = store
        .audit_page(&AuditFilter {
            action: Some("job.".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let mine: Vec<&str> = trail
        .rows
        .iter()
        .rev()
        .filter(|r| r.object.as_deref() == Some(&format!("job {id}")))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        mine,
        ["job.enqueue", "job.start", "job.cancel", "job.cancelled"]
    );
    assert!(trail.rows.iter().all(|r| r.actor == "ada"));
}

#[tokio::test]
async fn retention_removes_only_old_finished_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let Enqueued::New(id) = jobs
            .enqueue(&admin(), NewJob::new("noop", serde_json::json!({})))
            .await
            .unwrap()
        else {
            panic!()
        };
        ids.push(id);
    }
    let done = jobs
        .claim("w", Duration::from_secs(30), 1)
        .await
        .unwrap()
        .unwrap();
    jobs.finish(&done, "w", Outcome::Succeeded(serde_json::json!({})))
        .await
        .unwrap();
    let _running = jobs
        .claim("w", Duration::from_secs(30), 1)
        .await
        .unwrap()
        .unwrap();
    // Nothing finished before a moment ago.
    assert_eq!(jobs.prune(0).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(jobs.prune(pitwall::status::now_ms()).await.unwrap(), 1);
    let left: Vec<(i64, JobState)> = jobs
        .list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j.state))
        .collect();
    assert_eq!(
        left,
        [(ids[2], JobState::Pending), (ids[1], JobState::Running)]
    );
}

#[tokio::test]
async fn the_noop_kind_plans_and_checks_its_parameters() {
    let plan = Noop
        .plan(None, &serde_json::json!({ "steps": 3, "step_ms": 100 }))
        .await
        .unwrap();
    assert_eq!(plan.total, Some(3));
    assert!(!plan.destructive);
    assert!(
        plan.summary.contains("3 steps of 100 ms"),
        "{}",
        plan.summary
    );
    let err = Noop
        .plan(None, &serde_json::json!({ "steps": 0 }))
        .await
        .unwrap_err();
    assert!(
        err.contains("`steps` must be between 1 and 100000"),
        "{err}"
    );
    let err = Noop
        .plan(None, &serde_json::json!({ "stepz": 1 }))
        .await
        .unwrap_err();
    assert!(err.contains("unknown field `stepz`"), "{err}");
}

/// A destructive kind, for admins only.
struct Wipe;

#[async_trait::async_trait]
impl JobKind for Wipe {
    fn name(&self) -> &'static str {
        "wipe"
    }

    fn role(&self) -> Role {
        Role::Admin
    }

    fn key(&self, target: Option<&str>, _: &serde_json::Value) -> Option<String> {
        Some(format!("wipe:{}", target?))
    }

    async fn plan(&self, _: Option<&str>, _: &serde_json::Value) -> Result<Plan, String> {
        Ok(Plan {
            summary: "Deletes 3 keys.".into(),
            statements: vec!["UNLINK a".into(), "UNLINK b".into(), "UNLINK c".into()],
            total: Some(3),
            destructive: true,
        })
    }

    async fn run(
        &self,
        _: &mut JobContext,
        _: &serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        Ok(serde_json::json!({ "deleted": 3 }))
    }
}

#[tokio::test]
async fn destructive_jobs_are_planned_then_confirmed_by_name_and_failed_ones_retried() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let kinds = Kinds::new(vec![Arc::new(Wipe), Arc::new(Noop)]);
    let wipe = || NewJob {
        target: Some("cache".into()),
        ..NewJob::new("wipe", serde_json::json!({}))
    };
    let operator = Actor {
        role: Role::Operator,
        ..admin()
    };
    assert!(matches!(
        jobs.submit(&operator, &kinds, wipe(), None).await,
        Err(Error::Forbidden(Role::Admin))
    ));
    let (plan, none) = jobs.submit(&admin(), &kinds, wipe(), None).await.unwrap();
    assert!(plan.destructive && none.is_none());
    assert!(
        jobs.list(None, 10).await.unwrap().is_empty(),
        "planning queues nothing"
    );
    let err = jobs
        .submit(&admin(), &kinds, wipe(), Some("yes"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this job changes data: type `cache` to confirm it"
    );
    let (_, queued) = jobs
        .submit(&admin(), &kinds, wipe(), Some("cache"))
        .await
        .unwrap();
    let Some(Enqueued::New(id)) = queued else {
        panic!("{queued:?}")
    };
    let job = jobs.job(id).await.unwrap();
    assert_eq!(job.plan.unwrap()["statements"][2], "UNLINK c");
    let err = jobs
        .submit(
            &admin(),
            &kinds,
            NewJob::new("drop", serde_json::json!({})),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown job kind `drop`: this console runs noop, wipe"),
        "{err}"
    );

    // A dead job is retried as a new job; a live one is not.
    assert!(matches!(
        jobs.retry(&admin(), &kinds, id, Some("cache")).await,
        Err(Error::Invalid(_))
    ));
    let claimed = jobs
        .claim("w", Duration::from_secs(30), 1)
        .await
        .unwrap()
        .unwrap();
    let failed = Outcome::Failed {
        error: "x".into(),
        retry_at_ms: None,
    };
    jobs.finish(&claimed, "w", failed).await.unwrap();
    assert_eq!(jobs.job(id).await.unwrap().state, JobState::Dead);
    // A retry needs the kind's role and, for a plan that changes data, the typed confirmation
    // again; refused, it queues nothing.
    assert!(matches!(
        jobs.retry(&operator, &kinds, id, Some("cache")).await,
        Err(Error::Forbidden(Role::Admin))
    ));
    assert!(matches!(
        jobs.plan_retry(&operator, &kinds, id).await,
        Err(Error::Forbidden(Role::Admin))
    ));
    let plan = jobs.plan_retry(&admin(), &kinds, id).await.unwrap();
    assert!(plan.destructive);
    for confirmation in [None, Some("yes")] {
        let err = jobs
            .retry(&admin(), &kinds, id, confirmation)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this job changes data: type `cache` to confirm it"
        );
        assert!(matches!(err, Error::Unconfirmed { ref expected, .. } if expected == "cache"));
    }
    assert_eq!(
        jobs.list(None, 10).await.unwrap().len(),
        1,
        "nothing queued"
    );
    let (plan, Enqueued::New(again)) = jobs
        .retry(&admin(), &kinds, id, Some("cache"))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(plan.statements[2], "UNLINK c");
    // The kind's key holds while the retry waits: the same retry again is that job.
    assert_eq!(
        jobs.retry(&admin(), &kinds, id, Some("cache"))
            .await
            .unwrap()
            .1,
        Enqueued::Duplicate(again)
    );
    let again = jobs.job(again).await.unwrap();
    assert_eq!(
        (again.kind.as_str(), again.target.as_deref(), again.state),
        ("wipe", Some("cache"), JobState::Pending)
    );
    assert_eq!(again.plan.unwrap()["statements"][2], "UNLINK c");
}

#[tokio::test]
async fn the_active_jobs_watch_follows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Jobs::new(store(&dir).await, Backoff::default());
    let active = jobs.watch_active(Duration::from_millis(100));
    let mut rx = active.subscribe();
    jobs.enqueue(
        &admin(),
        NewJob::new("noop", serde_json::json!({ "steps": 40, "step_ms": 50 })),
    )
    .await
    .unwrap();
    let runner = Runner::spawn(jobs.clone(), Kinds::new(vec![Arc::new(Noop)]), fast("w", 1));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < deadline {
        if tokio::time::timeout(Duration::from_millis(200), rx.changed())
            .await
            .is_ok()
        {
            let list = rx.borrow_and_update().clone();
            seen.push(
                list.first()
                    .and_then(|j| j.progress.as_ref().map(|p| p.done)),
            );
        }
    }
    runner.stop().await;
    let distinct: std::collections::BTreeSet<_> = seen.iter().flatten().collect();
    assert!(distinct.len() >= 4, "progress seen: {seen:?}");
}
