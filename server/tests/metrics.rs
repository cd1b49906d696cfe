//! `GET /metrics` of a real console watching a real Redis: refused without the configured bearer
//! token, and with it a body a Prometheus text parser reads, naming the expected families with
//! figures in base units: the target up, the Redis figures, the host's, the active jobs, a firing
//! alert and the console's own HTTP requests (counter and latency histogram); the stored history
//! exported as JSON by `pitwall metrics --export`. A stopped Redis reads as down.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Console};
use pitwall::harness::RedisServer;
use prometheus_parse::{Scrape, Value};

const TOKEN: &str = "scrape-token-0123456789";

async fn scrape(console: &Console) -> Scrape {
    let body = reqwest::Client::new()
        .get(console.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    assert!(
        body.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = body.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of `name` with `labels`, if the scrape has it.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is {other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_name_the_expected_families() {
    let mut redis = RedisServer::start().await.unwrap();
    let console = Console::spawn(&format!(
        "[[redis]]\nname = \"cache\"\nurl = \"{}\"\n\n[metrics]\ntoken = \"{TOKEN}\"\n\n\
         [telemetry]\ninterval_ms = 1000\ntimeout_ms = 800\nhistory_bucket_ms = 2000\n\n\
         [[alerts.rules]]\nname = \"redis_busy\"\nexpr = \"redis/clients >= 1\"\nfor = \"0s\"\nseverity = \"critical\"\nsummary = \"{{target}} has {{value}} clients\"\n",
        redis.url(0)
    ))
    .await;

    // No token, or the wrong one: refused, and nothing is told.
    let plain = reqwest::get(console.url("/metrics")).await.unwrap();
    assert_eq!(plain.status(), 401);
    assert_eq!(plain.headers()["www-authenticate"], "Bearer");
    let wrong = reqwest::Client::new()
        .get(console.url("/metrics"))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let (status, _) = console.health().await;
    assert_eq!(status, 200);
    // Wait for the target's check and two Redis rounds (rates need two).
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = scrape(&console).await;
        if value(&s, "pitwall_target_up", &[("target", "cache")]) == Some(1.0)
            && value(&s, "pitwall_redis_ops_per_second", &[("target", "cache")]).is_some()
            && value(
                &s,
                "pitwall_alert",
                &[("rule", "redis_busy"), ("state", "firing")],
            )
            .is_some()
        {
            break s;
        }
        assert!(Instant::now() < deadline, "{:?}", s.samples);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        s.docs.get("pitwall_target_up").map(String::as_str),
        Some("1 when the target answered its last check, 0 when it did not or was not checked yet")
    );
    assert_eq!(
        value(
            &s,
            "pitwall_target_up",
            &[("target", "cache"), ("kind", "redis")]
        ),
        Some(1.0)
    );
    let memory = value(
        &s,
        "pitwall_redis_used_memory_bytes",
        &[("target", "cache")],
    )
    .unwrap();
    assert!(memory > 100_000.0, "{memory}");
    let cpu = value(&s, "pitwall_host_cpu_ratio", &[("target", "host")]).unwrap();
    assert!((0.0..=1.0).contains(&cpu), "a ratio, not a percent: {cpu}");
    assert_eq!(
        value(&s, "pitwall_jobs_active", &[("state", "pending")]),
        Some(0.0)
    );
    // The start-up polls and the call above, each counted once and timed once.
    let health = value(
        &s,
        "pitwall_http_requests_total",
        &[("method", "GET"), ("route", "/health"), ("status", "200")],
    )
    .unwrap();
    assert!(health >= 1.0, "{health}");
    let histogram = s
        .samples
        .iter()
        .find(|x| {
            x.metric == "pitwall_http_request_duration_seconds"
                && x.labels.get("route") == Some("/health")
        })
        .expect("a latency histogram for /health");
    match &histogram.value {
        Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, health, "{buckets:?}")
        }
        other => panic!("{other:?}"),
    }

    // The history in the store, exported as JSON by the command line.
    let out = console.data_dir().with_file_name("history.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    let series = loop {
        let (code, printed) = tokio::task::block_in_place(|| {
            console.cli(&[
                "metrics",
                "--export",
                out.to_str().unwrap(),
                "--since",
                "10m",
            ])
        });
        assert_eq!(code, Some(0), "{printed}");
        assert!(printed.starts_with("wrote "), "{printed}");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let memory = doc["series"].as_array().unwrap().iter().find(|s| {
            s["target"] == "cache" && s["family"] == "redis" && s["metric"] == "used_memory_bytes"
        });
        if let Some(series) = memory {
            break series.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no Redis memory history yet: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(series["bucket_ms"], 2000);
    assert!(
        series["points"][0]["avg"].as_f64().unwrap() > 100_000.0,
        "{series}"
    );
    let (code, printed) = tokio::task::block_in_place(|| {
        console.cli(&["metrics", "--export", "x.json", "--since", "soon"])
    });
    assert_eq!(code, Some(2));
    assert!(
        printed.contains("--since must be a duration such as `30m`"),
        "{printed}"
    );
    let (code, printed) = tokio::task::block_in_place(|| {
        console.cli(&["metrics", "--export", "/nonexistent-dir/x.json"])
    });
    assert_eq!(code, Some(2));
    assert!(
        printed.contains("writing /nonexistent-dir/x.json"),
        "{printed}"
    );

    // `pitwall status` asks the console for its alerts: a critical one firing fails it.
    let addr = console.base.strip_prefix("http://").unwrap().to_owned();
    let (code, printed) =
        tokio::task::block_in_place(|| console.cli(&["status", "--console", &addr]));
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("alerts of the console at"), "{printed}");
    assert!(
        printed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["firing", "critical", "redis_busy", "cache"]),
        "{printed}"
    );
    assert!(
        printed.contains("error: 1 critical alert(s) firing"),
        "{printed}"
    );

    // Silenced, it is exported as such and no longer fails `pitwall status`.
    let admin = console.sign_in("admin", ADMIN_PASSWORD).await;
    let (code, body) = console
        .call(
            &admin,
            "silence_alerts",
            &[
                ("matchers", "alertname=redis_busy"),
                ("lasting", "1h"),
                ("comment", "expected in this test"),
            ],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while value(
        &scrape(&console).await,
        "pitwall_alert",
        &[("rule", "redis_busy"), ("silenced", "true")],
    )
    .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the silence never showed in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (code, printed) =
        tokio::task::block_in_place(|| console.cli(&["status", "--console", &addr]));
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        printed.contains("firing    critical  redis_busy                   cache (silenced)"),
        "{printed}"
    );

    // A stopped Redis reads as down, and its figures are no longer exported as current.
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrape(&console).await;
        if value(&s, "pitwall_target_up", &[("target", "cache")]) == Some(0.0)
            && value(
                &s,
                "pitwall_redis_used_memory_bytes",
                &[("target", "cache")],
            )
            .is_none()
        {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", s.samples);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
