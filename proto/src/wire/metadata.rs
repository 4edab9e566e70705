//! BEP 9 `ut_metadata` messages: the info dictionary of a magnet download, fetched from peers in
//! 16 KiB pieces. Each message is a bencoded dictionary (`msg_type`, `piece`, and for data
//! `total_size`); a data message carries the piece's bytes right after the dictionary.

use crate::bencode::{decode_prefix, DecodeError, Value};

/// Size of every metadata piece but the last (BEP 9): 16 KiB.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// A `ut_metadata` message. Data borrows from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataMsg<'a> {
    /// `msg_type` 0: asks for a piece.
    Request {
        /// The metadata piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece of the metadata.
    Data {
        /// The metadata piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes: exactly [`metadata_piece_len`]`(total_size, piece)` of them.
        data: &'a [u8],
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// The metadata piece index.
        piece: u32,
    },
    /// Another `msg_type`: BEP 9 says to ignore it.
    Unknown {
        /// The message type.
        msg_type: i64,
    },
}

/// A `ut_metadata` message that does not parse. The peer sent garbage: drop it, or at least
/// stop asking it for metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The dictionary is not valid bencode.
    #[error("ut_metadata: {0}")]
    Bencode(#[from] DecodeError),
    /// Not a dictionary, or `msg_type`, `piece` or (for data) `total_size` missing or not a
    /// non-negative integer of the right range.
    #[error("ut_metadata: missing or invalid {0}")]
    Invalid(&'static str),
    /// Bytes after the dictionary of a request or reject.
    #[error("ut_metadata: trailing bytes after a request or reject")]
    TrailingBytes,
    /// A data message whose piece is not within `total_size`, or whose data is not exactly the
    /// piece's length.
    #[error("ut_metadata: piece {piece} of {len} bytes does not fit total size {total_size}")]
    BadPiece {
        /// The piece index.
        piece: u32,
        /// The data's length.
        len: usize,
        /// The announced metadata size.
        total_size: u64,
    },
}

/// How many metadata pieces an info dictionary of `total_size` bytes has.
pub const fn metadata_piece_count(total_size: u64) -> u64 {
    total_size.div_ceil(METADATA_PIECE_LEN as u64)
}

/// The size of metadata piece `piece` of an info dictionary of `total_size` bytes, or `None`
/// past the end.
pub fn metadata_piece_len(total_size: u64, piece: u32) -> Option<usize> {
    let start = u64::from(piece) * METADATA_PIECE_LEN as u64;
    if start >= total_size {
        return None;
    }
    usize::try_from((total_size - start).min(METADATA_PIECE_LEN as u64)).ok()
}

impl<'a> MetadataMsg<'a> {
    /// Parses the payload of a `ut_metadata` extended message (after the extended id byte).
    pub fn parse(payload: &'a [u8]) -> Result<Self, MetadataError> {
        let (dict, end) = decode_prefix(payload)?;
        if dict.as_dict().is_none() {
            return Err(MetadataError::Invalid("dictionary"));
        }
        let rest = &payload[end..];
        let field = |key: &'static str| -> Result<i64, MetadataError> {
            dict.get(key.as_bytes())
                .and_then(Value::as_int)
                .filter(|i| *i >= 0)
                .ok_or(MetadataError::Invalid(key))
        };
        let msg_type = dict
            .get(b"msg_type")
            .and_then(Value::as_int)
            .ok_or(MetadataError::Invalid("msg_type"))?;
        if !(0..=2).contains(&msg_type) {
            return Ok(Self::Unknown { msg_type });
        }
        let piece = u32::try_from(field("piece")?).map_err(|_| MetadataError::Invalid("piece"))?;
        match msg_type {
            0 | 2 if !rest.is_empty() => Err(MetadataError::TrailingBytes),
            0 => Ok(Self::Request { piece }),
            2 => Ok(Self::Reject { piece }),
            _ => {
                let total_size = field("total_size")?.unsigned_abs();
                if metadata_piece_len(total_size, piece) != Some(rest.len()) {
                    return Err(MetadataError::BadPiece {
                        piece,
                        len: rest.len(),
                        total_size,
                    });
                }
                Ok(Self::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
        }
    }

    /// Appends the message (dictionary with sorted keys, then any data) to `out`: the payload
    /// of a `ut_metadata` extended message. An `Unknown` message writes its `msg_type` only.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let int = |i: u64| Value::Int(i64::try_from(i).unwrap_or(i64::MAX));
        let (msg_type, piece, total_size, data) = match *self {
            Self::Request { piece } => (0, Some(piece), None, &[][..]),
            Self::Data {
                piece,
                total_size,
                data,
            } => (1, Some(piece), Some(total_size), data),
            Self::Reject { piece } => (2, Some(piece), None, &[][..]),
            Self::Unknown { msg_type } => (msg_type, None, None, &[][..]),
        };
        let mut entries = vec![(&b"msg_type"[..], Value::Int(msg_type))];
        if let Some(piece) = piece {
            entries.push((b"piece", Value::Int(i64::from(piece))));
        }
        if let Some(total) = total_size {
            entries.push((b"total_size", int(total)));
        }
        Value::Dict(entries).encode(out);
        out.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep9_examples() {
        // The three examples of BEP 9, byte for byte.
        let req = b"d8:msg_typei0e5:piecei0ee";
        assert_eq!(
            MetadataMsg::parse(req),
            Ok(MetadataMsg::Request { piece: 0 })
        );
        let data_dict = b"d8:msg_typei1e5:piecei0e10:total_sizei34256ee";
        let data = [&data_dict[..], &[0x5a; METADATA_PIECE_LEN]].concat();
        assert_eq!(
            MetadataMsg::parse(&data),
            Ok(MetadataMsg::Data {
                piece: 0,
                total_size: 34256,
                data: &[0x5a; METADATA_PIECE_LEN]
            })
        );
        let rej = b"d8:msg_typei2e5:piecei0ee";
        assert_eq!(
            MetadataMsg::parse(rej),
            Ok(MetadataMsg::Reject { piece: 0 })
        );

        let mut out = Vec::new();
        MetadataMsg::Request { piece: 0 }.encode(&mut out);
        assert_eq!(out, req);
        out.clear();
        MetadataMsg::parse(&data).unwrap().encode(&mut out);
        assert_eq!(out, data);
        out.clear();
        MetadataMsg::Reject { piece: 0 }.encode(&mut out);
        assert_eq!(out, rej);
    }

    #[test]
    fn piece_sizes() {
        assert_eq!(metadata_piece_count(34256), 3);
        assert_eq!(metadata_piece_count(16384), 1);
        assert_eq!(metadata_piece_len(34256, 1), Some(16384));
        assert_eq!(metadata_piece_len(34256, 2), Some(34256 - 32768));
        assert_eq!(metadata_piece_len(34256, 3), None);
        assert_eq!(metadata_piece_len(0, 0), None);
        // The last piece must be exactly its size.
        let short = [
            &b"d8:msg_typei1e5:piecei2e10:total_sizei34256ee"[..],
            &[0; 10],
        ]
        .concat();
        assert_eq!(
            MetadataMsg::parse(&short),
            Err(MetadataError::BadPiece {
                piece: 2,
                len: 10,
                total_size: 34256
            })
        );
        let past = b"d8:msg_typei1e5:piecei3e10:total_sizei34256ee";
        assert!(matches!(
            MetadataMsg::parse(past),
            Err(MetadataError::BadPiece { piece: 3, .. })
        ));
    }

    #[test]
    fn refusals_and_unknown_types() {
        assert_eq!(
            MetadataMsg::parse(b"d5:piecei0ee"),
            Err(MetadataError::Invalid("msg_type"))
        );
        assert_eq!(
            MetadataMsg::parse(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MetadataError::Invalid("piece"))
        );
        assert_eq!(
            MetadataMsg::parse(b"d8:msg_typei1e5:piecei0ee"),
            Err(MetadataError::Invalid("total_size"))
        );
        assert_eq!(
            MetadataMsg::parse(b"d8:msg_typei0e5:piecei0eexx"),
            Err(MetadataError::TrailingBytes)
        );
        assert_eq!(
            MetadataMsg::parse(b"i1e"),
            Err(MetadataError::Invalid("dictionary"))
        );
        assert!(matches!(
            MetadataMsg::parse(b"d8:msg_type"),
            Err(MetadataError::Bencode(_))
        ));
        let unknown = b"d8:msg_typei7e5:piecei0ee";
        assert_eq!(
            MetadataMsg::parse(unknown),
            Ok(MetadataMsg::Unknown { msg_type: 7 })
        );
        let mut out = Vec::new();
        MetadataMsg::Unknown { msg_type: 7 }.encode(&mut out);
        assert_eq!(out, b"d8:msg_typei7ee");
    }
}
