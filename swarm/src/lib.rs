//! The shared, sharded, in-memory swarm registry of swarmd.
//!
//! Every protocol (HTTP and UDP trackers, the DHT) records announces in one [`Registry`] and
//! gets counts and a random sample of peers back, written straight into a caller-owned compact
//! buffer ([`SelectedPeers`]), so replies are built without per-request allocation.
//!
//! * Sharded by a keyed hash of the info hash; a shard's lock is held for one swarm operation.
//! * Peers are stored compactly (12 bytes an IPv4 peer, 24 an IPv6 one, plus a 4-byte-a-bucket
//!   index only in swarms of more than 32 peers); identity within a swarm is the address.
//! * The clock is an argument ([`clock`]): expiry ([`Registry::sweep`]) is incremental, a slice
//!   of shards per call, and tests move time without sleeping.
//! * The registry does not consult the [`access`] policy: callers do, before announcing.

pub mod access;
mod api;
pub mod clock;
mod index;
pub mod metrics;
mod peers;
mod registry;
mod sample;
mod swarm;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use registry::{
    Announce, AnnounceError, AnnounceOutcome, Registry, RegistryConfig, RegistryCounts,
    SelectedPeers, SwarmStats, SweepStats,
};
