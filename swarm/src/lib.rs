//! The shared, sharded, in-memory swarm registry of swarmd.
//!
//! Every protocol (HTTP and UDP trackers, the DHT) records announces in one [`Registry`] and
//! gets counts and a random sample of peers back, written straight into a caller-owned compact
//! buffer ([`SelectedPeers`]), so replies are built without per-request allocation.
//!
//! * Sharded by a keyed hash of the info hash; a shard's lock is held for one swarm operation.
//! * Peers are stored compactly; identity within a swarm is the address. A shard is a store
//!   (`store.rs`): an index of 4-byte buckets (record number and hash tag) over a slab of 48-byte
//!   records, each holding an info hash, its `downloaded` counter and up to two IPv4 peers inline
//!   (12 bytes each: address, role, completed flag, last seen), so an announce to a small swarm
//!   reads one bucket and one record and allocates nothing. Bigger swarms, IPv6 peers and kept peer
//!   ids spill into the shard's slab of big swarms (`record.rs`), the record keeping their number
//!   and scrape figures: role-partitioned vectors (12 bytes an IPv4 peer, 24 an IPv6 one), plus a
//!   4-byte-a-bucket index in swarms of more than 32 peers. Measured (`tests/memory.rs`, heap, peer
//!   ids not kept): 2M IPv4 peers over 1M torrents, two a torrent, 28.8 bytes a peer, about 30
//!   resident (a map of whole swarms took 97, 115 resident); 1M peers over 100k torrents on a Zipf
//!   curve, 29.3 (was 33.4).
//! * The clock is an argument ([`clock`]): expiry ([`Registry::sweep`]) is incremental, a slice
//!   of shards per call, and tests move time without sleeping.
//! * The registry does not consult the [`access`] policy: callers do, before announcing.

pub mod access;
mod api;
pub mod clock;
mod index;
pub mod metrics;
mod peers;
pub mod prefetch;
mod record;
mod registry;
mod sample;
mod slab;
mod store;
mod swarm;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use registry::{
    Announce, AnnounceError, AnnounceOutcome, Prefetch, Registry, RegistryConfig, RegistryCounts,
    SelectedPeers, SwarmStats, SweepStats,
};
