//! The streaming message decoder: one message off the front of a receive buffer, with the
//! [`Limits`] that bound what a peer can make us buffer.

use super::error::MessageKind;
use super::{id, Message, WireError, BLOCK_LEN};

/// How large a peer's messages may be. Every length is that of the id byte plus payload, as
/// the length prefix counts it, except where a field says otherwise.
///
/// [`decode`] refuses a length prefix above [`max_message_len`](Self::max_message_len) once
/// its 4 bytes are in, and a message above its own kind's limit once its id byte is in: a peer
/// can never make us buffer more than the limits allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest block carried by a `piece` message, and largest length a `request` may ask
    /// for. Default: 16 KiB ([`BLOCK_LEN`]), so a piece message is at most 16397 bytes.
    pub max_block_len: u32,
    /// Largest `bitfield` payload in bytes. Default: 256 KiB (2 Mi pieces), for when the piece
    /// count is not known yet (a magnet link); [`Limits::for_pieces`] tightens it.
    pub max_bitfield_len: u32,
    /// Largest `extended` payload (after the extended id byte). Default: 1 MiB.
    pub max_extended_len: u32,
    /// Largest payload of a message with an unknown id. Default: 16 KiB + 8.
    pub max_unknown_len: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bitfield_len: 256 * 1024,
            ..Self::for_pieces(0)
        }
    }
}

impl Limits {
    /// The default limits, with a bitfield of exactly `ceil(pieces / 8)` bytes at most.
    pub const fn for_pieces(pieces: u32) -> Self {
        Self {
            max_block_len: BLOCK_LEN,
            max_bitfield_len: pieces.div_ceil(8),
            max_extended_len: 1024 * 1024,
            max_unknown_len: BLOCK_LEN + 8,
        }
    }

    /// The largest length prefix any message may carry under these limits.
    pub fn max_message_len(&self) -> u32 {
        [
            self.max_bitfield_len.saturating_add(1),
            self.max_block_len.saturating_add(9),
            self.max_extended_len.saturating_add(2),
            self.max_unknown_len.saturating_add(1),
            13,
        ]
        .into_iter()
        .max()
        .unwrap_or(13)
    }

    /// Checks the length prefix `len` of a message with id `id` against its kind.
    fn check(&self, id: u8, len: u32) -> Result<(), WireError> {
        let kind = MessageKind(id);
        let exact = |expected: u32| {
            if len == expected {
                Ok(())
            } else {
                Err(WireError::BadLength {
                    kind,
                    len,
                    expected,
                })
            }
        };
        let bounded = |min: u32, payload_max: u32| {
            let max = payload_max.saturating_add(min);
            if len < min {
                Err(WireError::TooShort { kind, len, min })
            } else if len > max {
                Err(WireError::MessageTooLong { kind, len, max })
            } else {
                Ok(())
            }
        };
        match id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => exact(1),
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => exact(5),
            id::REQUEST | id::CANCEL | id::REJECT => exact(13),
            id::PORT => exact(3),
            id::BITFIELD => bounded(1, self.max_bitfield_len),
            id::PIECE => bounded(9, self.max_block_len),
            id::EXTENDED => bounded(2, self.max_extended_len),
            _ => bounded(1, self.max_unknown_len),
        }
    }
}

/// Decodes one message off the front of `buf`.
///
/// - `Ok(None)`: more bytes are needed (nothing is consumed; call again when more arrive).
/// - `Ok(Some((message, consumed)))`: drop `consumed` bytes from the buffer and go on.
/// - `Err(_)`: the peer broke the protocol; drop it. Limits are checked from the header
///   alone, so an oversized message is refused before its body arrives.
pub fn decode<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Message<'a>, usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len == 0 {
        return Ok(Some((Message::KeepAlive, 4)));
    }
    let max = limits.max_message_len();
    if len > max {
        return Err(WireError::LengthTooLarge { len, max });
    }
    let Some(&msg_id) = buf.get(4) else {
        return Ok(None);
    };
    limits.check(msg_id, len)?;
    let total = (len as usize).saturating_add(4);
    let Some(body) = buf.get(5..total) else {
        return Ok(None);
    };
    let u32_at =
        |at: usize| u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let msg = match msg_id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::HAVE => Message::Have { index: u32_at(0) },
        id::SUGGEST => Message::Suggest { index: u32_at(0) },
        id::ALLOWED_FAST => Message::AllowedFast { index: u32_at(0) },
        id::REQUEST => {
            let length = u32_at(8);
            if length > limits.max_block_len {
                return Err(WireError::RequestTooLarge {
                    length,
                    max: limits.max_block_len,
                });
            }
            Message::Request {
                index: u32_at(0),
                begin: u32_at(4),
                length,
            }
        }
        id::CANCEL => Message::Cancel {
            index: u32_at(0),
            begin: u32_at(4),
            length: u32_at(8),
        },
        id::REJECT => Message::Reject {
            index: u32_at(0),
            begin: u32_at(4),
            length: u32_at(8),
        },
        id::PORT => Message::Port(u16::from_be_bytes([body[0], body[1]])),
        id::BITFIELD => Message::Bitfield(body),
        id::PIECE => Message::Piece {
            index: u32_at(0),
            begin: u32_at(4),
            block: &body[8..],
        },
        id::EXTENDED => Message::Extended {
            id: body[0],
            payload: &body[1..],
        },
        _ => Message::Unknown {
            id: msg_id,
            payload: body,
        },
    };
    Ok(Some((msg, total)))
}

/// Checks a received bitfield against the torrent's piece count (BEP 3): exactly
/// `ceil(pieces / 8)` bytes, and the spare bits of the last byte clear.
pub fn check_bitfield(bits: &[u8], pieces: u32) -> Result<(), WireError> {
    let bad = WireError::BadBitfield {
        len: bits.len(),
        pieces,
    };
    if bits.len() as u64 != u64::from(pieces.div_ceil(8)) {
        return Err(bad);
    }
    let spare = (8 - pieces % 8) % 8;
    match bits.last() {
        Some(last) if spare > 0 && last & ((1u8 << spare) - 1) != 0 => Err(bad),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
