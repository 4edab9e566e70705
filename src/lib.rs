//! swarmd as a library: configuration, service wiring and the admin endpoints, so that the
//! binary stays small and tests start and stop real servers in-process on port 0.

pub mod admin;
pub mod announce_url;
pub mod app;
pub mod config;
pub mod logging;

pub use app::{run, start, Options, Running};
pub use config::Config;
