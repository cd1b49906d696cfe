//! On-call: the alert history, acknowledgements, silences and notifications, kept in the store.
//!
//! A recorder follows the alert service: an instance that starts firing opens an episode (the
//! history's row, where its acknowledgement lives) and queues a firing message for each webhook
//! unless a silence holds it; when it resolves the episode closes and the webhooks that were told
//! it fired are told it resolved. Both happen in one store transaction each, and an open episode
//! can exist only once per instance, so nothing is recorded or sent twice, across restarts and
//! consoles sharing a store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::notify::{self, Settings};
use super::{
    Ack, Alert, AlertState, Alerts, Episode, Matcher, OnCallAlert, OnCallView, Rule, Silence,
};
use crate::access::{Actor, Role};
use crate::status::now_ms;
use crate::store::{self, Store};

/// The longest comment kept.
pub const MAX_COMMENT: usize = 500;
/// The shortest and longest silence.
pub const SILENCE_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600));
/// How long ended silences stay listed.
const ENDED_SHOWN: Duration = Duration::from_secs(24 * 3600);
/// How long resolved episodes and ended silences are kept.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// What went wrong on the on-call side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's role is too low.
    #[error("this needs the {0} role")]
    Forbidden(Role),
    /// Bad input, and what was wrong.
    #[error("{0}")]
    Invalid(String),
    /// No firing alert has this key.
    #[error("`{0}` is not firing (it may have resolved)")]
    NotFiring(String),
    /// No active silence has this number.
    #[error("there is no active silence {0}")]
    NoSuchSilence(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The on-call service. Cloning is cheap.
#[derive(Clone)]
pub struct OnCall {
    store: Arc<dyn Store>,
    alerts: Alerts,
    silenced: watch::Receiver<Arc<HashSet<String>>>,
    /// Wakes the recorder when a silence starts or ends.
    kick: Arc<Notify>,
}

impl OnCall {
    /// Starts recording `alerts` in `store` and sending their notifications to the webhooks of
    /// `settings`. `rules` give each restored episode its grace: an episode still open from before
    /// a restart closes only if its instance has not fired again within its rule's `for` and two
    /// minutes.
    pub fn spawn(
        store: Arc<dyn Store>,
        alerts: Alerts,
        rules: &[Rule],
        settings: Settings,
    ) -> Self {
        let settings = Arc::new(settings);
        let wake = Arc::new(Notify::new());
        let grace: HashMap<String, Duration> = rules
            .iter()
            .map(|r| {
                (
                    r.name().to_owned(),
                    r.pending_for + Duration::from_secs(120),
                )
            })
            .collect();
        let (silenced_tx, silenced) = watch::channel(Arc::new(HashSet::new()));
        let kick = Arc::new(Notify::new());
        tokio::spawn(record(
            store.clone(),
            alerts.subscribe(),
            grace,
            settings.clone(),
            wake.clone(),
            silenced_tx,
            kick.clone(),
        ));
        if !settings.webhooks.is_empty() {
            tokio::spawn(notify::send(store.clone(), settings, wake));
        }
        Self {
            store,
            alerts,
            silenced,
            kick,
        }
    }

    /// The keys ([`Alert::key`]) of the alerts a silence held at the last evaluation.
    pub fn silenced(&self) -> Arc<HashSet<String>> {
        self.silenced.borrow().clone()
    }

    /// The alerts with their acknowledgements and silences, and the silences themselves.
    pub async fn view(&self) -> Result<OnCallView> {
        let now = now_ms();
        let alerts = self.alerts.snapshot();
        let acks: HashMap<String, Ack> = self
            .store
            .open_episodes()
            .await?
            .into_iter()
            .filter_map(|e| Some((e.key, e.ack?)))
            .collect();
        let silences = self
            .store
            .silences(now.saturating_sub(ENDED_SHOWN.as_millis() as u64))
            .await?;
        let alerts = alerts
            .iter()
            .filter(|a| a.state != AlertState::Inactive)
            .map(|a| OnCallAlert {
                ack: (a.state == AlertState::Firing)
                    .then(|| acks.get(&a.key()).cloned())
                    .flatten(),
                silenced_by: silencing(&silences, a, now),
                alert: a.clone(),
            })
            .collect();
        Ok(OnCallView {
            read_at_ms: now,
            alerts,
            silences,
        })
    }

    /// Acknowledges the firing instance `key` (an operator or admin), with a comment.
    pub async fn ack(&self, actor: &Actor, key: &str, comment: &str) -> Result<()> {
        allowed(actor)?;
        let comment = comment_of(comment)?;
        let ack = Ack {
            by: actor.name.clone(),
            at_ms: now_ms(),
            comment: comment.clone(),
        };
        let audit = actor.audit(
            "alert.ack",
            Some(key),
            serde_json::json!({ "comment": comment }),
            "ok",
        );
        if self.store.ack_episode(key, &ack, &audit).await? {
            Ok(())
        } else {
            Err(Error::NotFiring(key.to_owned()))
        }
    }

    /// Silences the alerts matching `matchers` for `lasting` (an operator or admin), with a
    /// comment; returns the silence's number.
    pub async fn silence(
        &self,
        actor: &Actor,
        matchers: Vec<Matcher>,
        lasting: Duration,
        comment: &str,
    ) -> Result<i64> {
        allowed(actor)?;
        let comment = comment_of(comment)?;
        if matchers.is_empty() {
            return Err(Error::Invalid(
                "a silence needs at least one matcher".into(),
            ));
        }
        let (shortest, longest) = SILENCE_RANGE;
        if lasting < shortest || lasting > longest {
            return Err(Error::Invalid(
                "a silence lasts from 1 minute to 30 days".into(),
            ));
        }
        let now = now_ms();
        let silence = Silence {
            id: 0,
            matchers,
            comment,
            created_by: actor.name.clone(),
            created_ms: now,
            ends_ms: now + lasting.as_millis() as u64,
            expired: None,
        };
        let text: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
        let audit = actor.audit(
            "alert.silence",
            None,
            serde_json::json!({
                "matchers": text.join(", "),
                "ends_at": crate::format_utc(silence.ends_ms),
                "comment": silence.comment,
            }),
            "ok",
        );
        let id = self.store.insert_silence(&silence, &audit).await?;
        self.kick.notify_one();
        Ok(id)
    }

    /// Ends silence `id` now (an operator or admin).
    pub async fn expire(&self, actor: &Actor, id: i64) -> Result<()> {
        allowed(actor)?;
        let audit = actor.audit(
            "alert.unsilence",
            Some(&id.to_string()),
            serde_json::json!({}),
            "ok",
        );
        if self
            .store
            .expire_silence(id, now_ms(), &actor.name, &audit)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NoSuchSilence(id))
        }
    }

    /// Past and current firing episodes, newest first: before episode `before` when given.
    pub async fn history(&self, before: Option<i64>, limit: u32) -> Result<Vec<Episode>> {
        Ok(self.store.episodes(before, limit.clamp(1, 200)).await?)
    }
}

fn allowed(actor: &Actor) -> Result<()> {
    if actor.role.allows(Role::Operator) {
        Ok(())
    } else {
        Err(Error::Forbidden(Role::Operator))
    }
}

fn comment_of(comment: &str) -> Result<String> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(Error::Invalid(
            "a comment is needed: say what you are doing about it".into(),
        ));
    }
    if comment.chars().count() > MAX_COMMENT {
        return Err(Error::Invalid(format!(
            "the comment is longer than {MAX_COMMENT} characters"
        )));
    }
    Ok(comment.to_owned())
}

/// The first active silence that holds `alert`.
fn silencing(silences: &[Silence], alert: &Alert, now: u64) -> Option<i64> {
    silences
        .iter()
        .find(|s| s.active(now) && s.matches(alert))
        .map(|s| s.id)
}

/// The episode an instance starts when it fires.
fn episode_of(alert: &Alert) -> Episode {
    Episode {
        id: 0,
        key: alert.key(),
        rule: alert.rule.clone(),
        target: alert.target.clone(),
        labels: alert.label_set(),
        severity: alert.severity,
        summary: alert.summary.clone(),
        runbook_url: alert.runbook_url.clone(),
        value: alert.value,
        threshold: alert.threshold,
        chart: alert.chart_path(alert.since_ms),
        started_ms: alert.since_ms,
        ended_ms: None,
        ack: None,
    }
}

/// An open episode the recorder follows.
struct Open {
    episode: Episode,
    /// For an episode found open at start: until when it may stay open without firing again.
    restored_until: Option<u64>,
}

/// Follows the alerts and records episodes and their messages (see the module's doc).
async fn record(
    store: Arc<dyn Store>,
    mut alerts: watch::Receiver<Arc<Vec<Alert>>>,
    grace: HashMap<String, Duration>,
    settings: Arc<Settings>,
    wake: Arc<Notify>,
    silenced: watch::Sender<Arc<HashSet<String>>>,
    kick: Arc<Notify>,
) {
    let mut open: HashMap<String, Open> = HashMap::new();
    let started = now_ms();
    match store.open_episodes().await {
        Ok(episodes) => {
            for episode in episodes {
                let wait = grace.get(&episode.rule).copied().unwrap_or_default();
                open.insert(
                    episode.key.clone(),
                    Open {
                        episode,
                        restored_until: Some(started + wait.as_millis() as u64),
                    },
                );
            }
        }
        Err(e) => tracing::error!("reading open alert episodes: {e}"),
    }
    let mut pruned = 0;
    loop {
        let now = now_ms();
        if now.saturating_sub(pruned) >= 3_600_000 {
            pruned = now;
            match store
                .prune_alerts(now.saturating_sub(RETENTION.as_millis() as u64))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(episodes = n, "pruned resolved alert episodes"),
                Err(e) => tracing::error!("pruning alert episodes: {e}"),
            }
        }
        let current = alerts.borrow_and_update().clone();
        match step(store.as_ref(), &settings, &current, &mut open).await {
            Ok(held) => {
                silenced.send_if_modified(|now| {
                    let changed = **now != held;
                    if changed {
                        *now = Arc::new(held);
                    }
                    changed
                });
            }
            Err(e) => tracing::error!("recording alerts: {e}"),
        }
        wake.notify_one();
        tokio::select! {
            changed = alerts.changed() => if changed.is_err() { return },
            // A silence started or ended: the held alerts change now.
            () = kick.notified() => {}
            // Restored episodes close after their grace even when nothing changes.
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// One pass: opens episodes for newly firing instances and closes those that resolved; returns
/// the keys of the alerts a silence holds.
async fn step(
    store: &dyn Store,
    settings: &Settings,
    current: &[Alert],
    open: &mut HashMap<String, Open>,
) -> store::Result<HashSet<String>> {
    let now = now_ms();
    let silences = store.silences(now).await?;
    let by_key: HashMap<String, &Alert> = current.iter().map(|a| (a.key(), a)).collect();
    let held: HashSet<String> = by_key
        .iter()
        .filter(|(_, a)| silencing(&silences, a, now).is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for (key, alert) in &by_key {
        if alert.state != AlertState::Firing {
            continue;
        }
        if let Some(o) = open.get_mut(key) {
            o.restored_until = None;
            continue;
        }
        let episode = episode_of(alert);
        let messages = if held.contains(key) {
            Vec::new()
        } else {
            settings.messages(&episode, "firing")
        };
        let id = match store.start_episode(&episode, &messages, now).await? {
            Some(id) => id,
            // Another console sharing the store recorded it first: follow its episode.
            None => match store
                .open_episodes()
                .await?
                .into_iter()
                .find(|e| e.key == *key)
            {
                Some(e) => e.id,
                None => continue,
            },
        };
        open.insert(
            key.clone(),
            Open {
                episode: Episode { id, ..episode },
                restored_until: None,
            },
        );
    }
    let mut closed = Vec::new();
    for (key, o) in open.iter() {
        let ended = match by_key.get(key) {
            Some(a) if a.state == AlertState::Resolved => Some(a.since_ms),
            Some(_) => None,
            None if o.restored_until.is_some_and(|until| now < until) => None,
            None => Some(now),
        };
        if let Some(ended) = ended {
            let episode = Episode {
                ended_ms: Some(ended),
                ..o.episode.clone()
            };
            let messages = settings.messages(&episode, "resolved");
            store.end_episode(episode.id, ended, &messages, now).await?;
            closed.push(key.clone());
        }
    }
    for key in closed {
        open.remove(&key);
    }
    Ok(held)
}
