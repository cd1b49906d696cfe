//! Pages whose data is read again while they are open.

use leptos::prelude::*;

/// How often a page's data is read again, ms.
#[cfg(feature = "hydrate")]
const REFRESH_MS: u64 = 10_000;

/// Re-runs `resource` every [`REFRESH_MS`] while the page is open (in the browser only).
pub fn refresh_every<T>(resource: Resource<T>)
where
    T: 'static + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
{
    #[cfg(feature = "hydrate")]
    if let Ok(h) = set_interval_with_handle(
        move || resource.refetch(),
        std::time::Duration::from_millis(REFRESH_MS),
    ) {
        on_cleanup(move || h.clear());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = resource;
}
