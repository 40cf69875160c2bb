//! # optrail — the widget
//!
//! A Leptos (CSR) app that shows long-running operations live, built by
//! Trunk into a standalone page and also mountable into a host page.
//!
//! The widget decides nothing about ordering, dedupe, retries or recovery:
//! [`driver`] runs `optrail_core::Session` with real browser I/O and
//! publishes what changed, at most once per frame; [`components`] render
//! it and emit intents; [`embed`] and [`js`] mount widgets for hosts, and
//! [`on_load`] mounts the standalone app. See README.md for the
//! architecture and the embed API.
#![cfg(target_arch = "wasm32")]

pub mod components;
pub mod config;
pub mod driver;
pub mod embed;
pub mod js;
pub mod model;
pub mod storage;

pub use config::{Config, IoMode, UrlTemplates, ViewMode};
pub use driver::Driver;
pub use embed::{Widget, mount};

use wasm_bindgen::prelude::*;

/// Runs when the wasm loads: mounts the standalone app where the page asks
/// for it (`<div data-optrail-app>`); host pages mount explicitly instead.
#[wasm_bindgen(start)]
pub fn on_load() {
    crate::js::register_custom_element();
    let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("[data-optrail-app]").ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    // The standalone app lives as long as the page.
    std::mem::forget(mount(element, Config::app()));
}
