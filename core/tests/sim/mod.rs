//! A deterministic simulation of one client, one server and the network
//! between them, driven by a seeded RNG and a virtual clock.
//!
//! - [`server`]: per-operation streams, the subscription registry, pages.
//! - [`world`]: the network (sockets that drop, go silent, delay; history
//!   requests that fail, come late or twice), the client (a [`Session`]
//!   that reloads, goes offline, hides its tab) and the event loop that ties
//!   them together, then checks the outcome.
//! - [`seed`]: the same client behind the core's compat translator against
//!   a seed-format server (no seq, a socket per operation, duplicated and
//!   reordered pushes).
//!
//! [`Session`]: optrail_core::Session

pub mod seed;
pub mod server;
pub mod world;

pub use world::{Knobs, Stats, run_schedule};
