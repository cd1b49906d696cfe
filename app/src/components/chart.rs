//! A time-series chart drawn by ECharts (through charming) in the browser after hydration and
//! updated in place as points arrive. The server renders its frame with a text summary, so the
//! page reads the same without JavaScript.

use charming::Chart;
use charming::component::Axis;
use charming::element::{
    AxisType, Label, MarkLine, MarkLineData, MarkLineVariant, Tooltip, Trigger,
};
use charming::series::Line;
use leptos::prelude::*;
use pitwall::telemetry::Point;

use pitwall::Unit;
use pitwall::embed::Theme;

/// The ECharts options of a line of `points` named `title`, with `threshold` drawn across and
/// a vertical line at `marker` (Unix ms).
// Drawn only in the browser; built (and tested) natively too.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn options(
    title: &str,
    unit: Unit,
    points: &[Point],
    threshold: Option<f64>,
    marker: Option<(u64, &str)>,
) -> Chart {
    let data: Vec<Vec<f64>> = points.iter().map(|(t, v)| vec![*t as f64, *v]).collect();
    let mut line = Line::new().name(title).show_symbol(false).data(data);
    let mut marks = Vec::new();
    if let Some(t) = threshold {
        let mark = MarkLineData::new().name("threshold").y_axis(t);
        marks.push(MarkLineVariant::Simple(mark));
    }
    if let Some((at, name)) = marker {
        // Labelled with its name: the default label is the axis value, here Unix ms.
        let mark = MarkLineData::new()
            .name(name)
            .x_axis(at as f64)
            .label(Label::new().formatter("{b}"));
        marks.push(MarkLineVariant::Simple(mark));
    }
    if !marks.is_empty() {
        line = line.mark_line(MarkLine::new().silent(true).data(marks));
    }
    let mut y_axis = Axis::new().type_(AxisType::Value).name(unit.symbol());
    if let Some(max) = axis_max(points, threshold) {
        y_axis = y_axis.max(max);
    }
    Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(Axis::new().type_(AxisType::Time))
        .y_axis(y_axis)
        .series(line)
}

/// The top of the value axis when the line stays under `threshold`: a round figure above the
/// threshold, so its line is in view (ECharts scales the axis to the data alone). `None`
/// leaves the axis to ECharts.
fn axis_max(points: &[Point], threshold: Option<f64>) -> Option<f64> {
    let t = threshold.filter(|t| *t > 0.0)?;
    if points.iter().any(|(_, v)| *v >= t) {
        return None;
    }
    let wanted = t * 1.05;
    // Dividing by a power of ten keeps 0.6 exact where multiplying by 0.1 would not.
    let power = wanted.log10().floor() as i32;
    let scaled = |step: f64| match power {
        0.. => step * 10f64.powi(power),
        _ => step / 10f64.powi(-power),
    };
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(scaled)
        .find(|max| *max >= wanted)
}

/// A chart of `points` captioned `title`; its summary is the text for screen readers and pages
/// without JavaScript.
#[component]
pub fn TimeChart(
    id: String,
    #[prop(into)] title: String,
    unit: Unit,
    #[prop(into)] points: Signal<Vec<Point>>,
    threshold: Option<f64>,
    /// Light, dark, or the viewer's system setting (the default).
    #[prop(optional)]
    theme: Theme,
    /// A moment to mark with a vertical line (Unix ms), and its name.
    #[prop(optional)]
    marker: Option<(u64, &'static str)>,
    /// The page's heading already names the chart: its caption is for screen readers only.
    #[prop(optional)]
    named_by_page: bool,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    draw(
        id.clone(),
        title.clone(),
        unit,
        points,
        threshold,
        theme,
        marker,
    );
    #[cfg(not(feature = "hydrate"))]
    let _ = (threshold, theme, marker);
    let caption = title.clone();
    let summary = Signal::derive(move || {
        let p = points.get();
        match (p.first(), p.last()) {
            (Some(_), Some((_, last))) => {
                let (lo, hi) = p.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, v)| {
                    (lo.min(*v), hi.max(*v))
                });
                format!(
                    "{title}: {} points, from {} to {}, last {}",
                    p.len(),
                    unit.format(lo),
                    unit.format(hi),
                    unit.format(*last)
                )
            }
            _ => format!("{title}: no data in this range yet"),
        }
    });
    view! {
        <figure class="chart-frame">
            <figcaption class:sr-only=named_by_page>{caption}</figcaption>
            <div id=id class="chart" role="img" aria-label=summary></div>
        </figure>
    }
}

#[cfg(feature = "hydrate")]
fn draw(
    id: String,
    title: String,
    unit: Unit,
    points: Signal<Vec<Point>>,
    threshold: Option<f64>,
    theme: pitwall::embed::Theme,
    marker: Option<(u64, &'static str)>,
) {
    use charming::WasmRenderer;
    use charming::theme::Theme;

    let chart = StoredValue::new_local(None::<charming::Echarts>);
    let ready = echarts_loaded();
    Effect::new(move |_| {
        if !ready.get() {
            return;
        }
        let options = options(&title, unit, &points.get(), threshold, marker);
        chart.update_value(|handle| match handle {
            Some(echarts) => WasmRenderer::update(echarts, &options),
            None => {
                let dark = match theme {
                    pitwall::embed::Theme::Dark => true,
                    pitwall::embed::Theme::Light => false,
                    pitwall::embed::Theme::Auto => window()
                        .match_media("(prefers-color-scheme: dark)")
                        .ok()
                        .flatten()
                        .is_some_and(|m| m.matches()),
                };
                let theme = if dark { Theme::Dark } else { Theme::Default };
                *handle = WasmRenderer::new_opt(None, Some(240))
                    .theme(theme)
                    .render(&id, &options)
                    .ok();
            }
        });
    });
}

/// Where ECharts is served from (copied from its npm package at set-up).
#[cfg(feature = "hydrate")]
const ECHARTS: &str = "/vendor/echarts.min.js";

/// Turns true once ECharts is loaded. Only pages with charts load it: the first chart adds its
/// script to the page, and every chart waits for that script's `load`.
#[cfg(feature = "hydrate")]
fn echarts_loaded() -> RwSignal<bool> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let present = js_sys::Reflect::has(&window(), &"echarts".into()).unwrap_or(false);
    let ready = RwSignal::new(present);
    if present {
        return ready;
    }
    let doc = document();
    let script = match doc.get_element_by_id("echarts-script") {
        Some(script) => script,
        None => {
            let Ok(script) = doc.create_element("script") else {
                return ready;
            };
            let _ = script.set_attribute("id", "echarts-script");
            let _ = script.set_attribute("src", ECHARTS);
            if let Some(head) = doc.head() {
                let _ = head.append_child(&script);
            }
            script
        }
    };
    let on_load = Closure::once_into_js(move || ready.set(true));
    let _ = script.add_event_listener_with_callback("load", on_load.unchecked_ref());
    ready
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_points_unit_and_threshold() {
        let chart = options(
            "CPU",
            Unit::Percent,
            &[(1_000, 10.0), (3_000, 20.0)],
            Some(70.0),
            Some((2_000, "alert start")),
        );
        let json = serde_json::to_value(&chart).unwrap();
        assert_eq!(json["xAxis"]["type"], "time");
        assert_eq!(json["yAxis"]["name"], "%");
        assert_eq!(
            json["series"][0]["data"],
            serde_json::json!([[1000.0, 10.0], [3000.0, 20.0]])
        );
        assert_eq!(json["series"][0]["markLine"]["data"][0]["yAxis"], 70.0);
        assert_eq!(json["series"][0]["markLine"]["data"][1]["xAxis"], 2000.0);
        assert_eq!(
            json["series"][0]["markLine"]["data"][1]["label"]["formatter"], "{b}",
            "the moment is labelled by its name, not its Unix ms"
        );
        assert_eq!(json["yAxis"]["max"], 80.0, "the threshold stays in view");
    }

    #[test]
    fn the_axis_reaches_over_a_threshold_the_line_stays_under() {
        let under = [(1, 10.0), (2, 66.0)];
        assert_eq!(axis_max(&under, Some(80.0)), Some(100.0));
        assert_eq!(axis_max(&under, Some(70.0)), Some(80.0));
        assert_eq!(axis_max(&under, Some(1_000.0)), Some(1_200.0));
        assert_eq!(axis_max(&[(1, 0.2)], Some(0.5)), Some(0.6));
        assert_eq!(axis_max(&under, Some(20.0)), None, "the line crosses it");
        assert_eq!(axis_max(&under, None), None);
        assert_eq!(axis_max(&[], Some(90.0)), Some(100.0));
    }
}
