//! The HTML document and the router.

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::access::{AuditPage, LoginPage, Session, SetupPage, UsersPage};
use crate::alerts::{AlertChartPage, AlertsPage};
use crate::cache::CachePage;
use crate::embed::{EmbedPage, EmbedsPage};
use crate::jobs::{JobPage, JobsPage};
use crate::layout::{Frame, Layout};
use crate::live::Live;
use crate::overview::OverviewPage;
use crate::pages::NotFound;
use crate::queries::{QueriesPage, QueryPage};
use crate::queues::QueuesPage;
use crate::resources::ResourcesPage;
use crate::tables::TablesPage;

/// The whole HTML document, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: routes. Pages render whole on the server before they are sent
/// (`SsrMode::Async`), so they are complete without JavaScript and their status codes stand. Every
/// page sits in the layout (header and navigation) except the embeddable panels.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Session::provide();
    Live::provide();
    mark_hydrated();
    view! {
        <Title formatter=|page: String| format!("{page} · Pitwall")/>
        <Router>
            <Routes fallback=|| view! { <Frame><NotFound/></Frame> }>
                <Route path=path!("/embed/:target/:panel") view=EmbedPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=Layout ssr=SsrMode::Async>
                    <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/cache") view=CachePage ssr=SsrMode::Async/>
                    <Route path=path!("/queries") view=QueriesPage ssr=SsrMode::Async/>
                    <Route path=path!("/queries/:target/:queryid") view=QueryPage ssr=SsrMode::Async/>
                    <Route path=path!("/tables") view=TablesPage ssr=SsrMode::Async/>
                    <Route path=path!("/queues") view=QueuesPage ssr=SsrMode::Async/>
                    <Route path=path!("/resources") view=ResourcesPage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs") view=JobsPage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs/:id") view=JobPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts") view=AlertsPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts/chart") view=AlertChartPage ssr=SsrMode::Async/>
                    <Route path=path!("/embeds") view=EmbedsPage ssr=SsrMode::Async/>
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Sets `data-hydrated` on `<body>` once the wasm has taken over, for tests and scripts.
fn mark_hydrated() {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// Sends the page's Content-Security-Policy: scripts only from the console or carrying this
/// response's nonce (the hydration script), wasm allowed; framing only of embeddable panels by
/// the configured origins.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    // Only the embeddable panels may be framed, and only by the configured origins.
    let embedded =
        use_context::<http::request::Parts>().is_some_and(|p| p.uri.path().starts_with("/embed/"));
    let ancestors = match use_context::<pitwall::config::EmbedPolicy>() {
        Some(policy) if embedded => policy.frame_ancestors(),
        _ => "'none'".to_owned(),
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {ancestors}",
        &*nonce
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}
