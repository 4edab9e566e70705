//! Why a peer's byte stream was refused. Every such error means "drop the peer": the stream has
//! no resynchronisation point, so nothing after a bad message can be trusted.

use std::fmt;

/// A peer broke the wire protocol (handshake or message framing). Drop the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The handshake does not open with 19, `"BitTorrent protocol"`.
    #[error("not a BitTorrent handshake")]
    NotBitTorrent,
    /// A length prefix above [`Limits::max_message_len`](super::Limits::max_message_len):
    /// refused from the 4-byte prefix alone.
    #[error("message length {len} exceeds the limit of {max} bytes")]
    LengthTooLarge {
        /// The announced length (id byte and payload).
        len: u32,
        /// The largest length any message may have under the limits.
        max: u32,
    },
    /// A message longer than its kind allows (bitfield, piece, extended or unknown message).
    #[error("{kind} message of length {len} exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// The message kind.
        kind: MessageKind,
        /// The announced length (id byte and payload).
        len: u32,
        /// The largest length allowed for this kind.
        max: u32,
    },
    /// A fixed-size message with the wrong length (`choke` must be 1, `have` 5, `request` 13,
    /// `port` 3, ...).
    #[error("{kind} message has length {len}, expected {expected}")]
    BadLength {
        /// The message kind.
        kind: MessageKind,
        /// The announced length (id byte and payload).
        len: u32,
        /// The only valid length for this kind.
        expected: u32,
    },
    /// A variable-size message too short for its fixed fields (`piece` below 9, `extended`
    /// below 2).
    #[error("{kind} message has length {len}, at least {min} needed")]
    TooShort {
        /// The message kind.
        kind: MessageKind,
        /// The announced length (id byte and payload).
        len: u32,
        /// The smallest valid length for this kind.
        min: u32,
    },
    /// A `request` for more than [`Limits::max_block_len`](super::Limits::max_block_len) bytes
    /// (BEP 3: clients close connections that request more than 16 KiB).
    #[error("request for {length} bytes exceeds the block limit of {max}")]
    RequestTooLarge {
        /// The requested length.
        length: u32,
        /// The largest block served.
        max: u32,
    },
    /// A bitfield whose size does not match the piece count, or with spare bits set.
    #[error("bitfield of {len} bytes does not fit {pieces} pieces")]
    BadBitfield {
        /// The bitfield's size in bytes.
        len: usize,
        /// The torrent's piece count.
        pieces: u32,
    },
}

/// A message kind: its id byte, displayed the way BEP 3 and BEP 6 name it (`have`,
/// `reject request`, `unknown (id 21)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageKind(pub u8);

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::id::*;
        let id = self.0;
        let name = match id {
            CHOKE => "choke",
            UNCHOKE => "unchoke",
            INTERESTED => "interested",
            NOT_INTERESTED => "not interested",
            HAVE => "have",
            BITFIELD => "bitfield",
            REQUEST => "request",
            PIECE => "piece",
            CANCEL => "cancel",
            PORT => "port",
            SUGGEST => "suggest piece",
            HAVE_ALL => "have all",
            HAVE_NONE => "have none",
            REJECT => "reject request",
            ALLOWED_FAST => "allowed fast",
            EXTENDED => "extended",
            _ => return write!(f, "unknown (id {id})"),
        };
        f.write_str(name)
    }
}
