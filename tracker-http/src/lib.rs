//! The HTTP BitTorrent tracker of swarmd (BEP 3, 7, 23, 48) on hyper 1.x.
//!
//! Requests are parsed and answered by the sans-IO codec in `swarmd-proto`; swarms live in the
//! shared `swarmd-swarm` registry, so peers announced here are seen by every other protocol.
//! [`serve`] runs one listener until its shutdown token fires, then drains connections.

mod client;
mod handler;
mod listener;
mod server;

pub use client::{client_ip, ClientAddrError};
pub use handler::{Tracker, TrackerConfig};
pub use listener::bind_tcp;
pub use server::serve;
