//! Peer wire messages (BEP 3, BEP 5 `port`, BEP 6, BEP 10 `extended`) and their encoder.
//!
//! On the wire every message is a 4-byte big-endian length, then (unless the length is 0, a
//! keep-alive) an id byte and the payload. Integers are 4-byte big endian, `port` 2 bytes.

use super::id;

/// Size of a `piece` message before its block: length, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// One peer wire message, borrowing its variable parts from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// Length 0: keeps the connection open.
    KeepAlive,
    /// We will not serve the receiver's requests.
    Choke,
    /// We will serve the receiver's requests.
    Unchoke,
    /// We want pieces the receiver has.
    Interested,
    /// We want nothing the receiver has.
    NotInterested,
    /// We now have a piece.
    Have {
        /// The piece index.
        index: u32,
    },
    /// The pieces we have, one bit per piece, high bit of the first byte for piece 0; sent only
    /// as the first message after the handshake.
    Bitfield(&'a [u8]),
    /// Asks for a block.
    Request {
        /// The piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// A block of data.
    Piece {
        /// The piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// The data.
        block: &'a [u8],
    },
    /// Withdraws a request.
    Cancel {
        /// The piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// BEP 6: a piece the receiver might download first (it is in the sender's cache).
    Suggest {
        /// The piece index.
        index: u32,
    },
    /// BEP 6: the sender has every piece (instead of a bitfield).
    HaveAll,
    /// BEP 6: the sender has no piece (instead of a bitfield).
    HaveNone,
    /// BEP 6: a request the sender will not serve.
    Reject {
        /// The piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// BEP 6: a piece the receiver may request even while choked.
    AllowedFast {
        /// The piece index.
        index: u32,
    },
    /// BEP 10: an extension message; `id` 0 is the extension handshake, other ids are those
    /// the receiver assigned in its handshake's `m`.
    Extended {
        /// The extended message id.
        id: u8,
        /// The extension's payload.
        payload: &'a [u8],
    },
    /// A message id this codec does not know (an extension the peer speaks and we do not):
    /// skip it.
    Unknown {
        /// The message id.
        id: u8,
        /// Everything after the id.
        payload: &'a [u8],
    },
}

impl Message<'_> {
    /// The message id, or `None` for a keep-alive.
    pub const fn id(&self) -> Option<u8> {
        Some(match self {
            Self::KeepAlive => return None,
            Self::Choke => id::CHOKE,
            Self::Unchoke => id::UNCHOKE,
            Self::Interested => id::INTERESTED,
            Self::NotInterested => id::NOT_INTERESTED,
            Self::Have { .. } => id::HAVE,
            Self::Bitfield(_) => id::BITFIELD,
            Self::Request { .. } => id::REQUEST,
            Self::Piece { .. } => id::PIECE,
            Self::Cancel { .. } => id::CANCEL,
            Self::Port(_) => id::PORT,
            Self::Suggest { .. } => id::SUGGEST,
            Self::HaveAll => id::HAVE_ALL,
            Self::HaveNone => id::HAVE_NONE,
            Self::Reject { .. } => id::REJECT,
            Self::AllowedFast { .. } => id::ALLOWED_FAST,
            Self::Extended { .. } => id::EXTENDED,
            Self::Unknown { id, .. } => *id,
        })
    }

    /// Size of the encoded message, length prefix included.
    pub const fn encoded_len(&self) -> usize {
        4 + match self {
            Self::KeepAlive => 0,
            Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => 1,
            Self::Have { .. } | Self::Suggest { .. } | Self::AllowedFast { .. } => 5,
            Self::Request { .. } | Self::Cancel { .. } | Self::Reject { .. } => 13,
            Self::Port(_) => 3,
            Self::Bitfield(bits) => 1 + bits.len(),
            Self::Piece { block, .. } => 9 + block.len(),
            Self::Extended { payload, .. } => 2 + payload.len(),
            Self::Unknown { payload, .. } => 1 + payload.len(),
        }
    }

    /// Appends the message, length prefix included, to `out`.
    ///
    /// # Panics
    ///
    /// If the message is longer than `u32::MAX` bytes, which no caller can mean.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        out.reserve(len);
        put_u32(out, frame_len(len - 4));
        let Some(id) = self.id() else {
            return;
        };
        out.push(id);
        match *self {
            Self::KeepAlive
            | Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => {}
            Self::Have { index } | Self::Suggest { index } | Self::AllowedFast { index } => {
                put_u32(out, index);
            }
            Self::Request {
                index,
                begin,
                length,
            }
            | Self::Cancel {
                index,
                begin,
                length,
            }
            | Self::Reject {
                index,
                begin,
                length,
            } => {
                put_u32(out, index);
                put_u32(out, begin);
                put_u32(out, length);
            }
            Self::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            Self::Piece {
                index,
                begin,
                block,
            } => {
                put_u32(out, index);
                put_u32(out, begin);
                out.extend_from_slice(block);
            }
            Self::Extended { id, payload } => {
                out.push(id);
                out.extend_from_slice(payload);
            }
            Self::Bitfield(payload) | Self::Unknown { payload, .. } => {
                out.extend_from_slice(payload);
            }
        }
    }
}

/// Appends the [`PIECE_HEADER_LEN`] bytes that open a `piece` message carrying `block_len`
/// bytes; the caller sends the block itself right after, without copying it into `out`.
///
/// # Panics
///
/// If `block_len` is above `u32::MAX - 9`.
pub fn encode_piece_header(out: &mut Vec<u8>, index: u32, begin: u32, block_len: usize) {
    out.reserve(PIECE_HEADER_LEN);
    put_u32(out, frame_len(9 + block_len));
    out.push(id::PIECE);
    put_u32(out, index);
    put_u32(out, begin);
}

fn frame_len(len: usize) -> u32 {
    match u32::try_from(len) {
        Ok(len) => len,
        Err(_) => panic!("peer wire message of {len} bytes does not fit a length prefix"),
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
