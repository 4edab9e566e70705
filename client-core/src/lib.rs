//! BitTorrent client library of swarmd: metainfo files (parse, validate, create) and BEP 9 magnet
//! links, tracker clients (HTTP, UDP, scrape, BEP 12 tiers), a read-only DHT client
//! ([`dht`]) and generic rendezvous under the SHA-1 of a name ([`rendezvous`]); the choker
//! ([`choke`]), the piece picker ([`picker`]) and piece storage ([`storage`]: file and memory
//! backends, SHA-1 verification off the runtime, resume recheck); and the download/seed engine
//! ([`session`]: peer wire connections, choking, piece exchange, BEP 9 metadata, announces).

pub mod choke;
pub mod dht;
pub mod magnet;
pub mod metainfo;
pub mod picker;
pub mod rendezvous;
pub mod session;
pub mod storage;
pub mod tracker;

pub use magnet::{Magnet, MagnetError};
pub use metainfo::{CreateError, CreateOptions, FileAttr, FileEntry, Metainfo, MetainfoError};
