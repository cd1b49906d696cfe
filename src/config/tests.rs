use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::parse(Path::new("pitwall.toml"), text)
}

#[test]
fn full_file_parses() {
    let config = parse(
        r#"
listen = "0.0.0.0:8080"
data_dir = "/var/lib/pitwall"

[[postgres]]
name = "main"
url = "postgres://app:secret@db:5432/shop"

[[redis]]
name = "cache"
url = "redis://:pw@cache:6379/0"

[[celery]]
name = "tasks"
url = "redis://broker/1"
queues = ["celery", "emails"]
global_keyprefix = "prod:"
"#,
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.targets.len(), 3);
    let tasks = config.target("tasks").unwrap();
    assert_eq!(tasks.kind, TargetKind::Celery);
    assert_eq!(
        tasks.celery,
        Some(CeleryBroker {
            queues: vec!["celery".into(), "emails".into()],
            global_keyprefix: "prod:".into()
        })
    );
    assert_eq!(
        config.target("main").unwrap().url.to_string(),
        "db:5432/shop"
    );
}

#[test]
fn celery_queues_default_to_celery() {
    let config = parse("[[celery]]\nname = \"q\"\nurl = \"redis://b/0\"\n").unwrap();
    assert_eq!(
        config.targets[0].celery.as_ref().unwrap().queues,
        vec!["celery".to_owned()]
    );
}

#[test]
fn redis_targets_carry_application_hit_counters() {
    let config = parse(
        "[[redis]]\nname = \"cache\"\nurl = \"redis://c/0\"\n\n[[redis.counters]]\nname = \"ai\"\n\
         hits = \"ai_cache:hits\"\nmisses = \"ai_cache:misses\"\ncost_per_miss = 0.002\n\n\
         [[redis.counters]]\nname = \"pages\"\nhits = \"p:h\"\nmisses = \"p:m\"\n",
    )
    .unwrap();
    let counters = &config.targets[0].counters;
    assert_eq!(counters.len(), 2);
    assert_eq!(
        counters[0],
        crate::cache::HitCounter {
            name: "ai".into(),
            hits_key: "ai_cache:hits".into(),
            misses_key: "ai_cache:misses".into(),
            cost_per_miss: Some(0.002),
        }
    );
    assert_eq!(counters[1].cost_per_miss, None);

    let bad = |counter: &str| {
        parse(&format!(
            "[[redis]]\nname = \"cache\"\nurl = \"redis://c/0\"\n[[redis.counters]]\n{counter}"
        ))
        .unwrap_err()
        .to_string()
    };
    let same = bad("name = \"ai\"\nhits = \"k\"\nmisses = \"k\"\n");
    assert!(
        same.starts_with("pitwall.toml:4:1: `hits` and `misses` are the same key"),
        "{same}"
    );
    let cost = bad("name = \"ai\"\nhits = \"h\"\nmisses = \"m\"\ncost_per_miss = -1\n");
    assert!(cost.contains("invalid `cost_per_miss` -1"), "{cost}");
    let name = bad("name = \"AI cache\"\nhits = \"h\"\nmisses = \"m\"\n");
    assert!(name.contains("invalid counter name \"AI cache\""), "{name}");
    let missing = bad("name = \"ai\"\nhits = \"h\"\n");
    assert!(missing.contains("missing field `misses`"), "{missing}");
    let twice = bad(
        "name = \"ai\"\nhits = \"h\"\nmisses = \"m\"\n[[redis.counters]]\nname = \"ai\"\nhits = \"h2\"\nmisses = \"m2\"\n",
    );
    assert!(
        twice.contains("duplicate counter name `ai` on target `cache`"),
        "{twice}"
    );
}

#[test]
fn redis_targets_carry_warming_recipes_checked_against_their_source() {
    const HEAD: &str = "[[postgres]]\nname = \"db\"\nurl = \"postgres://h/app\"\n\
                        [[redis]]\nname = \"cache\"\nurl = \"redis://c/0\"\n";
    let config = parse(&format!(
        "{HEAD}[[redis.recipes]]\nname = \"projects\"\npostgres = \"db\"\n\
         sql = \"SELECT id, owner_id FROM projects;\"\nkey = \"cache:project:{{id}}\"\n\
         ttl_secs = 600\ntags = [\"owner:{{owner_id}}\"]\nrefresh_ahead = 0.2\nevery_secs = 300\n"
    ))
    .unwrap();
    let r = &config.targets[1].recipes[0];
    assert_eq!(r.sql, "SELECT id, owner_id FROM projects");
    assert_eq!(r.key.to_string(), "cache:project:{id}");
    assert_eq!(r.value, crate::cache::recipe::WarmValue::Row);
    assert_eq!((r.ttl_secs, r.jitter, r.batch), (600, 0.1, 500));
    assert_eq!((r.refresh_ahead, r.every_secs), (Some(0.2), Some(300)));

    let bad = |recipe: &str| {
        parse(&format!("{HEAD}[[redis.recipes]]\n{recipe}"))
            .unwrap_err()
            .to_string()
    };
    let ok = "name = \"p\"\npostgres = \"db\"\nsql = \"SELECT 1 AS id\"\nkey = \"k:{id}\"\nttl_secs = 60\n";
    let source = bad(&ok.replace("\"db\"", "\"cache\""));
    assert!(
        source.starts_with(
            "pitwall.toml:7:1: recipe `p`: `postgres` names `cache`, a Redis target, not PostgreSQL"
        ),
        "{source}"
    );
    let missing = bad(&ok.replace("\"db\"", "\"nope\""));
    assert!(
        missing.contains("`postgres` names `nope`, which is not a target"),
        "{missing}"
    );
    let writes = bad(&ok.replace("SELECT 1 AS id", "DELETE FROM projects"));
    assert!(
        writes.contains("recipe `p`: `sql` must be one SELECT query"),
        "{writes}"
    );
    let key = bad(&ok.replace("k:{id}", "k:{id"));
    assert!(
        key.contains("recipe `p`: `key` template \"k:{id\" has a `{` that is never closed"),
        "{key}"
    );
    let fresh = bad(&format!("{ok}refresh_ahead = 0.95\n"));
    assert!(
        fresh.contains("recipe `p`: `refresh_ahead` must be above 0 and below 1 - jitter"),
        "{fresh}"
    );
    let twice = bad(&format!("{ok}[[redis.recipes]]\n{ok}"));
    assert!(
        twice.contains("duplicate recipe name `p` (also on target `cache`)"),
        "{twice}"
    );
}

#[test]
fn redis_targets_carry_ttl_policies() {
    let head = "[[redis]]\nname = \"cache\"\nurl = \"redis://c/0\"\n[[redis.ttl_policies]]\n";
    let config = parse(&format!("{head}prefix = \"resp:\"\nmax_ttl_secs = 3600\n")).unwrap();
    assert_eq!(
        config.targets[0].ttl_policies,
        [crate::cache::keyspace::TtlPolicy {
            prefix: "resp:".into(),
            max_ttl_secs: 3600
        }]
    );
    let zero = parse(&format!("{head}prefix = \"resp:\"\nmax_ttl_secs = 0\n")).unwrap_err();
    assert!(
        zero.to_string()
            .starts_with("pitwall.toml:4:1: TTL policy `resp:`: `max_ttl_secs` must be at least 1"),
        "{zero}"
    );
    let twice = parse(&format!(
        "{head}prefix = \"a:\"\nmax_ttl_secs = 1\n[[redis.ttl_policies]]\nprefix = \"a:\"\nmax_ttl_secs = 2\n"
    ))
    .unwrap_err();
    assert!(
        twice
            .to_string()
            .contains("duplicate TTL policy for prefix `a:` on target `cache`"),
        "{twice}"
    );
}

#[test]
fn unknown_key_is_located_and_named() {
    let err = parse("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("pitwall.toml:2:1: unknown field `listen_addr`, expected one of"),
        "{msg}"
    );
}

#[test]
fn unknown_key_inside_a_target() {
    let err = parse("[[redis]]\nname = \"c\"\nurl = \"redis://x\"\npasword = \"p\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:4:1: unknown field `pasword`"),
        "{err}"
    );
}

#[test]
fn bad_url_is_located_and_not_echoed() {
    let err =
        parse("[[postgres]]\nname = \"db\"\nurl = \"postgres//user:hunter2@db\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("pitwall.toml:3:7: invalid URL: relative URL without a base"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn wrong_scheme_for_the_kind() {
    let err = parse("[[redis]]\nname = \"c\"\nurl = \"postgres://db/x\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pitwall.toml:3:7: unsupported scheme `postgres`, expected redis://, rediss:// or redis+sentinel://"
    );
}

#[test]
fn duplicate_target_name_across_kinds() {
    let err = parse(
        "[[postgres]]\nname = \"main\"\nurl = \"postgres://db/x\"\n\n[[redis]]\nname = \"main\"\nurl = \"redis://c\"\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pitwall.toml:6:8: duplicate target name `main` (first defined on line 2); names must be unique across all kinds"
    );
}

#[test]
fn invalid_target_name() {
    let err = parse("[[redis]]\nname = \"Cache One\"\nurl = \"redis://c\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:2:8: invalid target name \"Cache One\""),
        "{err}"
    );
}

#[test]
fn bad_listen_address() {
    let err = parse("listen = \"localhost\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:1:10: invalid socket address syntax"),
        "{err}"
    );
}

#[test]
fn syntax_error_is_located() {
    let err = parse("[[redis]\nname = 1\n").unwrap_err();
    assert!(err.to_string().starts_with("pitwall.toml:1:"), "{err}");
}

#[test]
fn wrong_type_names_the_expectation() {
    let err =
        parse("[[celery]]\nname = \"q\"\nurl = \"redis://b\"\nqueues = \"celery\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:4:10: invalid type: string \"celery\", expected a sequence"),
        "{err}"
    );
}

#[test]
fn environment_adds_targets_and_overrides() {
    let env = |var: &str| match var {
        "PITWALL_ADDR" => Some("127.0.0.1:4000".to_owned()),
        "PITWALL_DATA" => Some("/tmp/pw".to_owned()),
        "DATABASE_URL" => Some("postgres://u:p@h:5/d".to_owned()),
        "REDIS_URL" => Some("redis://h:6/1".to_owned()),
        _ => None,
    };
    let config = Config::load_with(None, env).unwrap();
    assert_eq!(config.listen.port(), 4000);
    assert_eq!(config.data_dir, Path::new("/tmp/pw"));
    let names: Vec<_> = config
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("postgres", TargetKind::Postgres),
            ("redis", TargetKind::Redis)
        ]
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let err =
        Config::load_with(None, |v| (v == "REDIS_URL").then(|| "http://x".to_owned())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable REDIS_URL: unsupported scheme `http`, expected redis://, rediss:// or redis+sentinel://"
    );
    let err =
        Config::load_with(None, |v| (v == "PITWALL_ADDR").then(|| "nope".to_owned())).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment variable PITWALL_ADDR:"),
        "{err}"
    );
}

#[test]
fn config_file_from_variable_and_missing_file() {
    let err = Config::load_with(None, |v| {
        (v == CONFIG_VAR).then(|| "/nonexistent/pitwall.toml".to_owned())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/pitwall.toml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn environment_target_must_not_clash_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pitwall.toml");
    std::fs::write(&path, "[[redis]]\nname = \"redis\"\nurl = \"redis://c\"\n").unwrap();
    let err = Config::load_with(Some(&path), |v| {
        (v == "REDIS_URL").then(|| "redis://d".to_owned())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable REDIS_URL: the config file already defines a target named `redis`"
    );
}

#[test]
fn access_section_parses_and_validates() {
    let config = parse(
        "[access]\nsession_idle_minutes = 30\nlockout_after = 3\n\n[access.trusted_proxy]\nheader = \"X-Forwarded-User\"\nproxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n",
    )
    .unwrap();
    assert_eq!(config.access.settings.idle.as_secs(), 1800);
    assert_eq!(config.access.settings.lockout_after, 3);
    let proxy = config.access.trusted_proxy.unwrap();
    assert_eq!(proxy.header.as_deref(), Some("x-forwarded-user"));
    assert!(proxy.trusts("10.9.8.7".parse().unwrap()));
    assert!(!proxy.trusts("192.168.0.1".parse().unwrap()));
    // A proxy that only terminates TLS: trusted for `X-Forwarded-Proto`, signs nobody in.
    let config = parse("[access.trusted_proxy]\nproxies = [\"127.0.0.1\"]\n").unwrap();
    assert_eq!(config.access.trusted_proxy.unwrap().header, None);
    let err = parse("[access.trusted_proxy]\nheader = \"X User\"\nproxies = [\"127.0.0.1\"]\n")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:2:10: invalid header name \"X User\""),
        "{err}"
    );

    let err = parse("[access.trusted_proxy]\nheader = \"X-User\"\nproxies = [\"proxy.local\"]\n")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:3:12: invalid proxy address \"proxy.local\""),
        "{err}"
    );
    let err = parse("[access]\nlockout_after = 0\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`access.lockout_after` must be at least 1"),
        "{err}"
    );
    let err = parse("[access]\nsession_minutes = 5\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pitwall.toml:2:1: unknown field `session_minutes`"),
        "{err}"
    );
}

#[test]
fn telemetry_intervals() {
    let config =
        parse("[telemetry]\ninterval_ms = 1000\nslow_interval_ms = 5000\ntimeout_ms = 800\n")
            .unwrap();
    assert_eq!(config.telemetry.live.as_millis(), 1000);
    assert_eq!(config.telemetry.slow.as_millis(), 5000);
    assert_eq!(
        parse("").unwrap().telemetry,
        crate::telemetry::Intervals::default()
    );
    let history = parse("[telemetry]\nhistory_bucket_ms = 1000\nhistory_days = 2\n")
        .unwrap()
        .history;
    assert_eq!(
        (history.bucket.as_secs(), history.retention.as_secs()),
        (1, 2 * 24 * 3600)
    );
    let err = parse("[telemetry]\nhistory_days = 0\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`telemetry.history_days` must be at least 1"),
        "{err}"
    );
    let err = parse("[telemetry]\ninterval_ms = 10\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`telemetry.interval_ms` must be at least 100 ms"),
        "{err}"
    );
    let err = parse("[telemetry]\ninterval_ms = 1000\ntimeout_ms = 2000\n").unwrap_err();
    assert!(err.to_string().contains("must not exceed"), "{err}");
}

#[test]
fn resource_thresholds() {
    let config = parse("[resources]\nmemory_pct = 85\n").unwrap();
    assert_eq!(config.thresholds.memory_pct, 85.0);
    assert_eq!(config.thresholds.cpu_pct, 70.0);
    let err = parse("[resources]\ndisk_pct = 120\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`resources.disk_pct` must be between 0 and 100"),
        "{err}"
    );
}

#[test]
fn embed_frame_ancestors() {
    let config = parse("").unwrap();
    assert!(!config.embed.enabled());
    assert_eq!(config.embed.frame_ancestors(), "'none'");
    let config = parse(
        "[embed]\nframe_ancestors = [\"https://portal.example.com/\", \"http://localhost:8080\"]\n",
    )
    .unwrap();
    assert_eq!(
        config.embed.frame_ancestors(),
        "https://portal.example.com http://localhost:8080"
    );
    for bad in [
        "portal.example.com",
        "https://portal.example.com/path",
        "ftp://x",
        "*",
    ] {
        let err = parse(&format!("[embed]\nframe_ancestors = [\"{bad}\"]\n")).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "`embed.frame_ancestors`: `{bad}` is not an origin"
            )),
            "{err}"
        );
        assert!(err.to_string().contains(":1:1:"), "{err}");
    }
}

#[test]
fn job_settings() {
    let config = parse("").unwrap();
    assert_eq!(config.jobs, JobsConfig::default());
    let config = parse("[jobs]\nworkers = 4\nlease_ms = 1000\nretention_days = 7\n").unwrap();
    assert_eq!(config.jobs.workers, 4);
    assert_eq!(config.jobs.lease, std::time::Duration::from_secs(1));
    assert_eq!(config.jobs.retention.as_secs(), 7 * 86_400);
    let err = parse("[jobs]\nworkers = 0\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`jobs.workers` must be between 1 and 64"),
        "{err}"
    );
    let err = parse("[jobs]\nbackoff_base_ms = 5000\nbackoff_max_ms = 1000\n").unwrap_err();
    assert!(err.to_string().contains("must not be less than"), "{err}");
    // The no-op kind is off unless the file or PITWALL_JOBS_NOOP turns it on.
    assert!(!config.jobs.noop);
    assert!(parse("[jobs]\nnoop = true\n").unwrap().jobs.noop);
    let on = Config::load_with(None, |v| (v == "PITWALL_JOBS_NOOP").then(|| "1".to_owned()));
    assert!(on.unwrap().jobs.noop);
    let err = Config::load_with(None, |v| {
        (v == "PITWALL_JOBS_NOOP").then(|| "yes".to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("PITWALL_JOBS_NOOP"), "{err}");
}

#[test]
fn alert_rules_default_and_can_be_replaced_disabled_or_added() {
    let names = |c: &Config| {
        c.alerts
            .iter()
            .map(|r| r.name().to_owned())
            .collect::<Vec<_>>()
    };
    let defaults: Vec<String> = crate::alerts::defaults::names().map(String::from).collect();
    assert_eq!(names(&parse("").unwrap()), defaults);
    assert_eq!(names(&Config::default()), defaults);

    let config = parse(
        r#"
[[redis]]
name = "cache"
url = "redis://c/0"

[alerts]
disable = ["host_cpu_high"]

[[alerts.rules]]
name = "redis_memory_high"
expr = "redis/memory_of_max_pct > 75"
for = "2m"
severity = "critical"
summary = "{target}: {value} %"

[[alerts.rules]]
name = "cache_clients"
expr = "max(redis/clients[5m]) > 500"
summary = "{target}: {value} clients"
targets = ["cache"]
"#,
    )
    .unwrap();
    let got = names(&config);
    assert!(!got.contains(&"host_cpu_high".to_owned()));
    assert_eq!(got.len(), defaults.len());
    assert_eq!(got.last().unwrap(), "cache_clients");
    let replaced = config
        .alerts
        .iter()
        .find(|r| r.name() == "redis_memory_high")
        .unwrap();
    assert_eq!(replaced.expr(), "redis/memory_of_max_pct > 75");

    let only = parse(
        "[alerts]\ndefaults = false\n\n[[alerts.rules]]\nname = \"down\"\nexpr = \"up < 1\"\nsummary = \"{target} down\"\n",
    )
    .unwrap();
    assert_eq!(names(&only), ["down"]);
}

#[test]
fn bad_alert_rules_fail_with_the_rule_and_the_reason() {
    let err = |text: &str| parse(text).unwrap_err().to_string();
    assert_eq!(
        err(
            "[alerts]\n\n[[alerts.rules]]\nname = \"slow\"\nexpr = \"avg(statements/p95[5m]) > 200\"\nsummary = \"x\"\n"
        ),
        "pitwall.toml:3:1: alert rule `slow`: `expr` column 16: `statements` publishes no metric \
         `p95`; it publishes calls_per_sec, mean_ms, p95_ms"
    );
    assert_eq!(
        err("[[alerts.rules]]\nname = \"x\"\nexpr = \"up < 1\"\nsummary = \"x\"\nwhen = \"5m\"\n"),
        "pitwall.toml:5:1: unknown field `when`, expected one of `name`, `expr`, `for`, \
         `keep_firing_for`, `severity`, `summary`, `runbook_url`, `targets`"
    );
    assert_eq!(
        err("[alerts]\ndisable = [\"cpu\"]\n"),
        format!(
            "pitwall.toml:2:12: `alerts.disable`: `cpu` is not a default rule; the defaults are {}",
            crate::alerts::defaults::names()
                .collect::<Vec<_>>()
                .join(", ")
        )
    );
    let twice = "[[alerts.rules]]\nname = \"x\"\nexpr = \"up < 1\"\nsummary = \"x\"\n";
    assert_eq!(
        err(&format!("{twice}{twice}")),
        "pitwall.toml:5:1: duplicate alert rule name `x`"
    );
    assert_eq!(
        err(
            "[[alerts.rules]]\nname = \"x\"\nexpr = \"up < 1\"\nsummary = \"x\"\ntargets = [\"nope\"]\n"
        ),
        "pitwall.toml:1:1: alert rule `x`: `targets`: no target named `nope`"
    );
    assert_eq!(
        err(
            "[[redis]]\nname = \"cache\"\nurl = \"redis://c/0\"\n\n[[alerts.rules]]\nname = \"x\"\n\
             expr = \"database/tps > 1\"\nsummary = \"x\"\ntargets = [\"cache\"]\n"
        ),
        "pitwall.toml:5:1: alert rule `x`: `targets`: `cache` has no `database` metrics"
    );
}

#[test]
fn webhooks_are_checked_and_their_secret_never_prints() {
    let hook = |body: &str| format!("[[alerts.webhooks]]\n{body}\n");
    let good = parse(&format!(
        "[alerts]\nexternal_url = \"https://pitwall.example.com/\"\n\n{}",
        hook("name = \"pager\"\nurl = \"https://hooks.example.com/a\"\nsecret = \"0123456789abcdef\"\nmin_severity = \"critical\"\ntimeout = \"5s\"")
    ))
    .unwrap();
    assert_eq!(good.notify.external_url, "https://pitwall.example.com");
    let w = &good.notify.webhooks[0];
    assert_eq!(
        (w.name.as_str(), w.min_severity),
        ("pager", crate::alerts::Severity::Critical)
    );
    assert_eq!(w.timeout, Duration::from_secs(5));
    assert!(!format!("{good:?}").contains("0123456789abcdef"));
    assert!(parse("").unwrap().notify.external_url.is_empty());

    let err = |text: &str| parse(text).unwrap_err().to_string();
    let url = "url = \"http://127.0.0.1:9/\"";
    let secret = "secret = \"0123456789abcdef\"";
    for (body, why) in [
        (
            format!("name = \"a b\"\n{url}\n{secret}"),
            "a name is 1 to 64 letters",
        ),
        (
            format!("name = \"a\"\nurl = \"ftp://x/\"\n{secret}"),
            "http:// or https://",
        ),
        (
            format!("name = \"a\"\nurl = \"not a url\"\n{secret}"),
            "`url` is not a URL",
        ),
        (
            format!("name = \"a\"\n{url}\nsecret = \"short\""),
            "16 to 256 characters (it has 5)",
        ),
        (
            format!("name = \"a\"\n{url}\n{secret}\nmin_severity = \"loud\""),
            "unknown severity `loud`",
        ),
        (
            format!("name = \"a\"\n{url}\n{secret}\ntimeout = \"5m\""),
            "from 1s to 60s",
        ),
        (format!("name = \"a\"\n{url}"), "missing field `secret`"),
    ] {
        let message = err(&hook(&body));
        assert!(message.starts_with("pitwall.toml:"), "{message}");
        assert!(message.contains(why), "{why}: {message}");
    }
    let one = hook(&format!("name = \"a\"\n{url}\n{secret}"));
    assert!(err(&format!("{one}{one}")).contains("duplicate webhook name `a`"));
    assert!(
        err("[alerts]\nexternal_url = \"pitwall\"\n").contains("`alerts.external_url` must be")
    );
}

#[test]
fn redis_targets_may_be_resolved_by_sentinels_but_brokers_not() {
    let c = parse(
        "[[redis]]\nname = \"cache\"\nurl = \"redis+sentinel://:pw@127.0.0.1:26379/cache/1\"\n",
    )
    .unwrap();
    assert_eq!(c.targets[0].url.redacted(), "127.0.0.1:26379/cache/1");
    let err = |text: &str| parse(text).unwrap_err().to_string();
    assert!(
        err("[[redis]]\nname = \"cache\"\nurl = \"redis+sentinel://127.0.0.1:26379\"\n")
            .contains("names the master after the host")
    );
    assert!(
        err("[[celery]]\nname = \"tasks\"\nurl = \"redis+sentinel://127.0.0.1:26379/m\"\n")
            .contains("unsupported scheme `redis+sentinel`, expected redis:// or rediss://")
    );
}
