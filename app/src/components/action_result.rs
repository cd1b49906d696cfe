//! What became of a form's last submission.

use leptos::prelude::*;

use crate::error::AppError;

/// What became of the last submission of one form: "`label` succeeded." as a status, or
/// "`label` failed: why" as an alert; nothing before the first.
#[component]
pub fn ActionResult(
    label: &'static str,
    value: Signal<Option<Result<(), AppError>>>,
) -> impl IntoView {
    move || match value.get() {
        Some(Err(e)) => Some(
            view! { <p role="alert" class="error">{format!("{label} failed: {e}")}</p> }.into_any(),
        ),
        Some(Ok(())) => Some(
            view! { <p role="status" class="notice">{format!("{label} succeeded.")}</p> }
                .into_any(),
        ),
        None => None,
    }
}
