//! `pitwall status` against a real Redis holding Celery messages in kombu's layout: several
//! queues, priority sub-lists and a `global_keyprefix`; the counts printed equal what was put in.

mod common;

use pitwall::harness::RedisServer;
use redis::AsyncCommands;

const SEP: &str = "\x06\x16";

#[tokio::test]
async fn status_counts_celery_queues_as_kombu_lays_them_out() {
    let redis = RedisServer::start().await.unwrap();
    let client = redis::Client::open(redis.url(1)).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    // `celery` and `emails` are bound (discovered); `reports` is only configured.
    for queue in ["celery", "emails"] {
        let _: () = c
            .sadd(
                "pw:_kombu.binding.celery",
                format!("{queue}{SEP}{SEP}{queue}"),
            )
            .await
            .unwrap();
    }
    // Outside the prefix: must not count.
    let _: () = c.rpush("celery", "stray").await.unwrap();
    for (list, n) in [
        ("pw:celery".to_owned(), 3),
        (format!("pw:celery{SEP}3"), 2),
        (format!("pw:celery{SEP}9"), 1),
        (format!("pw:emails{SEP}6"), 4),
        ("pw:reports".to_owned(), 5),
    ] {
        for i in 0..n {
            let _: () = c.lpush(&list, format!("{{\"n\": {i}}}")).await.unwrap();
        }
    }
    let _: () = c.hset("pw:unacked", "tag-1", "[]").await.unwrap();
    let _: () = c.hset("pw:unacked", "tag-2", "[]").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pitwall.toml");
    std::fs::write(
        &config,
        format!(
            "[[celery]]\nname = \"tasks\"\nurl = \"{}\"\nqueues = [\"reports\"]\nglobal_keyprefix = \"pw:\"\n",
            redis.url(1)
        ),
    )
    .unwrap();
    let out = common::command(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |queue: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("queue {queue} ")))
            .unwrap_or_else(|| panic!("no line for {queue}: {text}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("celery"), "6");
    assert_eq!(line("emails"), "4");
    assert_eq!(line("reports"), "5");
    assert!(
        text.contains("all queues") && text.contains("15 waiting, 2 unacked"),
        "{text}"
    );
    assert!(text.contains("tasks") && text.contains(" up "), "{text}");

    // `pitwall peek` reads the next messages, priority 0 first, and takes none.
    let peek = |args: &[&str]| {
        let out = common::command(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("peek")
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = peek(&["tasks", "celery", "--count", "4"]);
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].trim_start().starts_with("1  (unnamed)"), "{text}");
    assert!(
        lines[0].contains("priority 0") && lines[3].contains("priority 3"),
        "{text}"
    );
    let depth: usize = c.llen("pw:celery").await.unwrap();
    assert_eq!(depth, 3, "nothing was taken");
    let (code, text) = peek(&["tasks", "secrets"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains(r#"broker "tasks" has no queue named "secrets""#),
        "{text}"
    );
    let (code, text) = peek(&["tasks", "celery", "--count", "0"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("a peek shows 1 to 50 messages, not 0"),
        "{text}"
    );

    // A target that is down is reported, and the command fails.
    drop(redis);
    let out = common::command(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(" down ") && text.contains("1 target(s) down"),
        "{text}"
    );
}
