//! BitTorrent client library of swarmd: metainfo files (parse, validate, create) and BEP 9 magnet
//! links. Tracker and DHT clients, peer wire and storage come in later issues.

pub mod magnet;
pub mod metainfo;

pub use magnet::{Magnet, MagnetError};
pub use metainfo::{CreateError, CreateOptions, FileEntry, Metainfo, MetainfoError};
