//! The banner every page shows while the console's store takes no writes: reading goes on,
//! changes are refused until it does.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use pitwall::writable::NotWritable;

use crate::components::refresh_every;
use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::ssr::{access, current_user};

/// Why the console's store takes no writes, while it does not (any signed-in user; nothing on
/// the sign-in page).
#[server(endpoint = "store_writable", input = GetUrl)]
pub async fn store_writable() -> Result<Option<NotWritable>, AppError> {
    if current_user().is_none() {
        return Ok(None);
    }
    Ok(access()?.writable().state())
}

/// Says that the store takes no writes, since when and why; nothing while it does. Read again
/// every 10 s.
#[component]
pub fn StoreBanner() -> impl IntoView {
    let state = Resource::new(|| (), |()| store_writable());
    refresh_every(state);
    view! {
        <Transition>
            {move || Suspend::new(async move {
                state.await.ok().flatten().map(|w| view! {
                    <div class="banner store" role="alert" aria-label="Store not writable">
                        <strong>"The console's store takes no writes"</strong>
                        " since " {pitwall::format_utc(w.since_ms)} " (" {w.reason} "). "
                        "Pages go on showing what is current; changes are refused until it takes writes again."
                    </div>
                })
            })}
        </Transition>
    }
}
