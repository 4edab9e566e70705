//! Private tracker mode for swarmd: the access policy of the `listed` and `private` modes, with
//! passkeys, an info-hash allow list, client (peer-id prefix) rules and per-user accounting.
//!
//! All state lives in SQLite ([`rusqlite`], WAL mode, versioned migrations) and is mirrored in
//! memory, so the request path ([`swarmd_swarm::access::AccessPolicy`]) never touches the
//! database. [`PrivatePolicy::flush`] writes the pending accounting and the peer-session
//! baselines in one transaction; admin operations write through to the database and update
//! memory at once.
//!
//! # Memory layout: no dependent cache misses per announce
//!
//! On a busy tracker the request path is bound by memory, not instructions: every lookup in a
//! map of millions of entries is a cache (and TLB) miss, about 140 ns on a virtualised server,
//! and misses that depend on each other add up. So the state is laid out so that every line an
//! announce reads has an address known from the request itself:
//!
//! * **The view** (`view`): users, passkeys and client rules, behind a read-write lock. It is
//!   small (an entry per user and key), so it stays in cache. Passkeys are hashed by 16 of their
//!   random bytes, compared in full.
//! * **The torrents and sessions** (`torrents`): 256 shards chosen by a keyed hash of the info
//!   hash, like the registry's swarms, each a mutex on its own cache line holding two
//!   open-addressing tables (`table`, linear probing, at most three quarters full). The
//!   torrent table holds every listed torrent (and a removed one while it has sessions) in one
//!   64-byte slot: flags, row id, multipliers, session count. The session table holds every
//!   peer session (info hash, user, peer id) in one 192-byte slot: the baseline, and the
//!   accounting credited since the last flush (`session`).
//! * **Addresses known from the request**: a torrent's slot is found by bits of the info hash's
//!   keyed hash, a session's by a keyed hash of the info hash and the peer id, and the tables'
//!   places are published beside each shard's lock. So the UDP tracker's prefetch pipeline
//!   loads the lock, the torrent's line and the session's lines two datagrams ahead, with no
//!   lookup of its own, and the announce finds them in cache. (The design before this one
//!   kept a torrent's sessions inside a per-torrent state found through a map and a table of
//!   position hints: two dependent steps, and a third, 25% dearer per UDP announce than public
//!   mode; see the README.)
//! * **What memory costs**: about 85-170 bytes per listed torrent and 256-512 bytes per peer
//!   session (a table doubles when three quarters full, counting removed slots, and the
//!   session table is rebuilt smaller by a flush that finds it an eighth used). A session's records outlive it until the flush
//!   (a shard's `orphans`); the flush merges records per user and torrent.
//!
//! An announce reads the clock once, read-locks the view, checks the client rules and the
//! passkey, then locks the torrent's shard and does everything else there, allocating nothing
//! on a keep-alive; metrics change (atomic adds) only when something did. Lock order
//! everywhere: the database connection, the view, a torrent shard. Admin changes to keys and
//! users write-lock the view, which announces hold until their accounting is done, so an
//! eviction never races a session being re-created with a key just revoked.
//!
//! # Access rules
//!
//! Over the trackers (HTTP, UDP), in order: client rules (announces only: a matching deny
//! prefix, or allow rules none of which matches, give "client not allowed"); the allow list
//! ("unregistered torrent"); the passkey, required in `private` mode and for torrents flagged
//! private, and checked whenever one is presented ("passkey required: use your personal
//! announce URL", "unknown passkey", "passkey revoked", "passkey expired", "account disabled").
//! Full scrapes are refused. Over the DHT, only private torrents are refused.
//!
//! # Accounting and what a crash can lose
//!
//! Each peer session (info hash, user, peer id) keeps a baseline: the totals it last reported.
//! An announce is credited the difference (see the `credit` rules: first sightings credit
//! nothing, counter resets count from zero, deltas above the maximum rate are discarded, upload
//! and download multipliers apply), plus seeding time and completions.
//!
//! Transfer totals and the baselines they were computed against are written in the same
//! transaction. So after a crash (even `SIGKILL`) the database is consistent as of the last
//! flush, and the next announce of each session computes its delta against the stored baseline:
//! **the bytes uploaded and downloaded during the lost interval are recovered**. What can be
//! lost is at most one flush interval of `completed` events, seeding time and `last_announce`
//! updates (and bytes of sessions that never announce again). A clean shutdown must call
//! [`PrivatePolicy::flush`] after the servers stop, to lose nothing.
//!
//! Announces that change nothing but the time (idle peers re-announcing the same totals) are
//! not written at every flush: a baseline's `last_seen` and a record's `last_announce` are
//! stored with a granularity of five minutes, so the flush costs rows per *change*, not per
//! announce. After a crash this can count up to five minutes of one seeder's seeding time twice.

mod admin;
mod credit;
mod error;
mod flush;
mod hashing;
mod metrics;
mod model;
mod policy;
mod report;
mod schema;
mod session;
mod store;
mod table;
mod torrent;
mod torrents;
mod view;

#[cfg(test)]
mod tests;

pub use error::PrivateError;
pub use model::*;
pub use policy::PrivatePolicy;

/// The database schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;
