//! Private tracker mode for swarmd: the access policy of the `listed` and `private` modes, with
//! passkeys, an info-hash allow list, client (peer-id prefix) rules and per-user accounting.
//!
//! All state lives in SQLite ([`rusqlite`], WAL mode, versioned migrations) and is mirrored in
//! memory, so the request path ([`swarmd_swarm::access::AccessPolicy`]) never touches the
//! database: it reads an in-memory view under a briefly held read lock, and records accounting
//! in one of 32 sharded maps. [`PrivatePolicy::flush`] writes the pending accounting and the
//! peer-session baselines in one transaction; admin operations write through to the database
//! and update the view at once.
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
mod metrics;
mod model;
mod policy;
mod report;
mod schema;
mod session;
mod store;
mod view;

#[cfg(test)]
mod tests;

pub use error::PrivateError;
pub use model::*;
pub use policy::PrivatePolicy;

/// The database schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;
