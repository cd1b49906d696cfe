//! Pitwall's face: the Leptos pages, components and server functions, and the wasm hydrate entry.
//!
//! Built with `ssr` into the server binary and with `hydrate` into the browser's wasm. Server
//! functions stay thin: they read from the engine (`pitwall`) handles the server provides as
//! context.

// Deeply nested views (tables of live rows) need more than the default type-query depth.
#![recursion_limit = "256"]

mod access;
mod alerts;
mod cache;
mod components;
mod embed;
pub mod error;
mod jobs;
mod layout;
mod live;
mod overview;
mod pages;
mod queries;
mod queues;
mod resources;
mod shell;
mod store_banner;
mod tables;

pub use shell::{App, shell};

/// The browser entry point: attaches the wasm to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
