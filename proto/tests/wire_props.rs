//! Property tests of the peer wire codec: every message, handshake, extension handshake and
//! `ut_metadata` message written from arbitrary values decodes back to those values; a stream
//! of messages decodes the same however it is split into reads; no input makes a decoder
//! panic; and an oversized length prefix is refused from its 4 bytes alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use swarmd_proto::wire::{
    decode, ExtHandshake, Handshake, Limits, Message, MetadataMsg, Reserved, WireError, BLOCK_LEN,
    HANDSHAKE_LEN, METADATA_PIECE_LEN,
};
use swarmd_proto::{InfoHash, PeerId};

// ---------------------------------------------------------------------------------------------
// Strategies

/// A message with owned payloads (a [`Message`] borrows them).
#[derive(Debug, Clone)]
enum Owned {
    Fixed(u8),
    Index(u8, u32),
    Block(u8, u32, u32, u32),
    Bitfield(Vec<u8>),
    Piece(u32, u32, Vec<u8>),
    Port(u16),
    Extended(u8, Vec<u8>),
    Unknown(u8, Vec<u8>),
}

impl Owned {
    fn msg(&self) -> Message<'_> {
        match self {
            Self::Fixed(0) => Message::KeepAlive,
            Self::Fixed(1) => Message::Choke,
            Self::Fixed(2) => Message::Unchoke,
            Self::Fixed(3) => Message::Interested,
            Self::Fixed(4) => Message::NotInterested,
            Self::Fixed(5) => Message::HaveAll,
            Self::Fixed(_) => Message::HaveNone,
            Self::Index(0, index) => Message::Have { index: *index },
            Self::Index(1, index) => Message::Suggest { index: *index },
            Self::Index(_, index) => Message::AllowedFast { index: *index },
            Self::Block(k, index, begin, length) => {
                let (index, begin, length) = (*index, *begin, *length);
                match k {
                    0 => Message::Request {
                        index,
                        begin,
                        length: length % (BLOCK_LEN + 1),
                    },
                    1 => Message::Cancel {
                        index,
                        begin,
                        length,
                    },
                    _ => Message::Reject {
                        index,
                        begin,
                        length,
                    },
                }
            }
            Self::Bitfield(bits) => Message::Bitfield(bits),
            Self::Piece(index, begin, block) => Message::Piece {
                index: *index,
                begin: *begin,
                block,
            },
            Self::Port(p) => Message::Port(*p),
            Self::Extended(id, payload) => Message::Extended { id: *id, payload },
            Self::Unknown(id, payload) => Message::Unknown { id: *id, payload },
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn message() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (0u8..7).prop_map(Owned::Fixed),
        (0u8..3, any::<u32>()).prop_map(|(k, i)| Owned::Index(k, i)),
        (0u8..3, any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(k, i, b, l)| Owned::Block(k, i, b, l)),
        bytes(64).prop_map(Owned::Bitfield),
        (any::<u32>(), any::<u32>(), bytes(300)).prop_map(|(i, b, d)| Owned::Piece(i, b, d)),
        any::<u16>().prop_map(Owned::Port),
        (any::<u8>(), bytes(64)).prop_map(|(id, p)| Owned::Extended(id, p)),
        // Ids no BEP this codec speaks uses.
        (prop_oneof![10u8..13, 18u8..20, 21u8..=255], bytes(64))
            .prop_map(|(id, p)| Owned::Unknown(id, p)),
    ]
}

fn stream(msgs: &[Owned]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.msg().encode(&mut out);
    }
    out
}

fn encoded(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

/// Decodes every whole message in `buf` (as a receive loop would), returning them and the
/// bytes consumed.
fn drain<'a>(buf: &'a [u8], limits: &Limits) -> (Vec<Message<'a>>, usize) {
    let mut msgs = Vec::new();
    let mut at = 0;
    while let Some((m, used)) = decode(&buf[at..], limits).expect("a valid stream") {
        assert!(used >= 4 && used == m.encoded_len());
        msgs.push(m);
        at += used;
    }
    (msgs, at)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #[test]
    fn every_message_round_trips(m in message()) {
        let msg = m.msg();
        let mut out = Vec::new();
        msg.encode(&mut out);
        prop_assert_eq!(out.len(), msg.encoded_len());
        prop_assert_eq!(decode(&out, &Limits::default()), Ok(Some((msg, out.len()))));
    }

    #[test]
    fn a_stream_decodes_the_same_split_at_any_point(
        msgs in prop::collection::vec(message(), 0..8),
    ) {
        let bytes = stream(&msgs);
        let want: Vec<Message<'_>> = msgs.iter().map(Owned::msg).collect();
        let limits = Limits::default();
        prop_assert_eq!(&drain(&bytes, &limits).0, &want);
        for split in 0..=bytes.len() {
            // A receive buffer that first holds `split` bytes, then the rest.
            let (mut got, used) = drain(&bytes[..split], &limits);
            let (rest, used2) = drain(&bytes[used..], &limits);
            got.extend(rest);
            prop_assert_eq!(used + used2, bytes.len());
            prop_assert_eq!(&got, &want);
        }
    }

    #[test]
    fn a_stream_decodes_the_same_in_random_reads(
        msgs in prop::collection::vec(message(), 1..8),
        reads in prop::collection::vec(1usize..40, 1..64),
    ) {
        let bytes = stream(&msgs);
        let limits = Limits::default();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut fed = 0;
        for n in reads.iter().cycle() {
            if fed == bytes.len() {
                break;
            }
            let end = (fed + n).min(bytes.len());
            buf.extend_from_slice(&bytes[fed..end]);
            fed = end;
            let (ms, used) = drain(&buf, &limits);
            // Keep owned copies (encodings), so the buffer can shrink.
            got.extend(ms.iter().map(encoded));
            buf.drain(..used);
        }
        prop_assert!(buf.is_empty());
        let want: Vec<Vec<u8>> = msgs.iter().map(|m| encoded(&m.msg())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(600), bitfield in 0u32..64) {
        let limits = Limits { max_bitfield_len: bitfield, ..Limits::default() };
        let mut rest = &data[..];
        while let Ok(Some((m, used))) = decode(rest, &limits) {
            prop_assert!(used <= rest.len());
            let mut again = Vec::new();
            m.encode(&mut again);
            prop_assert_eq!(&again[..], &rest[..used]);
            rest = &rest[used..];
        }
        let _ = Handshake::decode(&data);
        let _ = ExtHandshake::parse(&data);
        let _ = MetadataMsg::parse(&data);
    }

    #[test]
    fn oversized_prefix_refused_from_four_bytes(
        len in any::<u32>(),
        bitfield in 0u32..1_000_000,
        extended in 0u32..4_000_000,
    ) {
        let limits = Limits {
            max_bitfield_len: bitfield,
            max_extended_len: extended,
            ..Limits::default()
        };
        let max = limits.max_message_len();
        let prefix = len.to_be_bytes();
        let got = decode(&prefix, &limits);
        if len > max {
            prop_assert_eq!(got, Err(WireError::LengthTooLarge { len, max }));
        } else if len == 0 {
            prop_assert_eq!(got, Ok(Some((Message::KeepAlive, 4))));
        } else {
            prop_assert_eq!(got, Ok(None));
        }
    }

    #[test]
    fn handshake_round_trips(
        reserved in any::<[u8; 8]>(),
        ih in any::<[u8; 20]>(),
        id in any::<[u8; 20]>(),
    ) {
        let reserved = Reserved(reserved);
        let h = Handshake { reserved, info_hash: InfoHash(ih), peer_id: PeerId(id) };
        let mut out = Vec::new();
        h.encode(&mut out);
        prop_assert_eq!(out.len(), HANDSHAKE_LEN);
        prop_assert_eq!(Handshake::decode(&out), Ok(Some(h)));
        // Setting a bit to what it is changes nothing, unknown bits included.
        prop_assert_eq!(reserved.with_fast(reserved.fast()).with_dht(reserved.dht()), reserved);
    }

    #[test]
    fn ext_handshake_round_trips(
        m in prop::collection::btree_map(bytes(12), any::<u8>(), 0..5),
        p in prop::option::of(1u16..),
        v in prop::option::of(bytes(20)),
        yourip in prop::option::of(ip()),
        ipv4 in prop::option::of(any::<[u8; 4]>()),
        ipv6 in prop::option::of(any::<[u8; 16]>()),
        reqq in prop::option::of(any::<u32>()),
        metadata_size in prop::option::of(0..i64::MAX as u64),
        upload_only in any::<bool>(),
    ) {
        let h = ExtHandshake {
            m: m.iter().map(|(k, v)| (&k[..], *v)).collect(),
            p,
            v: v.as_deref(),
            yourip,
            ipv4: ipv4.map(Ipv4Addr::from),
            ipv6: ipv6.map(Ipv6Addr::from),
            reqq,
            metadata_size,
            upload_only,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        prop_assert_eq!(ExtHandshake::parse(&out), Ok(h));
    }

    #[test]
    fn metadata_messages_round_trip(
        kind in 0u8..4,
        piece in any::<u32>(),
        total in 1u64..200_000,
        other in 3i64..,
    ) {
        let data;
        let msg = match kind {
            0 => MetadataMsg::Request { piece },
            1 => {
                let count = total.div_ceil(METADATA_PIECE_LEN as u64);
                let piece = u32::try_from(u64::from(piece) % count).unwrap_or(0);
                let len = swarmd_proto::wire::metadata_piece_len(total, piece).unwrap_or(0);
                data = vec![0xab; len];
                MetadataMsg::Data { piece, total_size: total, data: &data }
            }
            2 => MetadataMsg::Reject { piece },
            _ => MetadataMsg::Unknown { msg_type: other },
        };
        let mut out = Vec::new();
        msg.encode(&mut out);
        prop_assert_eq!(MetadataMsg::parse(&out), Ok(msg));
    }
}
