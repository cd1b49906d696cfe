//! Webhook notifications in Alertmanager's v4 payload format, so the Slack, PagerDuty and Teams
//! bridges teams already run for Alertmanager take Pitwall's alerts as they are.
//!
//! Every message is first queued in the store, in the same transaction that records the alert's
//! firing or resolution, once per webhook and episode: a message is never queued twice, and one
//! the console could not send before it stopped is sent after it starts again. The sender posts
//! due messages in order (a resolved one waits for its firing one), signs each body with the
//! webhook's shared secret, and tries a failed one again with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::Notify;

use super::{Episode, Severity};
use crate::format::format_rfc3339;
use crate::status::now_ms;
use crate::store::{Notification, Outgoing, Store};

/// The header with the body's signature: `sha256=` and the hex HMAC-SHA256, keyed with the
/// webhook's secret, of the timestamp header's value, a `.`, and the body.
pub const SIGNATURE_HEADER: &str = "x-pitwall-signature";
/// The header with the Unix time (seconds) the message was signed at.
pub const TIMESTAMP_HEADER: &str = "x-pitwall-timestamp";
/// The header with the message's number: the same on every attempt, so a receiver that saw an
/// attempt whose answer was lost can drop the repeat.
pub const DELIVERY_HEADER: &str = "x-pitwall-delivery";

/// Attempts at one message before it is given up (about 40 minutes of retrying).
pub const MAX_ATTEMPTS: u32 = 12;
/// The wait after the first failure; it doubles with every further one, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// A webhook receiver from `[[alerts.webhooks]]`.
#[derive(Clone)]
pub struct Webhook {
    /// Its name: Alertmanager's `receiver`.
    pub name: String,
    /// Where to post (http or https).
    pub url: String,
    /// The shared secret the body is signed with.
    pub secret: String,
    /// The least severity sent to it.
    pub min_severity: Severity,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("min_severity", &self.min_severity)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where notifications go and how they link back.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The receivers.
    pub webhooks: Vec<Webhook>,
    /// The console's address as its users reach it, such as `https://pitwall.example.com`:
    /// links in messages (`externalURL`, `generatorURL`, a relative runbook) start with it.
    pub external_url: String,
}

impl Settings {
    /// The messages that tell every webhook taking `episode`'s severity that it is `firing` or
    /// `resolved`.
    pub fn messages(&self, episode: &Episode, status: &str) -> Vec<Outgoing> {
        self.webhooks
            .iter()
            .filter(|w| episode.severity >= w.min_severity)
            .map(|w| Outgoing {
                webhook: w.name.clone(),
                payload: payload(&w.name, &self.external_url, episode, status),
            })
            .collect()
    }
}

/// Alertmanager's webhook body (version 4) for one alert of `episode`, `firing` or `resolved`.
pub fn payload(receiver: &str, external_url: &str, episode: &Episode, status: &str) -> String {
    let base = external_url.trim_end_matches('/');
    let labels: serde_json::Map<String, serde_json::Value> = episode
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), json!(episode.summary));
    annotations.insert(
        "description".into(),
        json!(match episode.value {
            Some(v) => format!("value {v:.2} against threshold {}", episode.threshold),
            None => format!("threshold {}", episode.threshold),
        }),
    );
    if let Some(url) = &episode.runbook_url {
        let url = if url.starts_with('/') {
            format!("{base}{url}")
        } else {
            url.clone()
        };
        annotations.insert("runbook_url".into(), json!(url));
    }
    let ends_at = match (status, episode.ended_ms) {
        ("resolved", Some(ended)) => format_rfc3339(ended),
        _ => "0001-01-01T00:00:00Z".to_owned(),
    };
    let group_labels = json!({ "alertname": episode.rule, "target": episode.target });
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={:?}, target={:?}}}", episode.rule, episode.target),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": base,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": format_rfc3339(episode.started_ms),
            "endsAt": ends_at,
            "generatorURL": format!("{base}{}", episode.chart.as_deref().unwrap_or("/alerts")),
            "fingerprint": super::fingerprint(&episode.key),
        }],
    });
    body.to_string()
}

/// The signature header's value for `body` signed at `timestamp` (Unix seconds) with `secret`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `signature` is the one `secret` gives `body` at `timestamp` (compared in constant
/// time): what a receiver checks.
pub fn verify(secret: &str, timestamp: u64, body: &[u8], signature: &str) -> bool {
    let expected = sign(secret, timestamp, body);
    expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The wait before attempt `attempts + 1` after `attempts` failed ones (none: give up).
pub fn backoff(attempts: u32) -> Option<Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let doubled = FIRST_BACKOFF.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    Some(doubled.min(MAX_BACKOFF))
}

/// Sends due messages until the store is dropped: at once when woken, else every second.
pub async fn send(store: Arc<dyn Store>, settings: Arc<Settings>, wake: Arc<Notify>) {
    let client = reqwest::Client::builder()
        .user_agent(concat!("pitwall/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client without options builds");
    loop {
        let due = match store.due_notifications(now_ms(), 50).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!("reading queued alert notifications: {e}");
                Vec::new()
            }
        };
        for n in &due {
            deliver(&client, store.as_ref(), &settings, n).await;
        }
        if due.len() < 50 {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    store: &dyn Store,
    settings: &Settings,
    n: &Notification,
) {
    let now = now_ms();
    let outcome = match settings.webhooks.iter().find(|w| w.name == n.webhook) {
        None => Err((
            format!("no webhook named `{}` is configured any more", n.webhook),
            false,
        )),
        Some(w) => post(client, w, n).await.map_err(|e| (e, true)),
    };
    let saved = match outcome {
        Ok(()) => {
            tracing::info!(
                webhook = n.webhook,
                id = n.id,
                status = n.status,
                "alert notification sent"
            );
            store.notification_sent(n.id, now_ms()).await
        }
        Err((error, retry)) => {
            let retry_at = retry
                .then(|| backoff(n.attempts + 1))
                .flatten()
                .map(|wait| now + wait.as_millis() as u64);
            match retry_at {
                Some(_) => tracing::warn!(
                    webhook = n.webhook,
                    id = n.id,
                    "alert notification failed, will retry: {error}"
                ),
                None => tracing::error!(
                    webhook = n.webhook,
                    id = n.id,
                    "alert notification given up: {error}"
                ),
            }
            store.notification_failed(n.id, &error, retry_at, now).await
        }
    };
    if let Err(e) = saved {
        tracing::error!("recording an alert notification's outcome: {e}");
    }
}

/// One attempt: a 2xx answer is success.
async fn post(client: &reqwest::Client, w: &Webhook, n: &Notification) -> Result<(), String> {
    let timestamp = now_ms() / 1000;
    let answer = client
        .post(&w.url)
        .timeout(w.timeout)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            SIGNATURE_HEADER,
            sign(&w.secret, timestamp, n.payload.as_bytes()),
        )
        .header(DELIVERY_HEADER, n.id.to_string())
        .body(n.payload.clone())
        .send()
        .await
        .map_err(|e| format!("posting to {}: {e}", w.name))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", w.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode() -> Episode {
        Episode {
            id: 7,
            key: "queue_backlog{target=\"broker\",metric=\"depth:celery\"}".into(),
            rule: "queue_backlog".into(),
            target: "broker".into(),
            labels: vec![
                ("alertname".into(), "queue_backlog".into()),
                ("target".into(), "broker".into()),
                ("severity".into(), "warning".into()),
                ("metric".into(), "depth:celery".into()),
            ],
            severity: Severity::Warning,
            summary: "Broker broker: depth:celery holds 1500 messages".into(),
            runbook_url: Some("/queues".into()),
            value: Some(1500.0),
            threshold: 1000.0,
            chart: Some("/alerts/chart?rule=queue_backlog".into()),
            started_ms: 1_795_305_845_123,
            ended_ms: Some(1_795_305_905_000),
            ack: None,
        }
    }

    #[test]
    fn payload_follows_alertmanager_v4() {
        let body: serde_json::Value = serde_json::from_str(&payload(
            "ops",
            "https://pw.example/",
            &episode(),
            "resolved",
        ))
        .unwrap();
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["receiver"], "ops");
        assert_eq!(body["externalURL"], "https://pw.example");
        let alert = &body["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "queue_backlog");
        assert_eq!(alert["labels"]["metric"], "depth:celery");
        assert_eq!(alert["startsAt"], "2026-11-22T00:04:05.123Z");
        assert_eq!(alert["endsAt"], "2026-11-22T00:05:05.000Z");
        assert_eq!(
            alert["annotations"]["runbook_url"],
            "https://pw.example/queues"
        );
        assert_eq!(
            alert["generatorURL"],
            "https://pw.example/alerts/chart?rule=queue_backlog"
        );
        assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
        let firing: serde_json::Value =
            serde_json::from_str(&payload("ops", "", &episode(), "firing")).unwrap();
        assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    }

    #[test]
    fn signatures_verify_only_with_the_same_secret_time_and_body() {
        let sig = sign("a-shared-secret!", 1_700_000_000, b"{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify("a-shared-secret!", 1_700_000_000, b"{}", &sig));
        assert!(!verify("another-secret!!", 1_700_000_000, b"{}", &sig));
        assert!(!verify("a-shared-secret!", 1_700_000_001, b"{}", &sig));
        assert!(!verify("a-shared-secret!", 1_700_000_000, b"{ }", &sig));
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling_then_gives_up() {
        assert_eq!(backoff(1), Some(Duration::from_secs(1)));
        assert_eq!(backoff(2), Some(Duration::from_secs(2)));
        assert_eq!(backoff(5), Some(Duration::from_secs(16)));
        assert_eq!(backoff(11), Some(MAX_BACKOFF));
        assert_eq!(backoff(MAX_ATTEMPTS), None);
    }

    #[test]
    fn webhooks_get_only_the_severities_they_take() {
        let hook = |name: &str, min_severity| Webhook {
            name: name.into(),
            url: "http://127.0.0.1:9/".into(),
            secret: "0123456789abcdef".into(),
            min_severity,
            timeout: Duration::from_secs(5),
        };
        let settings = Settings {
            webhooks: vec![
                hook("all", Severity::Info),
                hook("pager", Severity::Critical),
            ],
            external_url: String::new(),
        };
        let sent: Vec<String> = settings
            .messages(&episode(), "firing")
            .into_iter()
            .map(|m| m.webhook)
            .collect();
        assert_eq!(sent, ["all"]);
    }
}
