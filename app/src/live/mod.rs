//! The live state every page reads (the telemetry snapshot, the targets' statuses, the pending
//! and running jobs): server-rendered first, then kept current by one server-sent-events stream
//! per tab (`/api/stream`), which the browser reconnects by itself.

pub mod api;

use leptos::prelude::*;
use pitwall::TargetStatus;
use pitwall::jobs::JobSummary;
use pitwall::telemetry::Snapshot;

use crate::access::Session;

/// The newest snapshot the stream delivered (`None` until the first event).
#[derive(Clone, Copy)]
pub struct Live(pub RwSignal<Option<Snapshot>>);

/// The newest target statuses the stream delivered (`None` until the first event).
#[derive(Clone, Copy)]
pub struct LiveTargets(pub RwSignal<Option<Vec<TargetStatus>>>);

/// The newest pending and running jobs the stream delivered (`None` until the first event).
#[derive(Clone, Copy)]
pub struct LiveJobs(pub RwSignal<Option<Vec<JobSummary>>>);

impl Live {
    /// Provides the live state and, in the browser, opens the tab's stream once signed in.
    pub fn provide() {
        let live = Live(RwSignal::new(None));
        let targets = LiveTargets(RwSignal::new(None));
        let jobs = LiveJobs(RwSignal::new(None));
        provide_context(live);
        provide_context(targets);
        provide_context(jobs);
        let session = Session::get();
        Effect::new(move |opened: Option<bool>| {
            if opened == Some(true) {
                return true;
            }
            let signed_in = session.0.get().and_then(Result::ok).flatten().is_some();
            if signed_in {
                open_stream(live, targets, jobs);
            }
            signed_in
        });
    }

    /// The live snapshot from context.
    pub fn get() -> Live {
        expect_context::<Live>()
    }
}

impl LiveTargets {
    /// The live target statuses from context.
    pub fn get() -> LiveTargets {
        expect_context::<LiveTargets>()
    }
}

impl LiveJobs {
    /// The live jobs from context.
    pub fn get() -> LiveJobs {
        expect_context::<LiveJobs>()
    }
}

#[cfg(feature = "hydrate")]
fn open_stream(live: Live, targets: LiveTargets, jobs: LiveJobs) {
    let Ok(source) = web_sys::EventSource::new("/api/stream") else {
        return;
    };
    listen(&source, "snapshot", live.0);
    listen(&source, "targets", targets.0);
    listen(&source, "jobs", jobs.0);
    // The stream lives as long as the tab: the browser reconnects it (with Last-Event-ID).
    std::mem::forget(source);
}

/// Sets `signal` from every `name` event of `source`, for the life of the tab.
#[cfg(feature = "hydrate")]
fn listen<T>(source: &web_sys::EventSource, name: &str, signal: RwSignal<Option<T>>)
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let on_event =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(text) = event.data().as_string()
                && let Ok(value) = serde_json::from_str::<T>(&text)
            {
                signal.set(Some(value));
            }
        });
    let _ = source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
    on_event.forget();
}

#[cfg(not(feature = "hydrate"))]
fn open_stream(_: Live, _: LiveTargets, _: LiveJobs) {}
