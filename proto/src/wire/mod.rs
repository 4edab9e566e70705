//! The peer wire codec (BEP 3, with BEP 6 fast extension, BEP 9 `ut_metadata` and BEP 10
//! extension protocol), sans-IO: the handshake, a streaming message decoder over a receive
//! buffer, and encoders that append to caller-owned buffers.
//!
//! Receiving: [`Handshake::decode`] once, then [`decode`] in a loop. Both borrow from the buffer,
//! allocate nothing and never panic; they answer `Ok(None)` while more bytes are needed, and
//! `Err(WireError)` when the peer broke the protocol — every [`WireError`] means "drop the
//! peer". [`Limits`] bound what a peer may make us buffer: a length prefix above
//! [`Limits::max_message_len`] is refused as soon as its 4 bytes are in, and a message above its
//! own kind's limit as soon as its id byte is in, before any of the body is buffered.
//!
//! Sending: [`Handshake::encode`], [`Message::encode`], and [`encode_piece_header`] to send a
//! block without copying it (write the header, then the block).
//!
//! Extension payloads (BEP 10, message id 20) are parsed by [`ExtHandshake::parse`] (extended
//! id 0) and [`MetadataMsg::parse`] (`ut_metadata`, under the id the peer gave it in `m`).
//! [`allowed_fast_set`] computes a BEP 6 allowed-fast set.
//!
//! Semantic checks that need torrent state (a `have` index below the piece count, a bitfield of
//! exactly the right size with clear spare bits via [`check_bitfield`], fast messages only when
//! both sides set [`Reserved::FAST`]) are the session's.
//!
//! ```
//! use swarmd_proto::wire::{decode, Handshake, Limits, Message, Reserved};
//! use swarmd_proto::{InfoHash, PeerId};
//!
//! let mut stream = Vec::new();
//! let ours = Handshake {
//!     reserved: Reserved::default().with_extensions(true).with_fast(true),
//!     info_hash: InfoHash([0xaa; 20]),
//!     peer_id: PeerId(*b"-SW0001-abcdefghijkl"),
//! };
//! ours.encode(&mut stream);
//! Message::Interested.encode(&mut stream);
//! Message::Request { index: 3, begin: 16384, length: 16384 }.encode(&mut stream);
//!
//! let theirs = Handshake::decode(&stream).unwrap().unwrap();
//! assert!(theirs.reserved.extensions() && theirs.reserved.fast() && !theirs.reserved.dht());
//! let mut rest = &stream[swarmd_proto::wire::HANDSHAKE_LEN..];
//! let limits = Limits::default();
//! let mut got = Vec::new();
//! while let Some((msg, used)) = decode(rest, &limits).unwrap() {
//!     got.push(format!("{msg:?}"));
//!     rest = &rest[used..];
//! }
//! assert_eq!(got, ["Interested", "Request { index: 3, begin: 16384, length: 16384 }"]);
//!
//! // A peer announcing a 4 GiB message is refused from the prefix alone.
//! assert!(decode(&[0xff, 0xff, 0xff, 0xff], &limits).is_err());
//! ```

mod decode;
mod error;
mod extension;
mod fast;
mod handshake;
mod message;
mod metadata;

pub use decode::{check_bitfield, decode, Limits};
pub use error::{MessageKind, WireError};
pub use extension::{ExtHandshake, ExtHandshakeError};
pub use fast::allowed_fast_set;
pub use handshake::{Handshake, Reserved, HANDSHAKE_LEN, PROTOCOL};
pub use message::{encode_piece_header, Message, PIECE_HEADER_LEN};
pub use metadata::{
    metadata_piece_count, metadata_piece_len, MetadataError, MetadataMsg, METADATA_PIECE_LEN,
};

/// The block size every current client requests and serves (BEP 3): 16 KiB.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Message ids: the byte after the length prefix.
pub mod id {
    /// `choke` (BEP 3).
    pub const CHOKE: u8 = 0;
    /// `unchoke` (BEP 3).
    pub const UNCHOKE: u8 = 1;
    /// `interested` (BEP 3).
    pub const INTERESTED: u8 = 2;
    /// `not interested` (BEP 3).
    pub const NOT_INTERESTED: u8 = 3;
    /// `have` (BEP 3).
    pub const HAVE: u8 = 4;
    /// `bitfield` (BEP 3).
    pub const BITFIELD: u8 = 5;
    /// `request` (BEP 3).
    pub const REQUEST: u8 = 6;
    /// `piece` (BEP 3).
    pub const PIECE: u8 = 7;
    /// `cancel` (BEP 3).
    pub const CANCEL: u8 = 8;
    /// `port`: the sender's DHT port (BEP 5).
    pub const PORT: u8 = 9;
    /// `suggest piece` (BEP 6).
    pub const SUGGEST: u8 = 13;
    /// `have all` (BEP 6).
    pub const HAVE_ALL: u8 = 14;
    /// `have none` (BEP 6).
    pub const HAVE_NONE: u8 = 15;
    /// `reject request` (BEP 6).
    pub const REJECT: u8 = 16;
    /// `allowed fast` (BEP 6).
    pub const ALLOWED_FAST: u8 = 17;
    /// `extended` (BEP 10): an extended message id byte, then its payload.
    pub const EXTENDED: u8 = 20;
}
