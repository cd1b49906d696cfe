//! `/jobs`: maintenance jobs: start one (plan, confirm), the running and queued ones with live
//! progress and cancel, and the history with filters and bulk actions; `/jobs/{id}`: one job.

mod active;
pub mod api;
mod detail;
mod history;
mod start;

use leptos::prelude::*;
use leptos_meta::Title;

pub use detail::JobPage;

/// The Jobs page.
#[component]
pub fn JobsPage() -> impl IntoView {
    view! {
        <Title text="Jobs"/>
        <h1>"Jobs"</h1>
        <start::StartJobForm/>
        <active::ActiveJobsTable/>
        <history::JobHistory/>
    }
}
