//! The workload by statement and EXPLAIN against a real PostgreSQL with pg_stat_statements:
//! exact call counts between polls, never a reset of the view, the fix named when the extension
//! is missing, generic plans for statements with parameters, and ANALYZE only for reads.

use std::time::Duration;

use pitwall::TargetKind;
use pitwall::config::Target;
use pitwall::harness::PgServer;
use pitwall::postgres::Sort;
use pitwall::postgres::workload::{SlowQuery, Workloads};
use pitwall::secret::SecretUrl;
use sqlx::Connection;

const POLL: Duration = Duration::from_millis(300);

fn target(name: &str, url: String) -> Target {
    Target::new(name, TargetKind::Postgres, SecretUrl::parse(&url).unwrap())
}

/// Waits until `check` holds for the target's 15-minute page.
async fn until(
    w: &Workloads,
    target: &str,
    what: &str,
    check: impl Fn(&pitwall::postgres::WorkloadPage) -> bool,
) -> pitwall::postgres::WorkloadPage {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = w.page(target, 15 * 60_000, Sort::Total).unwrap();
        if check(&page) {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn statements_are_counted_between_polls_and_explained_safely() {
    let pg = PgServer::start().await.unwrap();
    let mut setup = pg.connect("postgres").await.unwrap();
    sqlx::query("CREATE DATABASE shop")
        .execute(&mut setup)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE bare")
        .execute(&mut setup)
        .await
        .unwrap();
    let mut bare = pg.connect("bare").await.unwrap();
    sqlx::query("DROP EXTENSION pg_stat_statements")
        .execute(&mut bare)
        .await
        .unwrap();
    let mut c = pg.connect("shop").await.unwrap();
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, kind int, note text)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items SELECT g, g % 10, 'n' FROM generate_series(1, 5000) g")
        .execute(&mut c)
        .await
        .unwrap();

    let w = Workloads::spawn(
        &[
            target("shop", pg.url("shop")),
            target("bare", pg.url("bare")),
        ],
        POLL,
        Duration::from_secs(2),
        SlowQuery {
            mean_ms: 0.0,
            calls: 5.0,
        },
    );
    assert_eq!(w.targets(), ["shop", "bare"]);
    // The first poll is the baseline.
    until(&w, "shop", "a baseline", |p| p.since_ms.is_some()).await;
    for k in 0..25 {
        sqlx::query("SELECT count(*) FROM items WHERE kind = $1")
            .bind(k % 10)
            .fetch_one(&mut c)
            .await
            .unwrap();
    }
    let page = until(&w, "shop", "25 calls counted", |p| {
        p.statements
            .iter()
            .any(|s| s.query.contains("FROM items WHERE kind = $1") && s.calls == 25.0)
    })
    .await;
    let s = page
        .statements
        .iter()
        .find(|s| s.query.contains("WHERE kind = $1"))
        .unwrap();
    assert!(s.slow, "over the test's thresholds");
    assert_eq!(s.rows, 25.0);
    assert!(s.mean_ms > 0.0 && s.total_ms >= s.mean_ms * 25.0 * 0.99);
    // Pitwall's own reads are not part of the workload.
    assert!(
        page.statements
            .iter()
            .all(|s| !s.query.contains("pitwall:")),
        "{page:?}"
    );

    // Ten more: the window sums both polls' changes; the view was never reset.
    for k in 0..10 {
        sqlx::query("SELECT count(*) FROM items WHERE kind = $1")
            .bind(k)
            .fetch_one(&mut c)
            .await
            .unwrap();
    }
    until(&w, "shop", "35 calls", |p| {
        p.statements
            .iter()
            .any(|s| s.query.contains("WHERE kind = $1") && s.calls == 35.0)
    })
    .await;
    let calls: i64 = sqlx::query_scalar(
        "SELECT calls FROM pg_stat_statements WHERE query LIKE '%FROM items WHERE kind = $1%'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(calls, 35, "pg_stat_statements keeps its own totals");
    let detail = w.statement("shop", s.queryid, 15 * 60_000).unwrap();
    assert_eq!(detail.0.calls, 35.0);
    assert_eq!(detail.1.iter().map(|p| p.calls).sum::<f64>(), 35.0);

    // EXPLAIN: the generic plan of a statement with parameters, nothing run.
    let plan = w.explain("shop", s.queryid, false).await.unwrap();
    assert!(plan.generic && !plan.analyzed);
    assert!(plan.text.contains("Seq Scan on items"), "{}", plan.text);
    assert!(plan.text.contains("Filter: (kind = $1)"), "{}", plan.text);
    let again = w.explain("shop", s.queryid, false).await.unwrap();
    assert_eq!(
        again.text, plan.text,
        "the prepared statement does not outlive an EXPLAIN"
    );
    let refused = w.explain("shop", s.queryid, true).await.unwrap_err();
    assert!(refused.contains("has parameters ($1 to $1)"), "{refused}");

    // ANALYZE runs a read without parameters, and refuses a write.
    sqlx::query("SELECT max(id) FROM items")
        .fetch_one(&mut c)
        .await
        .unwrap();
    sqlx::query("UPDATE items SET note = upper(note)")
        .execute(&mut c)
        .await
        .unwrap();
    let page = until(&w, "shop", "the read and the write", |p| {
        p.statements.iter().any(|s| s.query.contains("max(id)"))
            && p.statements
                .iter()
                .any(|s| s.query.starts_with("UPDATE items"))
    })
    .await;
    let read = page
        .statements
        .iter()
        .find(|s| s.query.contains("max(id)"))
        .unwrap();
    let analyzed = w.explain("shop", read.queryid, true).await.unwrap();
    assert!(
        analyzed.analyzed && analyzed.tree.actual_ms.is_some(),
        "{analyzed:?}"
    );
    assert!(
        analyzed.text.contains("Execution time"),
        "{}",
        analyzed.text
    );
    let write = page
        .statements
        .iter()
        .find(|s| s.query.starts_with("UPDATE items"))
        .unwrap();
    let refused = w.explain("shop", write.queryid, true).await.unwrap_err();
    assert!(refused.contains("only statements that read"), "{refused}");
    let plain = w.explain("shop", write.queryid, false).await.unwrap();
    assert!(plain.text.contains("Update on items"), "{}", plain.text);

    // A read that calls a volatile function is never run by ANALYZE: the backend it would end
    // lives on, and the sleep is refused too; its plan is still shown.
    let mut victim = pg.connect("shop").await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE victims (pid int); CREATE TABLE naps (secs float);
         CREATE FUNCTION ends(a int, b int) RETURNS bool VOLATILE LANGUAGE sql
             AS 'SELECT pg_terminate_backend(a) AND a = b';
         CREATE OPERATOR #=# (LEFTARG = int, RIGHTARG = int, FUNCTION = ends);",
    )
    .execute(&mut c)
    .await
    .unwrap();
    for planted in [
        "SELECT pg_terminate_backend(pid) FROM victims",
        "SELECT pg_catalog.pg_sleep(secs) FROM naps",
        "SELECT count(*) FROM victims WHERE pid #=# pid",
    ] {
        sqlx::query(planted).execute(&mut c).await.unwrap();
    }
    sqlx::query("INSERT INTO victims VALUES ($1)")
        .bind(pid)
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO naps VALUES (3)")
        .execute(&mut c)
        .await
        .unwrap();
    let page = until(&w, "shop", "the planted statements", |p| {
        ["pg_terminate_backend", "pg_sleep", "#=#"].iter().all(|f| {
            p.statements
                .iter()
                .any(|s| s.query.starts_with("SELECT") && s.query.contains(f))
        })
    })
    .await;
    for (written, why) in [
        (
            "pg_terminate_backend",
            "calls `pg_terminate_backend`, which is volatile",
        ),
        ("pg_sleep", "calls `pg_catalog.pg_sleep`, which is volatile"),
        (
            "#=#",
            "uses operator `#=#`, whose function `ends(integer,integer)` is volatile",
        ),
    ] {
        let planted = page
            .statements
            .iter()
            .find(|s| s.query.starts_with("SELECT") && s.query.contains(written))
            .unwrap();
        let started = std::time::Instant::now();
        let refused = w.explain("shop", planted.queryid, true).await.unwrap_err();
        assert!(refused.contains(why), "{refused}");
        assert!(started.elapsed() < Duration::from_secs(2), "it slept");
        let plain = w.explain("shop", planted.queryid, false).await.unwrap();
        assert!(!plain.analyzed, "{plain:?}");
    }
    let alive: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut victim)
        .await
        .expect("the backend was terminated");
    assert_eq!(alive, 1);
    assert!(
        w.explain("shop", 42, false)
            .await
            .unwrap_err()
            .contains("no statement 42")
    );

    // A database without the extension says how to fix it.
    let bare = until(&w, "bare", "the missing extension", |p| p.problem.is_some()).await;
    let problem = bare.problem.unwrap();
    assert!(
        problem.contains("CREATE EXTENSION pg_stat_statements"),
        "{problem}"
    );
    assert!(bare.statements.is_empty());
    c.close().await.unwrap();
}
