//! # optrail-e2e
//!
//! End-to-end tests of optrail: the Trunk-built widget (`dist/`) in
//! headless Chromium, driven over WebDriver (`/usr/bin/chromedriver`),
//! against the real `optrail-server` binary over a SQLite file (or several
//! instances of it on one PostgreSQL database). The scenarios are in
//! `tests/`; this library is their harness:
//!
//! - [`server`]: the server binary as a child process that can be killed
//!   (SIGKILL) and started again on the same port and database;
//! - [`postgres`]: a throw-away PostgreSQL cluster for several instances;
//! - [`chrome`]: chromedriver and browser sessions with fresh profiles;
//! - [`proxy`]: a TCP proxy that cuts every connection on command, or
//!   moves new ones to another instance;
//! - [`host_page`]: a host site on another origin that embeds the widget;
//! - [`page`]: the widget's DOM, read in one script, and its actions;
//! - [`check`]: "the widget shows exactly the server's events";
//! - [`scenario`]: set-up, tear-down, and artifacts on failure.
//!
//! Needs `cargo build -p optrail-server` and `scripts/build-web.sh` first;
//! a missing piece fails with the command to run.

pub mod check;
pub mod chrome;
mod failure;
pub mod host_page;
pub mod page;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod scenario;
pub mod seed_backend;
pub mod server;
pub mod workspace;

pub use failure::{Context, Failure, Result};
pub use page::{DemoSettings, PaymentForm, VmForm, Widget};
pub use scenario::Scenario;
