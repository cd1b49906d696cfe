//! Small components shared by pages.

mod chart;
mod figure;
mod sparkline;

pub use chart::TimeChart;
pub use figure::{Figure, FigureGrid};
pub use sparkline::Sparkline;
