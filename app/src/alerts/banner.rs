//! The banner every page shows while a critical alert fires (and is not silenced).

use leptos::prelude::*;

use super::api::critical_alerts;
use crate::components::refresh_every;

/// A banner naming the critical alerts firing, with a link to the Alerts page; nothing when none
/// fires. Read again every 10 s.
#[component]
pub fn CriticalBanner() -> impl IntoView {
    let pages = Resource::new(|| (), |()| critical_alerts());
    refresh_every(pages);
    view! {
        <Transition>
            {move || Suspend::new(async move {
                let list = pages.await.unwrap_or_default();
                (!list.is_empty()).then(|| {
                    let unacked = list.iter().filter(|p| !p.acknowledged).count();
                    let names: Vec<String> = list
                        .iter()
                        .map(|p| format!("{} on {}", p.rule, p.target))
                        .collect();
                    let heading = match list.len() {
                        1 => "1 critical alert firing".to_owned(),
                        n => format!("{n} critical alerts firing"),
                    };
                    let acked = match unacked {
                        0 => " (all acknowledged)".to_owned(),
                        n if n == list.len() => String::new(),
                        n => format!(" ({n} not acknowledged)"),
                    };
                    view! {
                        <div class="banner critical" role="alert" aria-label="Critical alerts">
                            <strong>{heading}{acked}</strong>": "{names.join(", ")}" · "
                            <a href="/alerts">"Open Alerts"</a>
                        </div>
                    }
                })
            })}
        </Transition>
    }
}
