//! Starting a job: fill it in, see its plan (the dry run: what it would do, with the exact
//! statements), confirm (by typing the target's name when it changes data), start.

use leptos::prelude::*;
use pitwall::access::Role;
use pitwall::jobs::{Plan, Priority};

use leptos_router::hooks::use_query_map;

use super::api::{JobRequest, PlanJob, StartJob, job_kinds};
use super::plan::{ConfirmField, PlanSteps};
use crate::access::{Session, missing_role};

/// The form that plans and starts a job. `?kind=…&target=…&params=…` fills it in (a suggestion
/// on another page links here).
#[component]
pub fn StartJobForm() -> impl IntoView {
    let session = Session::get();
    let asked = use_query_map().get_untracked();
    // Without `?kind=`, the first kind the console runs (set once the list arrives).
    let kind = RwSignal::new(asked.get("kind").unwrap_or_default());
    let target = RwSignal::new(asked.get("target").unwrap_or_default());
    let parameters = RwSignal::new(asked.get("params").unwrap_or_else(|| "{}".to_owned()));
    let kinds = Resource::new(|| (), |_| job_kinds());
    let priority = RwSignal::new(Priority::Normal);
    let attempts = RwSignal::new(3u32);
    let confirmation = RwSignal::new(String::new());
    let plan = ServerAction::<PlanJob>::new();
    let start = ServerAction::<StartJob>::new();
    let request = move || JobRequest {
        kind: kind.get(),
        target: Some(target.get()).filter(|t| !t.trim().is_empty()),
        parameters: parameters.get(),
        priority: priority.get(),
        max_attempts: attempts.get(),
    };
    // A changed form needs a new plan.
    Effect::new(move |_| {
        let _ = request();
        plan.value().set(None);
        start.value().set(None);
    });
    view! {
        <section aria-labelledby="start-heading" class="card">
            <h2 id="start-heading">"Start a job"</h2>
            <Transition>
                {move || Suspend::new(async move {
                    let denied = missing_role(session.0.await.ok().flatten().as_ref(), Role::Operator);
                    let kinds = kinds.await.unwrap_or_default();
                    if kind.get_untracked().is_empty()
                        && let Some((first, _)) = kinds.first()
                    {
                        kind.set(first.clone());
                    }
                    let disabled = denied.is_some();
                    let described = disabled.then_some("start-denied");
                    view! {
                        {denied.map(|why| view! { <p id="start-denied" class="notice">{why}</p> })}
                        <form class="row" on:submit=move |ev| {
                            ev.prevent_default();
                            plan.dispatch(PlanJob { request: request() });
                        }>
                            <label>
                                "Kind"
                                <select prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev)) disabled=disabled aria-describedby=described>
                                    {kinds.into_iter().map(|(name, role)| {
                                        let label = if name == "noop" { "noop (changes nothing)".to_owned() } else { format!("{name} ({})", role.as_str()) };
                                        let selected = kind.get_untracked() == name;
                                        view! { <option value=name.clone() selected=selected>{label}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>"Target" <input placeholder="none" prop:value=move || target.get() on:input=move |ev| target.set(event_target_value(&ev)) disabled=disabled aria-describedby=described/></label>
                            <label class="wide">
                                "Parameters"
                                <input class="code" prop:value=move || parameters.get() on:input=move |ev| parameters.set(event_target_value(&ev)) disabled=disabled aria-describedby=described/>
                            </label>
                            <label>
                                "Priority"
                                <select on:change=move |ev| {
                                    if let Ok(p) = event_target_value(&ev).parse() {
                                        priority.set(p);
                                    }
                                } disabled=disabled aria-describedby=described>
                                    {Priority::ALL.into_iter().map(|p| view! {
                                        <option value=p.as_str() selected=p == Priority::Normal>{p.as_str()}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>
                                "Attempts"
                                <input type="number" min="1" max="100" size="3" prop:value=move || attempts.get().to_string()
                                    on:input=move |ev| attempts.set(event_target_value(&ev).parse().unwrap_or(1)) disabled=disabled aria-describedby=described/>
                            </label>
                            <button type="submit" disabled=disabled aria-describedby=described>"Plan"</button>
                        </form>
                    }
                })}
            </Transition>
            {move || plan.value().get().map(|result| match result {
                Err(e) => view! { <p role="alert" class="error">{format!("Planning failed: {e}")}</p> }.into_any(),
                Ok(p) => view! { <PlanView plan=p target confirmation start request=Signal::derive(request)/> }.into_any(),
            })}
            {move || start.value().get().map(|result| match result {
                Err(e) => view! { <p role="alert" class="error">{format!("Starting failed: {e}")}</p> }.into_any(),
                Ok(id) => view! {
                    <p role="status" class="notice">"Job " <a href=format!("/jobs/{id}")>{id}</a> " is queued."</p>
                }.into_any(),
            })}
        </section>
    }
}

/// The plan of the job in the form, and its confirmation.
#[component]
fn PlanView(
    plan: Plan,
    target: RwSignal<String>,
    confirmation: RwSignal<String>,
    start: ServerAction<StartJob>,
    request: Signal<JobRequest>,
) -> impl IntoView {
    let destructive = plan.destructive;
    let expected = Signal::derive(move || {
        let t = target.get();
        if t.trim().is_empty() {
            request.get().kind
        } else {
            t.trim().to_owned()
        }
    });
    view! {
        <div class="plan" role="region" aria-label="Plan">
            <PlanSteps plan/>
            <form class="row" on:submit=move |ev| {
                ev.prevent_default();
                start.dispatch(StartJob { request: request.get(), confirmation: confirmation.get() });
            }>
                {destructive.then(|| view! { <ConfirmField expected confirmation/> })}
                <button type="submit" disabled=move || start.pending().get() || (destructive && confirmation.get().trim() != expected.get())>
                    "Start job"
                </button>
            </form>
        </div>
    }
}
