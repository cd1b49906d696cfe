//! A card for one panel of figures read on their own: the figures, or why they could not be
//! read, so one failed read never costs the page.

use leptos::prelude::*;

/// A card named `label` showing `panel`'s figures with `show`, or its error as an alert.
pub fn panel_card<T>(
    label: impl Into<String>,
    panel: pitwall::Panel<T>,
    show: impl FnOnce(T) -> AnyView,
) -> impl IntoView {
    card(
        label,
        match panel {
            Ok(v) => show(v),
            Err(e) => view! { <p role="alert" class="error">{e}</p> }.into_any(),
        },
    )
}

/// A card headed and named `label` around `body`.
pub fn card(label: impl Into<String>, body: AnyView) -> impl IntoView {
    let label = label.into();
    let heading = label.clone();
    view! {
        <section class="card" aria-label=label>
            <h2>{heading}</h2>
            {body}
        </section>
    }
}
