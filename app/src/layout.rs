//! The frame around every page: header, navigation, the signed-in user, the banners (store not
//! writable, critical alerts), and the main area.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use pitwall::access::{CurrentUser, Role};

use crate::access::Session;
use crate::alerts::CriticalBanner;
use crate::store_banner::StoreBanner;

/// The navigation entries, in order, with the role each needs.
const NAV: [(&str, &str, Role); 11] = [
    ("/", "Overview", Role::Viewer),
    ("/cache", "Cache", Role::Viewer),
    ("/queries", "Queries", Role::Viewer),
    ("/tables", "Tables", Role::Viewer),
    ("/queues", "Queues", Role::Viewer),
    ("/resources", "Resources", Role::Viewer),
    ("/jobs", "Jobs", Role::Viewer),
    ("/alerts", "Alerts", Role::Viewer),
    ("/embeds", "Embeds", Role::Viewer),
    ("/users", "Users", Role::Viewer),
    ("/audit", "Audit", Role::Admin),
];

/// The frame of every page with navigation: the layout of the routes below it.
#[component]
pub fn Layout() -> impl IntoView {
    view! { <Frame><Outlet/></Frame> }
}

/// Header with the product name, the navigation for the user's role and the user, then `children`.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let session = Session::get();
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header class="top">
            <a class="brand" href="/">"Pitwall"</a>
            <Transition>
                {move || Suspend::new(async move {
                    session.0.await.ok().flatten().map(|user| view! { <Navigation user/> })
                })}
            </Transition>
        </header>
        <StoreBanner/>
        <CriticalBanner/>
        <main id="main">{children()}</main>
    }
}

#[component]
fn Navigation(user: CurrentUser) -> impl IntoView {
    let role = user.role;
    view! {
        <nav aria-label="Main">
            <ul>
                {NAV
                    .into_iter()
                    .filter(|(_, _, needed)| role.allows(*needed))
                    .map(|(href, label, _)| view! { <li><A href=href exact=true>{label}</A></li> })
                    .collect_view()}
            </ul>
        </nav>
        <form method="post" action="/logout" class="user">
            <span aria-label="Signed in as">{user.username} " · " <span class="role">{role.as_str()}</span></span>
            <button type="submit" class="link">"Sign out"</button>
        </form>
    }
}
