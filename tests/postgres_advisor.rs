//! The index advisor and the index health checks against a throwaway PostgreSQL: the missing
//! index is suggested for a slow statement and the suggestion goes once the index exists;
//! duplicate, unused and invalid indexes are found, and a build in progress is left alone.

use std::time::{Duration, Instant};

use pitwall::demo::{Demo, Scale};
use pitwall::harness::PgServer;
use pitwall::link::pg_pool;
use pitwall::postgres::{
    AdvisorSettings, FindingKind, Identifier, IndexFinding, IndexHealthSettings, IndexMethod,
    Qualified, StatementAdvice, Verdict, advisor, indexes,
};
use pitwall::secret::SecretUrl;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

const TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &[&str] = &[
    "CREATE TABLE events (
        id         bigserial PRIMARY KEY,
        project_id bigint NOT NULL,
        user_id    bigint NOT NULL,
        kind       text NOT NULL,
        created_at timestamptz NOT NULL
    )",
    "INSERT INTO events (project_id, user_id, kind, created_at)
     SELECT 1 + (g * 31) % 2000, 1 + (g * 17) % 1000,
            (ARRAY['page_view', 'click', 'signup', 'export', 'api_call'])[1 + g % 5],
            now() - (g % 43200) * interval '1 minute'
     FROM generate_series(1, 100000) AS g",
    // A duplicate: (user_id) leads (user_id, kind).
    "CREATE INDEX events_user_id_idx ON events (user_id)",
    "CREATE INDEX events_user_id_kind_idx ON events (user_id, kind)",
    // Never scanned.
    "CREATE INDEX events_created_at_idx ON events (created_at)",
    "ANALYZE events",
];

const BY_PROJECT: &str = "SELECT count(*) FROM events WHERE project_id = $1";
const BY_USER_AND_KIND: &str = "SELECT id FROM events WHERE user_id = $1 AND kind = $2";
const EITHER: &str = "SELECT id FROM events WHERE project_id = $1 OR user_id = $2";

async fn workload(conn: &mut PgConnection, rounds: i64) {
    for i in 0..rounds {
        sqlx::query(BY_PROJECT)
            .bind(1 + i)
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(BY_USER_AND_KIND)
            .bind(1 + i)
            .bind("click")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(EITHER)
            .bind(1 + i)
            .bind(2 + i)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

fn statement<'a>(advice: &'a [StatementAdvice], query: &str) -> &'a StatementAdvice {
    advice
        .iter()
        .find(|s| s.statement.query == query)
        .unwrap_or_else(|| panic!("{query} not among {advice:#?}"))
}

fn finding<'a>(found: &'a [IndexFinding], index: &str) -> Option<&'a IndexFinding> {
    found.iter().find(|f| f.index == index)
}

#[tokio::test]
async fn suggests_the_missing_index_until_it_exists_and_finds_bad_indexes() {
    let pg = PgServer::start().await.unwrap();
    let mut admin = pg.connect("postgres").await.unwrap();
    sqlx::query("CREATE DATABASE shop")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut conn = pg.connect("shop").await.unwrap();
    for statement in SCHEMA {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    // A unique build that fails on duplicate values leaves an INVALID index behind.
    let failed = sqlx::query("CREATE UNIQUE INDEX CONCURRENTLY events_kind_key ON events (kind)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        failed.to_string().contains("could not create unique index"),
        "{failed}"
    );

    let pool = pg_pool(&SecretUrl::parse(&pg.url("shop")).unwrap(), TIMEOUT).unwrap();
    let settings = AdvisorSettings {
        min_mean_ms: 0.0,
        min_calls: 30.0,
        ..AdvisorSettings::default()
    };
    workload(&mut conn, 30).await;

    // The missing index, exactly.
    let advice = advisor::suggest(&pool, &settings, TIMEOUT).await.unwrap();
    assert_eq!(advice.suggestions.len(), 1, "{advice:#?}");
    let s = &advice.suggestions[0];
    assert_eq!(s.table, Qualified::parse("public.events").unwrap());
    assert_eq!(s.columns, [Identifier::parse("project_id").unwrap()]);
    assert_eq!(s.method, IndexMethod::Btree);
    assert_eq!(s.name.as_str(), "events_project_id_idx");
    assert_eq!(
        s.statement,
        "CREATE INDEX CONCURRENTLY \"events_project_id_idx\" ON \"public\".\"events\" (\"project_id\")"
    );
    assert_eq!(s.helps.len(), 1);
    assert_eq!(s.helps[0].query, BY_PROJECT);
    assert!(s.helps[0].calls >= 30.0);
    let why = s.reasoning.join("\n");
    assert!(why.contains("project_id = … leaves about 50 rows"), "{why}");
    assert!(
        why.contains("events_user_id_kind_idx on (user_id, kind)"),
        "{why}"
    );
    assert!(
        !why.contains("events_kind_key"),
        "an invalid index is not considered: {why}"
    );

    let by_project = statement(&advice.statements, BY_PROJECT);
    assert_eq!(
        by_project.verdict,
        Verdict::Suggested {
            index: s.name.clone()
        }
    );
    let covered = statement(&advice.statements, BY_USER_AND_KIND);
    assert_eq!(
        covered.verdict.summary(),
        "covered by index public.events_user_id_kind_idx on (user_id, kind)"
    );
    let either = statement(&advice.statements, EITHER);
    assert_eq!(
        either.verdict.summary(),
        "not analysed: OR in the WHERE is not supported"
    );
    assert!(
        advice
            .statements
            .iter()
            .all(|s| !s.statement.query.contains("pitwall:")),
        "Pitwall's own statements are left out"
    );

    // Once the index exists (nothing reset), the statement is covered and nothing is suggested.
    sqlx::query("CREATE INDEX events_project_id_idx ON events (project_id)")
        .execute(&mut conn)
        .await
        .unwrap();
    workload(&mut conn, 5).await;
    let advice = advisor::suggest(&pool, &settings, TIMEOUT).await.unwrap();
    assert!(advice.suggestions.is_empty(), "{advice:#?}");
    assert_eq!(
        statement(&advice.statements, BY_PROJECT).verdict,
        Verdict::Covered {
            index: "public.events_project_id_idx".into(),
            columns: vec!["project_id".into()],
        }
    );

    // Index health.
    let everything = IndexHealthSettings {
        unused_min_bytes: 0,
    };
    let found = indexes::health(&pool, &everything, TIMEOUT).await.unwrap();
    let dup = finding(&found, "events_user_id_idx").expect("the duplicate");
    assert_eq!(dup.kind, FindingKind::Duplicate);
    assert_eq!(
        dup.covered_by.as_deref(),
        Some("public.events_user_id_kind_idx")
    );
    assert_eq!(
        dup.fix.as_deref(),
        Some("DROP INDEX CONCURRENTLY \"public\".\"events_user_id_idx\"")
    );
    let invalid = finding(&found, "events_kind_key").expect("the invalid index");
    assert_eq!(invalid.kind, FindingKind::Invalid);
    assert_eq!(
        invalid.fix.as_deref(),
        Some("DROP INDEX CONCURRENTLY \"public\".\"events_kind_key\"")
    );
    let unused = finding(&found, "events_created_at_idx").expect("the unused index");
    assert_eq!(unused.kind, FindingKind::Unused);
    assert_eq!(unused.scans, 0);
    assert!(unused.size_bytes > 0);
    assert!(finding(&found, "events_pkey").is_none(), "{found:#?}");
    // With the default 10 MB threshold these small indexes are not worth reporting as unused.
    let found = indexes::health(&pool, &IndexHealthSettings::default(), TIMEOUT)
        .await
        .unwrap();
    assert!(
        found.iter().all(|f| f.kind != FindingKind::Unused),
        "{found:#?}"
    );

    // A concurrent build waiting for an open transaction is invalid but not reported.
    let mut writer = pg.connect("shop").await.unwrap();
    let mut tx = writer.begin().await.unwrap();
    sqlx::query("UPDATE events SET kind = kind WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    let url = pg.url("shop");
    let build = tokio::spawn(async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE INDEX CONCURRENTLY events_building_idx ON events (kind)")
            .execute(&mut conn)
            .await
    });
    let started = Instant::now();
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                            JOIN pg_class c ON c.oid = p.index_relid
                            WHERE c.relname = 'events_building_idx')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the build never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = indexes::health(&pool, &everything, TIMEOUT).await.unwrap();
    assert!(
        finding(&found, "events_building_idx").is_none(),
        "{found:#?}"
    );
    assert!(finding(&found, "events_kind_key").is_some());
    tx.commit().await.unwrap();
    build.await.unwrap().unwrap();

    // Under an ACCESS EXCLUSIVE lock (a VACUUM FULL, a plain REINDEX) the reads still answer
    // at once: they use no function that waits for the table.
    let mut locker = pg.connect("shop").await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = Instant::now();
    let found = indexes::health(&pool, &everything, TIMEOUT).await.unwrap();
    assert!(finding(&found, "events_user_id_idx").is_some());
    let advice = advisor::suggest(&pool, &settings, TIMEOUT).await.unwrap();
    assert!(advice.suggestions.is_empty(), "{advice:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "reads waited {:?} behind the lock",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
}

/// The demo's statement slow for want of an index on `events.project_id`, as its workload runs it.
const DEMO_SLOW: &str = "SELECT count(*) FROM events WHERE project_id = $1";

#[tokio::test]
async fn the_demos_slow_query_gets_its_index_suggested() {
    let scale = Scale {
        pace: Duration::from_millis(10),
        ..Scale::SMALL
    };
    let demo = Demo::start(scale).await.unwrap();
    let url = SecretUrl::parse(&demo.postgres.url(pitwall::demo::DATABASE)).unwrap();
    let pool = pg_pool(&url, TIMEOUT).unwrap();
    let settings = AdvisorSettings {
        min_mean_ms: 0.0,
        min_calls: 20.0,
        ..AdvisorSettings::default()
    };
    let wanted = [Identifier::parse("project_id").unwrap()];
    let started = Instant::now();
    let suggestion = loop {
        let advice = advisor::suggest(&pool, &settings, TIMEOUT).await.unwrap();
        if let Some(s) = advice.suggestions.iter().find(|s| s.columns == wanted) {
            break s.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no suggestion on events (project_id): {advice:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(suggestion.table, Qualified::parse("public.events").unwrap());
    assert_eq!(
        suggestion.statement,
        "CREATE INDEX CONCURRENTLY \"events_project_id_idx\" ON \"public\".\"events\" (\"project_id\")"
    );
    assert!(
        suggestion.helps.iter().any(|h| h.query == DEMO_SLOW),
        "{suggestion:#?}"
    );

    let mut conn = demo
        .postgres
        .connect(pitwall::demo::DATABASE)
        .await
        .unwrap();
    sqlx::query(&suggestion.statement)
        .execute(&mut conn)
        .await
        .unwrap();
    let advice = advisor::suggest(&pool, &settings, TIMEOUT).await.unwrap();
    assert!(
        advice.suggestions.iter().all(|s| s.columns != wanted),
        "{advice:#?}"
    );
    assert_eq!(
        statement(&advice.statements, DEMO_SLOW).verdict,
        Verdict::Covered {
            index: "public.events_project_id_idx".into(),
            columns: vec!["project_id".into()],
        }
    );
}
