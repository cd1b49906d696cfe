//! Celery workers as their heartbeats show them. Workers publish `worker-heartbeat` events every
//! couple of seconds on the broker's `celeryev` fanout channel (`/{db}.celeryev/…`, with the key
//! prefix), also without `-E`; a subscriber keeps the latest figures of each worker. Pub/sub only:
//! nothing is stored on the broker and nothing blocks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::kombu;

/// A worker counts as gone after this many heartbeat periods without one (Celery's own window).
const EXPIRY_PERIODS: f64 = 2.0;
/// Workers not heard from for this long are forgotten.
const FORGET_MS: u64 = 10 * 60_000;
/// The longest wait between attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The latest figures of one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// Its hostname (`celery@web-1`).
    pub hostname: String,
    /// Whether it is alive: heard from within two heartbeat periods and not gone offline.
    pub online: bool,
    /// Tasks it is running.
    pub active: u64,
    /// Tasks per second it completed between its last two heartbeats.
    pub processed_per_sec: Option<f64>,
    /// Its one-minute load average.
    pub load1: Option<f64>,
    /// When it was last heard from, Unix ms (the console's clock).
    pub seen_ms: u64,
}

#[derive(Debug, Clone)]
struct State {
    worker: Worker,
    freq_s: f64,
    offline: bool,
    processed: Option<(u64, u64)>,
}

/// What the workers said, by hostname.
#[derive(Debug, Default)]
pub struct Roster {
    workers: HashMap<String, State>,
}

impl Roster {
    /// Takes one event received at `now_ms`; events other than the worker ones are ignored.
    pub fn apply(&mut self, event: &Value, now_ms: u64) {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(hostname) = event.get("hostname").and_then(Value::as_str) else {
            return;
        };
        if !matches!(
            kind,
            "worker-heartbeat" | "worker-online" | "worker-offline"
        ) {
            return;
        }
        let state = self
            .workers
            .entry(hostname.to_owned())
            .or_insert_with(|| State {
                worker: Worker {
                    hostname: hostname.to_owned(),
                    online: true,
                    active: 0,
                    processed_per_sec: None,
                    load1: None,
                    seen_ms: now_ms,
                },
                freq_s: 2.0,
                offline: false,
                processed: None,
            });
        state.worker.seen_ms = now_ms;
        state.offline = kind == "worker-offline";
        if let Some(freq) = event
            .get("freq")
            .and_then(Value::as_f64)
            .filter(|f| *f > 0.0)
        {
            state.freq_s = freq;
        }
        if let Some(active) = event.get("active").and_then(Value::as_u64) {
            state.worker.active = active;
        }
        if let Some(load) = event.pointer("/loadavg/0").and_then(Value::as_f64) {
            state.worker.load1 = Some(load);
        }
        if let Some(processed) = event.get("processed").and_then(Value::as_u64) {
            if let Some((before, then)) = state.processed
                && processed >= before
                && now_ms > then
            {
                state.worker.processed_per_sec =
                    Some((processed - before) as f64 * 1000.0 / (now_ms - then) as f64);
            }
            state.processed = Some((processed, now_ms));
        }
    }

    /// Every worker heard from lately, by hostname, as of `now_ms`; long-silent ones are dropped.
    pub fn workers(&mut self, now_ms: u64) -> Vec<Worker> {
        self.workers
            .retain(|_, s| now_ms.saturating_sub(s.worker.seen_ms) < FORGET_MS);
        let mut out: Vec<Worker> = self
            .workers
            .values()
            .map(|s| {
                let window = (s.freq_s * EXPIRY_PERIODS * 1000.0) as u64 + 1_000;
                Worker {
                    online: !s.offline && now_ms.saturating_sub(s.worker.seen_ms) <= window,
                    ..s.worker.clone()
                }
            })
            .collect();
        out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        out
    }
}

/// The events in one message of the `celeryev` channel: a kombu envelope whose body is one event
/// or a list of them.
pub fn events(payload: &[u8]) -> Vec<Value> {
    let Ok(envelope) = serde_json::from_slice::<Value>(payload) else {
        return Vec::new();
    };
    let body = if envelope.get("body").is_some() {
        kombu::body(&envelope).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    } else {
        Some(envelope)
    };
    match body {
        Some(Value::Array(list)) => list,
        Some(event @ Value::Object(_)) => vec![event],
        _ => Vec::new(),
    }
}

/// The channel pattern of a broker's worker events.
pub fn pattern(prefix: &str, db: i64) -> String {
    format!("{prefix}/{db}.celeryev/*")
}

/// A subscription to a broker's worker events, kept up (and re-established after failures) by a
/// background task that ends when this is dropped.
pub struct Heartbeats {
    roster: Arc<Mutex<Roster>>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeats {
    /// Subscribes to `pattern` on the server `client` points at.
    pub fn spawn(client: redis::Client, pattern: String, timeout: Duration) -> Self {
        let roster = Arc::new(Mutex::new(Roster::default()));
        let task = tokio::spawn(listen(client, pattern, timeout, roster.clone()));
        Self { roster, task }
    }

    /// The workers as of `now_ms`.
    pub fn workers(&self, now_ms: u64) -> Vec<Worker> {
        self.roster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workers(now_ms)
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(
    client: redis::Client,
    pattern: String,
    timeout: Duration,
    roster: Arc<Mutex<Roster>>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let subscribed = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_secs(1);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let now = crate::status::now_ms();
                    let mut roster = roster.lock().unwrap_or_else(|e| e.into_inner());
                    for event in events(message.get_payload_bytes()) {
                        roster.apply(&event, now);
                    }
                }
                tracing::info!("worker events: the subscription ended; subscribing again");
            }
            Ok(Err(e)) => {
                tracing::debug!("worker events: {}", crate::link::redact(&e.to_string()))
            }
            Err(_) => tracing::debug!("worker events: {}", crate::link::no_answer(timeout)),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn beat(host: &str, processed: u64, active: u64) -> Value {
        serde_json::json!({"type": "worker-heartbeat", "hostname": host, "processed": processed,
            "active": active, "freq": 2.0, "loadavg": [0.5, 0.2, 0.1], "timestamp": 1.0})
    }

    #[test]
    fn heartbeats_give_rates_and_liveness() {
        let mut r = Roster::default();
        r.apply(&beat("celery@a", 100, 3), 10_000);
        r.apply(
            &serde_json::json!({"type": "task-received", "hostname": "celery@a"}),
            10_500,
        );
        let w = &r.workers(10_500)[0];
        assert_eq!((w.online, w.active, w.processed_per_sec), (true, 3, None));
        assert_eq!(w.seen_ms, 10_000, "task events do not count as heartbeats");
        r.apply(&beat("celery@a", 110, 1), 12_000);
        let w = &r.workers(12_000)[0];
        assert_eq!(w.processed_per_sec, Some(5.0));
        assert_eq!(w.load1, Some(0.5));
        assert!(
            r.workers(12_000 + 5_000)[0].online,
            "within two periods and a second"
        );
        assert!(!r.workers(12_000 + 5_001)[0].online, "silent too long");
        assert!(r.workers(12_000 + FORGET_MS).is_empty(), "forgotten");
    }

    #[test]
    fn offline_events_end_a_worker_at_once() {
        let mut r = Roster::default();
        r.apply(&beat("celery@b", 1, 0), 1_000);
        r.apply(
            &serde_json::json!({"type": "worker-offline", "hostname": "celery@b"}),
            1_100,
        );
        assert!(!r.workers(1_200)[0].online);
    }

    #[test]
    fn events_come_in_kombu_envelopes() {
        let event = beat("celery@c", 1, 0);
        let envelope = serde_json::json!({
            "body": base64::engine::general_purpose::STANDARD.encode(event.to_string()),
            "properties": {"body_encoding": "base64"}, "content-type": "application/json",
        });
        assert_eq!(events(envelope.to_string().as_bytes()), vec![event.clone()]);
        let list = serde_json::json!({"body": serde_json::json!([event, event]).to_string()});
        assert_eq!(events(list.to_string().as_bytes()).len(), 2);
        assert!(events(b"garbage").is_empty());
        assert_eq!(pattern("p:", 3), "p:/3.celeryev/*");
    }
}
