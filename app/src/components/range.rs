//! The time-range picker of history charts. The range lives in the URL (`?range=1h`), so a view
//! can be linked and the picker works without JavaScript; `live` keeps the last 15 minutes
//! current from the tab's stream.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use pitwall::percent_encode;
use pitwall::telemetry::{Family, Point};

use crate::live::Live;

/// One range on offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Its value in the URL.
    pub key: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Its length in ms.
    pub ms: u64,
}

impl Range {
    /// Whether it follows the stream.
    pub fn is_live(self) -> bool {
        self.key == RANGES[0].key
    }
}

/// The ranges on offer; the first is the default.
pub const RANGES: [Range; 6] = [
    Range {
        key: "live",
        label: "Live",
        ms: 15 * 60_000,
    },
    Range {
        key: "15m",
        label: "15 min",
        ms: 15 * 60_000,
    },
    Range {
        key: "1h",
        label: "1 hour",
        ms: 3_600_000,
    },
    Range {
        key: "6h",
        label: "6 hours",
        ms: 6 * 3_600_000,
    },
    Range {
        key: "24h",
        label: "24 hours",
        ms: 24 * 3_600_000,
    },
    Range {
        key: "7d",
        label: "7 days",
        ms: 7 * 24 * 3_600_000,
    },
];

/// The range named by `key`, or the default.
pub fn range_of(key: &str) -> Range {
    RANGES
        .iter()
        .find(|r| r.key == key)
        .copied()
        .unwrap_or(RANGES[0])
}

/// The range the URL asks for.
pub fn use_range() -> Memo<Range> {
    let query = use_query_map();
    Memo::new(move |_| range_of(&query.read().get("range").unwrap_or_default()))
}

/// The current query with `key` set to `value` (or removed, for `None`), as a link's query
/// string: `?a=1&b=2`, or empty when nothing is left.
pub fn query_with(query: &ParamsMap, key: &str, value: Option<&str>) -> String {
    let params: Vec<String> = query
        .clone()
        .into_iter()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(value.map(|v| (key.to_owned(), v.to_owned())))
        .map(|(k, v)| format!("{}={}", percent_encode(&k), percent_encode(&v)))
        .collect();
    if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    }
}

/// Links to each range, the current one marked; other query parameters are kept.
#[component]
pub fn RangePicker() -> impl IntoView {
    let query = use_query_map();
    let range = use_range();
    view! {
        <nav aria-label="Time range" class="ranges">
            {RANGES
                .iter()
                .map(|r| {
                    let href = move || query.with(|q| query_with(q, "range", Some(r.key)));
                    let current = move || (range.get() == *r).then_some("page");
                    view! { <a href=href aria-current=current>{r.label}</a> }
                })
                .collect_view()}
        </nav>
    }
}

/// Appends each new value of `metric` of `target`'s `family` from the live snapshot to `points`,
/// dropping what is older than the live range.
pub fn follow(
    live: Live,
    target: String,
    family: Family,
    metric: String,
    points: RwSignal<Vec<Point>>,
) {
    Effect::new(move |_| {
        let Some((at, v)) = live.0.with(|s| {
            let r = s.as_ref()?.reading(&target, family)?;
            Some((r.at_ms, r.value(&metric)?))
        }) else {
            return;
        };
        points.update(|p| {
            if p.last().is_none_or(|last| last.0 < at) {
                p.push((at, v));
                let oldest = at.saturating_sub(RANGES[0].ms);
                p.retain(|(t, _)| *t >= oldest);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_links() {
        assert_eq!(range_of("6h").ms, 6 * 3_600_000);
        assert!(range_of("bogus").is_live());
        let mut query = ParamsMap::new();
        query.insert("peek", "tasks/a b".to_owned());
        query.insert("range", "1h".to_owned());
        assert_eq!(
            query_with(&query, "range", Some("24h")),
            "?peek=tasks/a%20b&range=24h"
        );
        assert_eq!(query_with(&query, "peek", None), "?range=1h");
        assert_eq!(query_with(&ParamsMap::new(), "peek", None), "");
    }
}
