//! The job engine across console processes: two consoles on one store never run the same job,
//! and a job whose console is killed with SIGKILL is taken up by the next one after its lease.

mod common;

use std::time::{Duration, Instant};

use common::Console;
use serde_json::Value;

const JOBS: &str = "[jobs]\nworkers = 2\nlease_ms = 1000\nper_target = 64\n";

fn start_noop(console: &Console, params: &str) -> i64 {
    let (code, out) = console.cli(&[
        "jobs",
        "start",
        "noop",
        "--params",
        params,
        "--confirm",
        "yes",
    ]);
    assert_eq!(code, Some(0), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("queued job "))
        .unwrap_or_else(|| panic!("no job id in {out}"))
        .parse()
        .unwrap()
}

fn show(console: &Console, id: i64) -> Value {
    let (code, out) = console.cli(&["jobs", "show", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str(&out).unwrap()
}

async fn until_state(console: &Console, id: i64, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let job = show(console, id);
        if job["state"] == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} not {state}: {job}\n{}",
            console.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_consoles_on_one_store_never_run_the_same_job() {
    let first = Console::spawn(JOBS).await;
    let second = first.sibling().await;
    let ids: Vec<i64> = (0..30)
        .map(|_| start_noop(&first, r#"{"steps": 4, "step_ms": 25}"#))
        .collect();
    for id in &ids {
        until_state(&second, *id, "succeeded", Duration::from_secs(30)).await;
    }
    let store = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        first.data_dir().join("pitwall.db").display()
    ))
    .await
    .unwrap();
    let twice: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT job_id, count(*) FROM job_attempts GROUP BY job_id HAVING count(*) > 1",
    )
    .fetch_all(&store)
    .await
    .unwrap();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    let consoles: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT substr(worker, 1, instr(worker, ':') - 1) FROM job_attempts",
    )
    .fetch_all(&store)
    .await
    .unwrap();
    assert_eq!(consoles.len(), 2, "both consoles took jobs: {consoles:?}");
    let starts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'job.start'")
            .fetch_one(&store)
            .await
            .unwrap();
    assert_eq!(starts, ids.len() as i64);
}

#[tokio::test]
async fn a_job_of_a_killed_console_is_taken_up_after_its_lease() {
    let mut first = Console::spawn(JOBS).await;
    let id = start_noop(&first, r#"{"steps": 40, "step_ms": 50}"#);
    until_state(&first, id, "running", Duration::from_secs(10)).await;
    first.kill();
    let killed_at = Instant::now();
    let second = first.sibling().await;
    let job = until_state(&second, id, "succeeded", Duration::from_secs(20)).await;
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        killed_at.elapsed() > Duration::from_millis(900),
        "not before the lease ran out"
    );
    assert_eq!(job["report"]["steps"], 40);

    // The CLI's other commands: list, retry refused for a succeeded job, cancel a pending one.
    let (_, list) = second.cli(&["jobs", "list", "--state", "succeeded"]);
    assert!(
        list.contains("noop") && list.contains("succeeded"),
        "{list}"
    );
    let (code, out) = second.cli(&["jobs", "retry", &id.to_string()]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("only dead, interrupted or cancelled jobs can be retried"),
        "{out}"
    );
    let (code, out) = second.cli(&["jobs", "start", "noop", "--params", "{\"steps\": 0}"]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("`steps` must be between 1 and 100000"),
        "{out}"
    );
    let (code, out) = second.cli(&["jobs", "show", "999999"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("no job with id 999999"), "{out}");
}
