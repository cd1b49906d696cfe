//! Small components shared by pages.

mod chart;
mod figure;
mod pager;
mod sparkline;

pub use chart::TimeChart;
pub use figure::{Figure, FigureGrid, health_text};
pub use pager::older_href;
pub use sparkline::Sparkline;
