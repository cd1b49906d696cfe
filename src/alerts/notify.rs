//! Webhook notifications in Alertmanager's v4 payload format, so the Slack, PagerDuty and Teams
//! bridges teams already run for Alertmanager take Pitwall's alerts as they are.
//!
//! Every message is first queued in the store, in the same transaction that records the alert's
//! firing or resolution, once per webhook and episode: a message is never queued twice, and one
//! the console could not send before it stopped is sent after it starts again. Each webhook has
//! a sender task of its own, so a receiver that does not answer delays only its own messages: it
//! posts its due messages in the order they were queued (a resolved one waits for its firing
//! one), signs each body with the webhook's shared secret, and after a failure holds its queue
//! with exponential backoff before trying that message again. Logs and errors name a webhook,
//! never its URL (which often carries a token).

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

impl Webhook {
    /// The host (and port) it posts to: what may be shown of its URL.
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_owned();
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
            .unwrap_or_else(|| "?".into())
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("host", &self.host())
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

/// Messages read from the store at once per webhook.
const BATCH: u32 = 50;

/// Sends due messages, one task per webhook, for as long as it runs: each at once when `wake`
/// is notified, else every second. Messages to webhooks no longer configured are given up first.
pub async fn send(store: Arc<dyn Store>, settings: Arc<Settings>, wake: Arc<Notify>) {
    let client = reqwest::Client::builder()
        .user_agent(concat!("pitwall/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client without options builds");
    let names: Vec<String> = settings.webhooks.iter().map(|w| w.name.clone()).collect();
    match store
        .abandon_notifications(&names, "its webhook is not configured any more", now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!("gave up {n} alert notification(s) to webhooks no longer configured")
        }
        Err(e) => tracing::error!("giving up the notifications of removed webhooks: {e}"),
    }
    let mut senders = tokio::task::JoinSet::new();
    let mut wakes = Vec::new();
    for webhook in &settings.webhooks {
        let own = Arc::new(Notify::new());
        wakes.push(own.clone());
        senders.spawn(send_to(client.clone(), store.clone(), webhook.clone(), own));
    }
    // A permit is kept for a sender busy posting, so no wake is lost.
    loop {
        wake.notified().await;
        for own in &wakes {
            own.notify_one();
        }
    }
}

/// The sender of one webhook: its due messages in order; after a failed attempt it waits out
/// the backoff before anything else goes to that webhook, so order is kept.
async fn send_to(
    client: reqwest::Client,
    store: Arc<dyn Store>,
    webhook: Webhook,
    wake: Arc<Notify>,
) {
    loop {
        let due = match store
            .due_notifications(&webhook.name, now_ms(), BATCH)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(
                    webhook = webhook.name,
                    "reading queued alert notifications: {e}"
                );
                Vec::new()
            }
        };
        let mut retry_at = None;
        for n in &due {
            retry_at = deliver(&client, store.as_ref(), &webhook, n).await;
            if retry_at.is_some() {
                break;
            }
        }
        match retry_at {
            Some(at) => {
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await
            }
            None if due.len() < BATCH as usize => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            None => {}
        }
    }
}

/// One attempt at `n`, its outcome recorded; when it failed and will be tried again, when.
async fn deliver(
    client: &reqwest::Client,
    store: &dyn Store,
    webhook: &Webhook,
    n: &Notification,
) -> Option<u64> {
    let now = now_ms();
    let (saved, retry_at) = match post(client, webhook, n).await {
        Ok(()) => {
            tracing::info!(
                webhook = n.webhook,
                id = n.id,
                status = n.status,
                "alert notification sent"
            );
            (store.notification_sent(n.id, now_ms()).await, None)
        }
        Err(error) => {
            let retry_at = backoff(n.attempts + 1).map(|wait| now + wait.as_millis() as u64);
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
            (
                store.notification_failed(n.id, &error, retry_at, now).await,
                retry_at,
            )
        }
    };
    if let Err(e) = saved {
        tracing::error!("recording an alert notification's outcome: {e}");
    }
    retry_at
}

/// One attempt: a 2xx answer is success. The error names the webhook and its host, never its
/// URL.
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
        .map_err(|e| format!("posting to {} at {}: {}", w.name, w.host(), without_url(e)))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} at {} answered {status}", w.name, w.host()))
    }
}

/// What went wrong, with its causes, but not the URL reqwest puts in its errors.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
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
    fn a_webhook_shows_its_host_never_its_url() {
        let hook = Webhook {
            name: "pager".into(),
            url: "https://hooks.example.com:8443/services/T0K3N/s3cr3t?key=abc".into(),
            secret: "0123456789abcdef".into(),
            min_severity: Severity::Info,
            timeout: Duration::from_secs(5),
        };
        assert_eq!(hook.host(), "hooks.example.com:8443");
        let debug = format!("{hook:?}");
        assert!(debug.contains("hooks.example.com:8443"), "{debug}");
        assert!(
            !debug.contains("T0K3N")
                && !debug.contains("s3cr3t")
                && !debug.contains("0123456789abcdef"),
            "{debug}"
        );
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
