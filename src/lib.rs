//! # optrail — the widget
//!
//! A Leptos (CSR) app that shows long-running operations live, built by
//! Trunk into a standalone page and also mountable into a host page.
//!
//! The widget decides nothing about ordering, dedupe, retries or recovery:
//! [`driver`] runs `optrail_core::Session` with real browser I/O and
//! publishes a snapshot; [`components`] render the snapshot and emit
//! intents. See README.md for the architecture and the embed API.
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
