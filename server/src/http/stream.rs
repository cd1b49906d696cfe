//! `GET /api/stream`: one server-sent-events connection per tab, carrying every live update: the
//! telemetry snapshot (`snapshot` events), the targets' statuses (`targets` events), and the
//! pending and running jobs with their progress (`jobs` events).
//!
//! Each `snapshot` event is a whole snapshot with its sequence number as the event id; a
//! reconnecting browser sends `Last-Event-ID` and gets the current snapshot at once unless it
//! already has it (the statuses and jobs always, as they carry no id). Events of each kind are
//! at most one per `MIN_GAP`: a slow client skips to the newest state instead of buffering old
//! ones. Keep-alive comments go out every 15 s.
//!
//! A stream lives as long as its session: it ends within seconds of a sign-out, a role or
//! password change, or the user's removal (see `pitwall::access::Streams`), and a session may
//! have only a few open at once (429 beyond).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use pitwall::TargetStatus;
use pitwall::access::CurrentUser;
use pitwall::jobs::JobSummary;
use pitwall::telemetry::{Snapshot, StreamGuard};
use tokio::sync::watch;

use super::AppState;
use super::access::session_token;

/// The shortest time between two events of one kind to one client.
const MIN_GAP: Duration = Duration::from_millis(500);

/// The kinds of event, in the order they go when several are due at once.
#[derive(Clone, Copy)]
enum Kind {
    Snapshot = 0,
    Targets = 1,
    Jobs = 2,
}

/// What one client's stream has sent and where it listens.
struct Client {
    telemetry: watch::Receiver<Arc<Snapshot>>,
    targets: watch::Receiver<Arc<Vec<TargetStatus>>>,
    jobs: watch::Receiver<Arc<Vec<JobSummary>>>,
    /// Whether the statuses and the jobs changed since they were last sent (true at first, so
    /// a new tab gets them). `changed()` marks a value seen as it wakes, so the wake-up itself
    /// must be remembered.
    unsent: (bool, bool),
    /// The sequence number of the last snapshot sent (or the client already had).
    last: Option<u64>,
    /// When each kind of event last went out.
    sent_at: [Option<tokio::time::Instant>; 3],
    /// Counts the stream as open while it lives.
    _guard: StreamGuard,
}

impl Client {
    /// The kinds with something new for the client.
    fn due(&self) -> Vec<Kind> {
        let mut due = Vec::new();
        if self.last != Some(self.telemetry.borrow().seq) {
            due.push(Kind::Snapshot);
        }
        if self.unsent.0 || self.targets.has_changed().unwrap_or(false) {
            due.push(Kind::Targets);
        }
        if self.unsent.1 || self.jobs.has_changed().unwrap_or(false) {
            due.push(Kind::Jobs);
        }
        due
    }

    /// The next event. Each kind goes at most once per MIN_GAP, and then with the newest state,
    /// so a burst of updates becomes one event and nothing queues up behind a slow client; the
    /// kinds do not wait for one another.
    async fn next(&mut self) -> Option<Event> {
        loop {
            let ready_at = |k: Kind| self.sent_at[k as usize].map(|t| t + MIN_GAP);
            let next = self
                .due()
                .into_iter()
                .min_by_key(|k| ready_at(*k).unwrap_or_else(tokio::time::Instant::now));
            if let Some(kind) = next {
                if let Some(at) = ready_at(kind) {
                    tokio::time::sleep_until(at).await;
                }
                self.sent_at[kind as usize] = Some(tokio::time::Instant::now());
                return match kind {
                    Kind::Targets => {
                        self.unsent.0 = false;
                        let list = self.targets.borrow_and_update().clone();
                        Event::default().event("targets").json_data(&*list).ok()
                    }
                    Kind::Jobs => {
                        self.unsent.1 = false;
                        let list = self.jobs.borrow_and_update().clone();
                        Event::default().event("jobs").json_data(&*list).ok()
                    }
                    Kind::Snapshot => {
                        let snap = self.telemetry.borrow_and_update().clone();
                        self.last = Some(snap.seq);
                        Event::default()
                            .event("snapshot")
                            .id(snap.seq.to_string())
                            .json_data(&*snap)
                            .ok()
                    }
                };
            }
            tokio::select! {
                () = changed(&mut self.telemetry) => {}
                () = changed(&mut self.targets) => self.unsent.0 = true,
                () = changed(&mut self.jobs) => self.unsent.1 = true,
            }
        }
    }
}

/// Waits for the next change; a channel whose sender is gone (a console with no targets has no
/// status checks) never changes again, and the stream ends only when the console stops.
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `GET /api/stream` for the signed-in user (the guard lets nobody else here).
pub async fn stream(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
) -> Response {
    let mut lease = match state.access.open_stream(session_token(&headers), &user) {
        Ok(lease) => lease,
        Err(e) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                e.to_string(),
            )
                .into_response();
        }
    };
    // A new or reconnecting tab gets the current statuses and jobs first.
    let targets = state.board.subscribe();
    let jobs = state.active_jobs.subscribe();
    let client = Client {
        telemetry: state.telemetry.subscribe(),
        targets,
        jobs,
        unsent: (true, true),
        last: headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        sent_at: [None; 3],
        _guard: state.telemetry.stream_opened(),
    };
    let mut stopping = state.stopping.clone();
    let events = futures_util::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        Some((event, client))
    });
    // The stream ends when the console shuts down, so shutting down does not wait for tabs, and
    // when its session ends.
    let events = events.take_until(async move {
        tokio::select! {
            _ = stopping.wait_for(|stopping| *stopping) => {}
            () = lease.ended() => {}
        }
    });
    Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
