//! The live snapshot every page reads: server-rendered first, then kept current by one
//! server-sent-events stream per tab (`/api/stream`), which the browser reconnects by itself.

pub mod api;

use leptos::prelude::*;
use pitwall::telemetry::Snapshot;

use crate::access::Session;

/// The newest snapshot the stream delivered (`None` until the first event).
#[derive(Clone, Copy)]
pub struct Live(pub RwSignal<Option<Snapshot>>);

impl Live {
    /// Provides the live snapshot and, in the browser, opens the tab's stream once signed in.
    pub fn provide() {
        let live = Live(RwSignal::new(None));
        provide_context(live);
        let session = Session::get();
        Effect::new(move |opened: Option<bool>| {
            if opened == Some(true) {
                return true;
            }
            let signed_in = session.0.get().and_then(Result::ok).flatten().is_some();
            if signed_in {
                open_stream(live.0);
            }
            signed_in
        });
    }

    /// The live snapshot from context.
    pub fn get() -> Live {
        expect_context::<Live>()
    }
}

#[cfg(feature = "hydrate")]
fn open_stream(target: RwSignal<Option<Snapshot>>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let Ok(source) = web_sys::EventSource::new("/api/stream") else {
        return;
    };
    let on_snapshot =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(text) = event.data().as_string()
                && let Ok(snapshot) = serde_json::from_str::<Snapshot>(&text)
            {
                target.set(Some(snapshot));
            }
        });
    let _ =
        source.add_event_listener_with_callback("snapshot", on_snapshot.as_ref().unchecked_ref());
    // The stream lives as long as the tab: the browser reconnects it (with Last-Event-ID).
    on_snapshot.forget();
    std::mem::forget(source);
}

#[cfg(not(feature = "hydrate"))]
fn open_stream(_: RwSignal<Option<Snapshot>>) {}
