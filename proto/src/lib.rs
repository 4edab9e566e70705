//! Sans-IO protocol code for swarmd: identifiers, peer addresses, and the codecs of the HTTP
//! tracker, BEP 15/41, KRPC (BEP 5, 32, 42, 43, 51) and the peer wire (BEP 3, 6, 9, 10).
//! Nothing here opens a socket or reads a clock: codecs take bytes and return typed values or
//! typed errors.

pub mod bencode;
pub mod bep42;
pub mod http;
mod ids;
pub mod krpc;
pub mod path;
pub mod udp;
pub mod wire;

pub use ids::{Event, InfoHash, NodeId, ParseIdError, PeerId};

/// Size in bytes of one compact IPv4 peer (BEP 23): 4 address bytes, 2 port bytes, big endian.
pub const COMPACT_V4_LEN: usize = 6;
/// Size in bytes of one compact IPv6 peer (BEP 7): 16 address bytes, 2 port bytes, big endian.
pub const COMPACT_V6_LEN: usize = 18;
