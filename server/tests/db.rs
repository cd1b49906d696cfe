//! `pitwall db …` against a real PostgreSQL: slow queries from pg_stat_statements' totals, the
//! index advisor's suggestion, and index builds and vacuums planned and queued as jobs, with bad
//! names refused before anything reaches the database.

mod common;

use std::path::Path;

use pitwall::harness::PgServer;

fn run(dir: &Path, config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = common::command(dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[tokio::test]
async fn db_commands_show_slow_queries_suggest_indexes_and_queue_jobs() {
    let pg = PgServer::start().await.unwrap();
    let mut setup = pg.connect("postgres").await.unwrap();
    sqlx::query("CREATE DATABASE shop")
        .execute(&mut setup)
        .await
        .unwrap();
    let mut c = pg.connect("shop").await.unwrap();
    sqlx::query("CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, total int)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders SELECT g, g % 2000, g % 97 FROM generate_series(1, 60000) g")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("ANALYZE orders").execute(&mut c).await.unwrap();
    for k in 0..30 {
        sqlx::query("SELECT sum(total) FROM orders WHERE customer = $1")
            .bind(k)
            .fetch_one(&mut c)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pitwall.toml");
    std::fs::write(
        &config,
        format!(
            "[[postgres]]\nname = \"shop\"\nurl = \"{}\"\n\n[queries]\nslow_query_ms = 0\nslow_query_calls = 10\n",
            pg.url("shop")
        ),
    )
    .unwrap();

    let (code, text) = run(dir.path(), &config, &["db", "slow-queries"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("30 calls") && text.contains("WHERE customer = $1"),
        "{text}"
    );

    let (code, text) = run(dir.path(), &config, &["db", "suggest-indexes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            r#"CREATE INDEX CONCURRENTLY "orders_customer_idx" ON "public"."orders" ("customer");"#
        ),
        "{text}"
    );
    let (code, json) = run(dir.path(), &config, &["db", "suggest-indexes", "--json"]);
    assert_eq!(code, Some(0), "{json}");
    let advice: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        advice["suggestions"][0]["columns"],
        serde_json::json!(["customer"])
    );

    // The build is planned; --confirm with the target's name queues it as a job.
    let build = [
        "db",
        "create-index",
        "--target",
        "shop",
        "--table",
        "orders",
        "--columns",
        "customer",
    ];
    let (code, text) = run(dir.path(), &config, &build);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("CREATE INDEX CONCURRENTLY") && text.contains("not queued"),
        "{text}"
    );
    let (code, text) = run(
        dir.path(),
        &config,
        &[&build[..], &["--confirm", "orders"]].concat(),
    );
    assert_eq!(code, Some(2), "the wrong confirmation: {text}");
    assert!(text.contains("type `shop` to confirm"), "{text}");
    let (code, text) = run(
        dir.path(),
        &config,
        &[&build[..], &["--confirm", "shop"]].concat(),
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("queued job 1"), "{text}");
    let (code, text) = run(dir.path(), &config, &["jobs", "show", "1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("\"kind\": \"create_index\"") && text.contains("\"state\": \"pending\""),
        "{text}"
    );

    // Bad names never reach the database.
    for (table, why) in [
        ("orders;drop", "';' is not allowed"),
        ("select", "`select` is a reserved word"),
    ] {
        let (code, text) = run(
            dir.path(),
            &config,
            &[
                "db",
                "create-index",
                "--target",
                "shop",
                "--table",
                table,
                "--columns",
                "customer",
            ],
        );
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains(why), "{table}: {text}");
    }
    let (code, text) = run(
        dir.path(),
        &config,
        &[
            "db",
            "create-index",
            "--target",
            "shop",
            "--table",
            "orders",
            "--columns",
            "nope",
        ],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("nope"), "an unknown column is named: {text}");

    let (code, text) = run(
        dir.path(),
        &config,
        &[
            "db",
            "vacuum",
            "--target",
            "shop",
            "--table",
            "orders",
            "--analyze",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("VACUUM") && text.contains("ANALYZE"),
        "{text}"
    );
    let (code, text) = run(
        dir.path(),
        &config,
        &["db", "slow-queries", "--target", "nope"],
    );
    assert_eq!(code, Some(2));
    assert!(
        text.contains(r#"no PostgreSQL target is named "nope""#),
        "{text}"
    );
}
