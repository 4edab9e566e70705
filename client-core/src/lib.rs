//! BitTorrent client library of swarmd: metainfo files (parse, validate, create) and BEP 9 magnet
//! links, and tracker clients (HTTP, UDP, scrape, BEP 12 tiers). DHT client, peer wire and
//! storage come in later issues.

pub mod magnet;
pub mod metainfo;
pub mod tracker;

pub use magnet::{Magnet, MagnetError};
pub use metainfo::{CreateError, CreateOptions, FileEntry, Metainfo, MetainfoError};
