//! `GET /api/stream`: one server-sent-events connection per tab, carrying every snapshot.
//!
//! Each event is a whole snapshot with its sequence number as the event id; a reconnecting
//! browser sends `Last-Event-ID` and gets the current snapshot at once unless it already has it.
//! Events are at most one per `MIN_GAP`: a slow client skips to the newest snapshot instead of
//! buffering old ones. Keep-alive comments go out every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};

use super::AppState;

/// The shortest time between two events to one client.
const MIN_GAP: Duration = Duration::from_millis(500);

pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let guard = state.telemetry.stream_opened();
    let rx = state.telemetry.subscribe();
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let mut stopping = state.stopping.clone();
    let events = futures_util::stream::unfold(
        (rx, guard, last, None::<tokio::time::Instant>),
        |(mut rx, guard, last, sent_at)| async move {
            // Wait for something newer than what the client has…
            while last == Some(rx.borrow().seq) {
                rx.changed().await.ok()?;
            }
            // …but send at most one event per MIN_GAP, and then the newest snapshot, so a burst of
            // updates becomes one event and nothing queues up behind a slow client.
            if let Some(sent_at) = sent_at {
                tokio::time::sleep_until(sent_at + MIN_GAP).await;
            }
            let snapshot = rx.borrow_and_update().clone();
            let event = Event::default()
                .event("snapshot")
                .id(snapshot.seq.to_string())
                .json_data(&*snapshot)
                .ok()?;
            Some((
                Ok(event),
                (
                    rx,
                    guard,
                    Some(snapshot.seq),
                    Some(tokio::time::Instant::now()),
                ),
            ))
        },
    );
    // The stream ends when the console shuts down, so shutting down does not wait for tabs.
    let events = events.take_until(async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
