//! Small components shared by pages.

mod chart;
mod figure;
mod pager;
mod panel;
mod range;
mod sparkline;

pub use chart::TimeChart;
pub use figure::{Figure, FigureGrid, health_text};
pub use pager::older_href;
pub use panel::panel_card;
pub use range::{RangePicker, follow, query_with, use_range};
pub use sparkline::Sparkline;
