//! The job engine across console processes: two consoles on one store never run the same job,
//! and a job whose console is killed with SIGKILL is taken up by the next one after its lease.
//! A retry is planned, confirmed and guarded as a new job is, with the role of its kind; a plain
//! `pitwall serve` does not offer the `noop` kind.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Console, password_of};
use pitwall::harness::PgServer;
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

/// The id the CLI printed after `prefix`.
fn id_after(out: &str, prefix: &str) -> i64 {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {out}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn job_count(console: &Console) -> i64 {
    let store = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        console.data_dir().join("pitwall.db").display()
    ))
    .await
    .unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&store)
        .await
        .unwrap();
    store.close().await;
    n
}

#[tokio::test]
async fn a_retry_needs_the_kinds_role_its_confirmation_and_its_key() {
    let pg = PgServer::start().await.unwrap();
    let mut db = pg.connect("postgres").await.unwrap();
    sqlx::raw_sql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
        .execute(&mut db)
        .await
        .unwrap();
    let console = Console::spawn(&format!(
        "[[postgres]]\nname = \"db\"\nurl = \"{}\"\n\n[jobs]\nworkers = 2\nper_target = 1\n",
        pg.url("postgres")
    ))
    .await;
    // A long no-op job holds the target's one slot, so the jobs below stay queued.
    let busy = start_noop_on(&console, "db", r#"{"steps": 600, "step_ms": 100}"#);
    until_state(&console, busy, "running", Duration::from_secs(10)).await;
    let (code, out) = console.cli(&[
        "jobs",
        "start",
        "vacuum",
        "--target",
        "db",
        "--params",
        r#"{"table": "t", "full": true}"#,
        "--confirm",
        "db",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let vacuum = id_after(&out, "queued job ");
    let (code, out) = console.cli(&["jobs", "cancel", &vacuum.to_string()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(show(&console, vacuum)["state"], "cancelled");
    let jobs = job_count(&console).await;
    let id = vacuum.to_string();

    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    console.add_user(&admin, "otto", "operator").await;
    let operator = console.sign_in("otto", &password_of("otto")).await;

    // An operator may retry jobs, but not a VACUUM FULL: only admins vacuum.
    let (status, body) = console.call(&operator, "retry_job", &[("id", &id)]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin"), "{body}");
    let (status, body) = console
        .call(
            &operator,
            "retry_job",
            &[("id", &id), ("confirmation", "db")],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = console.call(&operator, "plan_retry", &[("id", &id)]).await;
    assert_eq!(status, 403, "{body}");
    let bulk = [
        ("filter[kind]", "vacuum"),
        ("filter[state]", "cancelled"),
        ("filter[limit]", "50"),
        ("since", ""),
        ("action", "retry"),
        ("confirmation", "1"),
    ];
    let (status, body) = console.call(&operator, "bulk_jobs", &bulk).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("#{id} (admin)")) && body.contains("None of the 1 jobs"),
        "{body}"
    );
    assert_eq!(
        job_count(&console).await,
        jobs,
        "an operator's retry queued a job"
    );

    // An admin sees the plan again; without the typed confirmation nothing is queued, and the
    // answer says what to type.
    let (status, body) = console.call(&admin, "plan_retry", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let plan: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plan["destructive"], true, "{plan}");
    assert!(plan["statements"].to_string().contains("FULL"), "{plan}");
    for args in [
        vec![("id", id.as_str())],
        vec![("id", id.as_str()), ("confirmation", "yes")],
    ] {
        let (status, body) = console.call(&admin, "retry_job", &args).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("type `db` to confirm it"), "{body}");
    }
    let (status, body) = console.call(&admin, "bulk_jobs", &bulk).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(&format!("jobs #{id} change data")), "{body}");
    assert_eq!(
        job_count(&console).await,
        jobs,
        "an unconfirmed retry queued a job"
    );
    // The CLI asks for it too, showing the plan.
    let (code, out) = console.cli(&["jobs", "retry", &id]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("plan: ") && out.contains("type `db` to confirm it"),
        "{out}"
    );
    assert_eq!(job_count(&console).await, jobs);

    // Confirmed, it is queued once; the same retry again is that job (the kind's key).
    let (status, body) = console
        .call(&admin, "retry_job", &[("id", &id), ("confirmation", "db")])
        .await;
    assert_eq!(status, 200, "{body}");
    let again: i64 = body.trim().parse().unwrap();
    assert_ne!(again, vacuum);
    let retried = show(&console, again);
    assert_eq!(retried["state"], "pending", "{retried}");
    assert_eq!(retried["plan"]["destructive"], true, "{retried}");
    let (status, body) = console
        .call(&admin, "retry_job", &[("id", &id), ("confirmation", "db")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim(), again.to_string());
    let (code, out) = console.cli(&["jobs", "retry", &id, "--confirm", "db"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("job {again} is already queued")),
        "{out}"
    );
    assert_eq!(job_count(&console).await, jobs + 1, "queued more than once");
}

fn start_noop_on(console: &Console, target: &str, params: &str) -> i64 {
    let (code, out) = console.cli(&[
        "jobs",
        "start",
        "noop",
        "--target",
        target,
        "--params",
        params,
        "--confirm",
        "yes",
    ]);
    assert_eq!(code, Some(0), "{out}");
    id_after(&out, "queued job ")
}

#[tokio::test]
async fn a_plain_serve_does_not_offer_the_noop_kind() {
    let console = Console::spawn_plain("").await;
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, body) = console.get(&admin, "/api/job_kinds").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("noop") && body.contains("vacuum"), "{body}");
    let (status, body) = console
        .call(
            &admin,
            "plan_job",
            &[
                ("request[kind]", "noop"),
                ("request[parameters]", "{}"),
                ("request[priority]", "normal"),
                ("request[max_attempts]", "1"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unknown job kind `noop`"), "{body}");
    assert_eq!(job_count(&console).await, 0);
}
