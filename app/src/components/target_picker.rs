//! The choice of target on pages that show one target of a kind at a time.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::query_with;

/// Links to each target of a kind when there are several, `current` marked; other query
/// parameters are kept.
pub fn target_picker(
    label: &'static str,
    targets: &[String],
    current: &str,
) -> impl IntoView + use<> {
    let query = use_query_map();
    (targets.len() > 1).then(|| {
        view! {
            <nav aria-label=label class="ranges">
                {targets.iter().map(|t| {
                    let href = query.with(|q| query_with(q, "target", Some(t)));
                    view! { <a href=href aria-current=(t == current).then_some("page")>{t.clone()}</a> }
                }).collect_view()}
            </nav>
        }
    })
}
