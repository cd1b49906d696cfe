//! `GET /api/stream`: one server-sent-events connection per tab, carrying every live update: the
//! telemetry snapshot (`snapshot` events), the targets' statuses (`targets` events), and the
//! pending and running jobs with their progress (`jobs` events).
//!
//! Each `snapshot` event is a whole snapshot with its sequence number as the event id; a
//! reconnecting browser sends `Last-Event-ID` and gets the current snapshot at once unless it
//! already has it (the statuses always, as they carry no id). Events are at most one per
//! `MIN_GAP`: a slow client skips to the newest state instead of buffering old ones. Keep-alive
//! comments go out every 15 s.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use pitwall::TargetStatus;
use pitwall::jobs::JobSummary;
use pitwall::telemetry::{Snapshot, StreamGuard};
use tokio::sync::watch;

use super::AppState;

/// The shortest time between two events to one client.
const MIN_GAP: Duration = Duration::from_millis(500);

/// What one client's stream has sent and where it listens.
struct Client {
    telemetry: watch::Receiver<Arc<Snapshot>>,
    targets: watch::Receiver<Arc<Vec<TargetStatus>>>,
    jobs: watch::Receiver<Arc<Vec<JobSummary>>>,
    /// The sequence number of the last snapshot sent (or the client already had).
    last: Option<u64>,
    sent_at: Option<tokio::time::Instant>,
    /// Counts the stream as open while it lives.
    _guard: StreamGuard,
}

impl Client {
    /// The next event: new statuses or jobs first (they are small), then a newer snapshot.
    async fn next(&mut self) -> Option<Event> {
        loop {
            let statuses = self.targets.has_changed().unwrap_or(false);
            let jobs = self.jobs.has_changed().unwrap_or(false);
            let snapshot = self.last != Some(self.telemetry.borrow().seq);
            if statuses || jobs || snapshot {
                // At most one event per MIN_GAP, and then the newest state, so a burst of
                // updates becomes one event and nothing queues up behind a slow client.
                if let Some(sent_at) = self.sent_at {
                    tokio::time::sleep_until(sent_at + MIN_GAP).await;
                }
                self.sent_at = Some(tokio::time::Instant::now());
                return if statuses {
                    let list = self.targets.borrow_and_update().clone();
                    Event::default().event("targets").json_data(&*list).ok()
                } else if jobs {
                    let list = self.jobs.borrow_and_update().clone();
                    Event::default().event("jobs").json_data(&*list).ok()
                } else {
                    let snap = self.telemetry.borrow_and_update().clone();
                    self.last = Some(snap.seq);
                    Event::default()
                        .event("snapshot")
                        .id(snap.seq.to_string())
                        .json_data(&*snap)
                        .ok()
                };
            }
            tokio::select! {
                changed = self.telemetry.changed() => changed.ok()?,
                changed = self.targets.changed() => changed.ok()?,
                changed = self.jobs.changed() => changed.ok()?,
            }
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut targets = state.board.subscribe();
    let mut jobs = state.active_jobs.subscribe();
    // A new or reconnecting tab gets the current statuses and jobs first.
    targets.mark_changed();
    jobs.mark_changed();
    let client = Client {
        telemetry: state.telemetry.subscribe(),
        targets,
        jobs,
        last: headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        sent_at: None,
        _guard: state.telemetry.stream_opened(),
    };
    let mut stopping = state.stopping.clone();
    let events = futures_util::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        Some((Ok(event), client))
    });
    // The stream ends when the console shuts down, so shutting down does not wait for tabs.
    let events = events.take_until(async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
