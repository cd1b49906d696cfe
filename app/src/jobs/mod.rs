//! `/jobs`: maintenance jobs: start one (plan, confirm), the running and queued ones with live
//! progress and cancel, and the history with filters and bulk actions; `/jobs/{id}`: one job.

mod active;
pub mod api;
mod detail;
mod history;
mod plan;
mod start;

use leptos::prelude::*;
use leptos_meta::Title;

pub use detail::JobPage;

/// The link to the Jobs page with a job of `kind` on `target` filled in with `params`, to plan
/// and confirm there.
pub(crate) fn start_link(kind: &str, target: &str, params: &serde_json::Value) -> String {
    use pitwall::percent_encode;
    format!(
        "/jobs?kind={}&target={}&params={}",
        percent_encode(kind),
        percent_encode(target),
        percent_encode(&params.to_string())
    )
}

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
