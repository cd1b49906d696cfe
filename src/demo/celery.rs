//! Celery-format task traffic on Redis, in kombu's layout: priority sub-lists named
//! `<queue>\x06\x16<priority>`, exchange bindings in `_kombu.binding.<exchange>`, reserved messages
//! in `unacked` / `unacked_index`, and worker heartbeats on the `celeryev` fanout channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{BROKER_DB, QUEUES, Scale, every};
use crate::queues::kombu::{self, PRIORITY_STEPS, SEP};

/// Producers stop adding to a queue this deep, so the demo stays bounded.
const MAX_DEPTH: usize = 5_000;

const TASKS: [(&str, &str); 5] = [
    ("celery", "app.tasks.refresh_project_stats"),
    ("emails", "app.mail.send_welcome_email"),
    ("emails", "app.mail.send_digest"),
    ("reports", "app.reports.export_events_csv"),
    ("celery", "app.tasks.sync_billing"),
];

/// The Redis list a message of `priority` on `queue` goes to.
fn list_for(queue: &str, priority: u8) -> String {
    kombu::list("", queue, kombu::step_for(priority))
}

/// Declares each queue's binding on the default `celery` exchange, as a kombu consumer does.
pub async fn declare_bindings(redis: &mut ConnectionManager) -> redis::RedisResult<()> {
    for queue in QUEUES {
        redis
            .sadd::<_, _, ()>(
                kombu::binding_set("", "celery"),
                format!("{queue}{SEP}{SEP}{queue}"),
            )
            .await?;
    }
    Ok(())
}

/// Publishes task messages at a varying rate until aborted.
pub async fn produce(redis: ConnectionManager, scale: Scale) {
    let mut rng = StdRng::from_os_rng();
    every("celery producer", scale.pace, move || {
        let (queue, task) = TASKS[rng.random_range(0..TASKS.len())];
        let priority = PRIORITY_STEPS[rng.random_range(0..PRIORITY_STEPS.len())];
        // Bursts: now and then a batch of reports is queued at once.
        let count = if queue == "reports" && rng.random_bool(0.05) {
            40
        } else {
            1
        };
        let messages: Vec<String> = (0..count)
            .map(|_| message(&mut rng, queue, task, priority))
            .collect();
        let mut redis = redis.clone();
        async move {
            let depth: usize = redis.llen(list_for(queue, priority)).await?;
            if depth < MAX_DEPTH {
                redis
                    .lpush::<_, _, ()>(list_for(queue, priority), messages)
                    .await?;
            }
            Ok::<_, redis::RedisError>(())
        }
    })
    .await
}

/// A worker: takes the next message by priority (never blocking), holds it in `unacked` while it
/// "runs", acknowledges it, and sends a heartbeat every couple of seconds.
pub async fn consume(redis: ConnectionManager, scale: Scale, hostname: &'static str) {
    let processed = Arc::new(AtomicU64::new(0));
    let mut last_beat = 0u64;
    let mut rng = StdRng::from_os_rng();
    every("celery worker", scale.pace * 2, move || {
        let mut redis = redis.clone();
        let runtime = Duration::from_millis(rng.random_range(5..80));
        let tag = uuid(&mut rng);
        let now = unix_time();
        let beat = now - last_beat as f64 >= 2.0;
        if beat {
            last_beat = now as u64;
        }
        let serve_reports = rng.random_bool(0.25);
        let processed = processed.clone();
        async move {
            // Workers serve `celery` and `emails`; `reports` has a slow worker and builds up.
            for queue in ["celery", "emails", "reports"] {
                if queue == "reports" && !serve_reports {
                    continue;
                }
                let lists = kombu::lists("", queue);
                let mut message = None;
                for list in &lists {
                    if let Some(m) = redis.rpop::<_, Option<String>>(list, None).await? {
                        message = Some(m);
                        break;
                    }
                }
                let Some(message) = message else { continue };
                let reserved = format!("[{message}, \"celery\", \"{queue}\"]");
                redis::pipe()
                    .hset("unacked", &tag, reserved)
                    .ignore()
                    .zadd("unacked_index", &tag, now)
                    .ignore()
                    .query_async::<()>(&mut redis)
                    .await?;
                tokio::time::sleep(runtime).await;
                redis::pipe().hdel("unacked", &tag).ignore().zrem("unacked_index", &tag).ignore().query_async::<()>(&mut redis).await?;
                processed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            if beat {
                let event = serde_json::json!({
                    "hostname": hostname, "type": "worker-heartbeat", "timestamp": now,
                    "active": 1, "processed": processed.load(Ordering::Relaxed), "freq": 2.0, "loadavg": [0.1, 0.1, 0.1],
                    "sw_ident": "pitwall-demo", "sw_ver": "0", "sw_sys": "Linux",
                });
                let channel = format!("/{BROKER_DB}.celeryev/worker.heartbeat");
                redis.publish::<_, _, ()>(channel, envelope(&event.to_string(), "worker.heartbeat", &tag, 0, "celeryev")).await?;
            }
            Ok::<_, redis::RedisError>(())
        }
    })
    .await
}

/// A task message in Celery protocol 2, wrapped in kombu's Redis envelope.
fn message(rng: &mut StdRng, queue: &str, task: &str, priority: u8) -> String {
    let id = uuid(rng);
    let arg = rng.random_range(1..100_000u32);
    let body = serde_json::json!([[arg], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
    let mut m: serde_json::Value = serde_json::from_str(&envelope(
        &body.to_string(),
        queue,
        &uuid(rng),
        priority,
        "",
    ))
    .expect("valid JSON");
    m["headers"] = serde_json::json!({
        "lang": "py", "task": task, "id": id, "root_id": id, "parent_id": null, "group": null,
        "shadow": null, "eta": null, "expires": null, "retries": 0, "timelimit": [null, null],
        "argsrepr": format!("({arg},)"), "kwargsrepr": "{}", "origin": "gen42@web-1",
        "ignore_result": false,
    });
    m.to_string()
}

fn envelope(body: &str, routing_key: &str, tag: &str, priority: u8, exchange: &str) -> String {
    serde_json::json!({
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {},
        "properties": {
            "correlation_id": tag, "reply_to": tag, "delivery_mode": 2,
            "delivery_info": {"exchange": exchange, "routing_key": routing_key},
            "priority": priority, "body_encoding": "base64", "delivery_tag": tag,
        },
    })
    .to_string()
}

fn uuid(rng: &mut StdRng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_task_in_kombu_envelope() {
        let mut rng = StdRng::seed_from_u64(7);
        let m: serde_json::Value =
            serde_json::from_str(&message(&mut rng, "emails", "app.mail.x", 6)).unwrap();
        assert_eq!(m["headers"]["task"], "app.mail.x");
        assert_eq!(m["properties"]["delivery_info"]["routing_key"], "emails");
        assert_eq!(m["properties"]["priority"], 6);
        let body = base64::engine::general_purpose::STANDARD
            .decode(m["body"].as_str().unwrap())
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body[0][0].is_u64());
        assert_eq!(uuid(&mut rng).len(), 36);
    }
}
