//! A sparkline: the shape of a series as an inline SVG line, the same on server and browser.

use leptos::prelude::*;
use pitwall::telemetry::Point;

const WIDTH: f64 = 160.0;
const HEIGHT: f64 = 36.0;

/// The SVG `points` of a series scaled into the box (empty for fewer than two points).
pub fn path(points: &[Point]) -> String {
    if points.len() < 2 {
        return String::new();
    }
    let (t0, t1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let (lo, hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    let span_t = (t1 - t0).max(1.0);
    let span_v = if hi > lo { hi - lo } else { 1.0 };
    points
        .iter()
        .map(|(t, v)| {
            let x = (*t as f64 - t0) / span_t * WIDTH;
            let y = HEIGHT - 2.0 - (v - lo) / span_v * (HEIGHT - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sparkline of `points`, described by `label` for screen readers.
#[component]
pub fn Sparkline(#[prop(into)] points: Signal<Vec<Point>>, label: String) -> impl IntoView {
    view! {
        <svg
            class="sparkline"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            preserveAspectRatio="none"
            role="img"
            aria-label=label
        >
            <polyline points=move || path(&points.get()) fill="none" stroke="currentColor" stroke-width="1.5"/>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_into_the_box() {
        assert_eq!(path(&[(0, 1.0)]), "");
        assert_eq!(path(&[(0, 0.0), (10, 10.0)]), "0.0,34.0 160.0,2.0");
        assert_eq!(
            path(&[(0, 5.0), (10, 5.0)]),
            "0.0,34.0 160.0,34.0",
            "a flat series sits on the floor"
        );
    }
}
