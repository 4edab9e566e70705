//! Unit tests of the message codec: every message's bytes as BEP 3/5/6/10 lay them out, both
//! ways; every fixed length enforced; limits applied from the header alone.

use super::*;
use crate::wire::error::MessageKind;
use crate::wire::{encode_piece_header, PIECE_HEADER_LEN};

fn one(bytes: &[u8]) -> Message<'_> {
    let (msg, used) = decode(bytes, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a whole message");
    assert_eq!(used, bytes.len());
    msg
}

fn err(bytes: &[u8]) -> WireError {
    decode(bytes, &Limits::default()).unwrap_err()
}

/// Checks that `msg` encodes to exactly `bytes` and that `bytes` decode to `msg`.
fn both_ways(msg: Message<'_>, bytes: &[u8]) {
    let mut out = Vec::new();
    msg.encode(&mut out);
    assert_eq!(out, bytes, "{msg:?}");
    assert_eq!(msg.encoded_len(), bytes.len());
    assert_eq!(one(bytes), msg);
}

#[test]
fn keep_alive() {
    both_ways(Message::KeepAlive, &[0, 0, 0, 0]);
    assert_eq!(Message::KeepAlive.id(), None);
}

#[test]
fn state_messages() {
    both_ways(Message::Choke, &[0, 0, 0, 1, 0]);
    both_ways(Message::Unchoke, &[0, 0, 0, 1, 1]);
    both_ways(Message::Interested, &[0, 0, 0, 1, 2]);
    both_ways(Message::NotInterested, &[0, 0, 0, 1, 3]);
}

#[test]
fn have() {
    both_ways(
        Message::Have { index: 0x0102_0304 },
        &[0, 0, 0, 5, 4, 1, 2, 3, 4],
    );
}

#[test]
fn bitfield() {
    both_ways(
        Message::Bitfield(&[0xff, 0x80]),
        &[0, 0, 0, 3, 5, 0xff, 0x80],
    );
    both_ways(Message::Bitfield(&[]), &[0, 0, 0, 1, 5]);
}

#[test]
fn request_cancel_reject() {
    let body = [0, 0, 0, 7, 0, 0, 0x40, 0, 0, 0, 0x40, 0];
    let (index, begin, length) = (7, 0x4000, 0x4000);
    both_ways(
        Message::Request {
            index,
            begin,
            length,
        },
        &[&[0, 0, 0, 13, 6][..], &body].concat(),
    );
    both_ways(
        Message::Cancel {
            index,
            begin,
            length,
        },
        &[&[0, 0, 0, 13, 8][..], &body].concat(),
    );
    both_ways(
        Message::Reject {
            index,
            begin,
            length,
        },
        &[&[0, 0, 0, 13, 16][..], &body].concat(),
    );
}

#[test]
fn piece_and_its_header() {
    let bytes = [0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x40, 0, 0xde, 0xad, 0xbe];
    let msg = Message::Piece {
        index: 2,
        begin: 0x4000,
        block: &[0xde, 0xad, 0xbe],
    };
    both_ways(msg, &bytes);
    let mut header = Vec::new();
    encode_piece_header(&mut header, 2, 0x4000, 3);
    assert_eq!(header.len(), PIECE_HEADER_LEN);
    assert_eq!(header, bytes[..PIECE_HEADER_LEN]);
    // An empty block is a valid piece message.
    both_ways(
        Message::Piece {
            index: 1,
            begin: 0,
            block: &[],
        },
        &[0, 0, 0, 9, 7, 0, 0, 0, 1, 0, 0, 0, 0],
    );
}

#[test]
fn port() {
    both_ways(Message::Port(6881), &[0, 0, 0, 3, 9, 0x1a, 0xe1]);
}

#[test]
fn fast_extension() {
    both_ways(Message::Suggest { index: 9 }, &[0, 0, 0, 5, 13, 0, 0, 0, 9]);
    both_ways(Message::HaveAll, &[0, 0, 0, 1, 14]);
    both_ways(Message::HaveNone, &[0, 0, 0, 1, 15]);
    both_ways(
        Message::AllowedFast { index: 1313 },
        &[0, 0, 0, 5, 17, 0, 0, 5, 0x21],
    );
}

#[test]
fn extended_and_unknown() {
    both_ways(
        Message::Extended {
            id: 0,
            payload: b"de",
        },
        &[0, 0, 0, 4, 20, 0, b'd', b'e'],
    );
    both_ways(
        Message::Extended {
            id: 3,
            payload: &[],
        },
        &[0, 0, 0, 2, 20, 3],
    );
    // BEP 52 `hash request` (21) is not spoken here: skipped whole.
    both_ways(
        Message::Unknown {
            id: 21,
            payload: &[1, 2, 3],
        },
        &[0, 0, 0, 4, 21, 1, 2, 3],
    );
    both_ways(
        Message::Unknown {
            id: 255,
            payload: &[],
        },
        &[0, 0, 0, 1, 255],
    );
}

#[test]
fn fixed_lengths_are_exact() {
    let cases: [(u8, u32); 13] = [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
        (14, 1),
        (15, 1),
        (4, 5),
        (13, 5),
        (17, 5),
        (6, 13),
        (8, 13),
        (16, 13),
        (9, 3),
    ];
    for (id, expected) in cases {
        for len in [expected - 1, expected + 1] {
            if len == 0 {
                continue;
            }
            let mut bytes = len.to_be_bytes().to_vec();
            bytes.push(id);
            // The error comes from the header alone, whatever follows.
            assert_eq!(
                err(&bytes),
                WireError::BadLength {
                    kind: MessageKind(id),
                    len,
                    expected
                },
                "id {id} len {len}"
            );
        }
    }
    assert_eq!(
        err(&[0, 0, 0, 2, 0, 0]).to_string(),
        "choke message has length 2, expected 1"
    );
    assert_eq!(
        err(&[0, 0, 0, 4, 4]).to_string(),
        "have message has length 4, expected 5"
    );
}

#[test]
fn variable_lengths_have_minimums() {
    assert_eq!(
        err(&[0, 0, 0, 8, 7]),
        WireError::TooShort {
            kind: MessageKind(7),
            len: 8,
            min: 9
        }
    );
    assert_eq!(
        err(&[0, 0, 0, 1, 20]).to_string(),
        "extended message has length 1, at least 2 needed"
    );
}

#[test]
fn partial_input_needs_more() {
    let mut full = Vec::new();
    Message::Request {
        index: 1,
        begin: 2,
        length: 3,
    }
    .encode(&mut full);
    for n in 0..full.len() {
        assert_eq!(decode(&full[..n], &Limits::default()), Ok(None), "{n}");
    }
    // Bytes after the message are left for the next call.
    full.extend_from_slice(&[0, 0]);
    let (_, used) = decode(&full, &Limits::default()).unwrap().unwrap();
    assert_eq!(used, 17);
}

#[test]
fn huge_prefix_is_refused_from_four_bytes() {
    let limits = Limits::default();
    let max = limits.max_message_len();
    assert_eq!(max, 1024 * 1024 + 2);
    assert_eq!(
        err(&[0xff, 0xff, 0xff, 0xff]),
        WireError::LengthTooLarge { len: u32::MAX, max }
    );
    assert_eq!(
        decode(&(max + 1).to_be_bytes(), &limits),
        Err(WireError::LengthTooLarge { len: max + 1, max })
    );
    // At the cap, the prefix is fine; the id byte then decides.
    assert_eq!(decode(&max.to_be_bytes(), &limits), Ok(None));
}

#[test]
fn kind_limits_apply_at_the_id_byte() {
    let limits = Limits::for_pieces(20);
    assert_eq!(limits.max_bitfield_len, 3);
    // A 16 KiB block is fine, one byte more is not.
    let mut piece = (9 + BLOCK_LEN).to_be_bytes().to_vec();
    piece.push(7);
    assert_eq!(decode(&piece, &limits), Ok(None));
    let mut piece = (10 + BLOCK_LEN).to_be_bytes().to_vec();
    piece.push(7);
    assert_eq!(
        decode(&piece, &limits),
        Err(WireError::MessageTooLong {
            kind: MessageKind(7),
            len: 10 + BLOCK_LEN,
            max: 9 + BLOCK_LEN
        })
    );
    assert_eq!(
        decode(&[0, 0, 0, 5, 5], &limits).unwrap_err().to_string(),
        "bitfield message of length 5 exceeds the limit of 4 bytes"
    );
    assert!(decode(&[0, 0, 0, 4, 5], &limits).unwrap().is_none());
    let mut unknown = (limits.max_unknown_len + 2).to_be_bytes().to_vec();
    unknown.push(42);
    assert!(matches!(
        decode(&unknown, &limits),
        Err(WireError::MessageTooLong { .. })
    ));
}

#[test]
fn oversized_request_is_refused() {
    let mut bytes = Vec::new();
    Message::Request {
        index: 0,
        begin: 0,
        length: BLOCK_LEN + 1,
    }
    .encode(&mut bytes);
    assert_eq!(
        err(&bytes),
        WireError::RequestTooLarge {
            length: BLOCK_LEN + 1,
            max: BLOCK_LEN
        }
    );
    // Cancel and reject echo requests: not checked.
    bytes[4] = 8;
    assert!(decode(&bytes, &Limits::default()).is_ok());
}

#[test]
fn bitfield_against_piece_count() {
    assert_eq!(check_bitfield(&[0xff, 0xf0], 12), Ok(()));
    assert_eq!(check_bitfield(&[0xff, 0xff], 16), Ok(()));
    assert_eq!(check_bitfield(&[], 0), Ok(()));
    assert_eq!(
        check_bitfield(&[0xff, 0xf8], 12),
        Err(WireError::BadBitfield { len: 2, pieces: 12 })
    );
    assert!(check_bitfield(&[0xff], 12).is_err());
    assert!(check_bitfield(&[0xff, 0, 0], 12).is_err());
}

#[test]
fn kind_names() {
    assert_eq!(MessageKind(16).to_string(), "reject request");
    assert_eq!(MessageKind(21).to_string(), "unknown (id 21)");
}
