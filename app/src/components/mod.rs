//! Small components shared by pages.

mod action_result;
mod chart;
mod columns;
mod figure;
mod pager;
mod panel;
mod range;
mod refresh;
mod sparkline;
mod target_picker;

pub use action_result::ActionResult;
pub use chart::TimeChart;
pub use columns::{Col, Columns};
pub use figure::{Figure, FigureGrid, health_text};
pub use pager::older_href;
pub use panel::{card, panel_card};
pub use range::{RangePicker, follow, query_with, use_range};
pub use refresh::refresh_every;
pub use sparkline::Sparkline;
pub use target_picker::target_picker;
