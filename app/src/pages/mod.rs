//! Pages whose features are not built yet. Each says what it will show and shows no figures:
//! nothing here may pass for data.

use leptos::prelude::*;
use leptos_meta::Title;

/// A page that is not built yet: its title and what it will show.
#[component]
fn Planned(title: &'static str, will_show: &'static [&'static str]) -> impl IntoView {
    view! {
        <Title text=title/>
        <h1>{title}</h1>
        <section class="planned" aria-label="Not built yet">
            <p>"This page is not built yet. It will show:"</p>
            <ul>{will_show.iter().map(|item| view! { <li>{*item}</li> }).collect_view()}</ul>
        </section>
    }
}

/// Alerts for on-call.
#[component]
pub fn AlertsPage() -> impl IntoView {
    view! {
        <Planned
            title="Alerts"
            will_show=&[
                "firing and pending alerts with since-when, value against threshold and runbook",
                "acknowledgements, silences and alert history",
            ]
        />
    }
}

/// Any path without a page.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <h1>"Not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Go to the overview"</a> "."</p>
    }
}
