//! A job's plan as the start form and a retry show it, and the field its confirmation is typed in.

use leptos::prelude::*;
use pitwall::jobs::Plan;

/// The plan's summary, a warning when it changes data, and its statements.
#[component]
pub fn PlanSteps(plan: Plan) -> impl IntoView {
    view! {
        <p><strong>{plan.summary}</strong></p>
        {plan.destructive.then(|| view! { <p class="error">"This job changes data."</p> })}
        <ol class="statements">
            {plan.statements.into_iter().map(|s| view! { <li><code>{s}</code></li> }).collect_view()}
        </ol>
    }
}

/// Where the name a destructive plan asks for is typed, labelled with what to type.
#[component]
pub fn ConfirmField(expected: Signal<String>, confirmation: RwSignal<String>) -> impl IntoView {
    view! {
        <label>
            {move || format!("Type {} to confirm", expected.get())}
            <input prop:value=move || confirmation.get() on:input=move |ev| confirmation.set(event_target_value(&ev)) autocomplete="off"/>
        </label>
    }
}
