//! Embeddable panels: the framed panel itself (`/embed/{target}/{panel}`) and the Embeds page
//! where panels are listed and tokens minted and revoked.

pub mod api;
mod manage;
mod panel;

pub use manage::EmbedsPage;
pub use panel::EmbedPage;
