//! Private tracker mode for swarmd: the access policy of the `listed` and `private` modes, with
//! passkeys, an info-hash allow list, client (peer-id prefix) rules and per-user accounting.
//!
//! All state lives in SQLite ([`rusqlite`], WAL mode, versioned migrations) and is mirrored in
//! memory, so the request path ([`swarmd_swarm::access::AccessPolicy`]) never touches the
//! database. [`PrivatePolicy::flush`] writes the pending accounting and the peer-session
//! baselines in one transaction; admin operations write through to the database and update
//! memory at once.
//!
//! # Memory layout: one cache miss per announce
//!
//! On a busy tracker the request path is bound by memory, not instructions: every lookup in a
//! map of millions of entries is a cache (and TLB) miss, about 140 ns on a virtualised server,
//! and misses that depend on each other add up. So the state is laid out for as few dependent
//! misses as possible:
//!
//! * **The view** (`view`): users, passkeys and client rules, behind a read-write lock. It is
//!   small (an entry per user and key), so it stays in cache. Passkeys are hashed by 16 of their
//!   random bytes, compared in full.
//! * **The torrents** (`torrents`): per-torrent state keyed by info hash, like the registry's
//!   swarms: 256 shards chosen by a keyed hash, each a mutex on its own cache line. One lookup
//!   finds a torrent's allow-list entry (flags, multipliers), its peer sessions and its users'
//!   pending accounting (`torrent`), where the first design needed three (an
//!   allow-list map, a session map keyed by hash, user and peer, a pending map).
//! * **Inline first entries** (`small`): most swarms hold 1 to 3 sessions. A torrent's first
//!   session (88 bytes, `session`) and first pending record sit inside its state, right after
//!   the key and the flags, so their announces read only the lines that the one lookup
//!   brings in. Further sessions are in a vector scanned by (user, peer id) (one more miss,
//!   for its buffer), and swarms over 32 get a hash index so they stay O(1).
//! * **Hinted lookups** (`torrents`): a shard's active states sit in one dense vector, each
//!   beside its hash, found through a map of positions or straight through a small table of
//!   positions by hash bits (two-way, tagged), which the UDP tracker's prefetch pipeline
//!   reads ahead of the request to load the state. A hint is checked against the slot's hash,
//!   so a stale one (a flush moves states) only costs the map lookup it was to save.
//! * **Idle torrents stay small**: a shard keeps listed torrents nobody announces with a key as
//!   bare entries in a second map (56-byte buckets), so a catalogue of dead torrents costs
//!   little and does not dilute the cache; a torrent moves to the active map at its first
//!   accounted announce and back at the flush that finds it empty. Unlisted torrents with no
//!   sessions are not stored; a removed torrent keeps its sessions until they end, but
//!   announces to it are refused.
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
mod small;
mod store;
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
