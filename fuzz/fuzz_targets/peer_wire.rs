//! Fuzzes the peer wire codec (BEP 3/6/9/10) with arbitrary bytes: the handshake, then a
//! receive loop of `decode` over the input (under limits picked by the first byte); every
//! message that decodes must re-encode to exactly the bytes it came from. Extended payloads go
//! through the extension handshake and `ut_metadata` parsers, whose output must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmd_proto::wire::{
    check_bitfield, decode, ExtHandshake, Handshake, Limits, Message, MetadataMsg, HANDSHAKE_LEN,
};

fn extension_payload(payload: &[u8]) {
    if let Ok(h) = ExtHandshake::parse(payload) {
        let mut out = Vec::new();
        h.encode(&mut out);
        let again = ExtHandshake::parse(&out).expect("our extension handshake parses");
        // `m` comes back sorted by name; everything else equal.
        let mut m = h.m.clone();
        m.sort();
        assert_eq!(ExtHandshake { m, ..h }, again);
    }
    if let Ok(msg) = MetadataMsg::parse(payload) {
        if let MetadataMsg::Data {
            piece,
            total_size,
            data,
        } = msg
        {
            assert_eq!(
                swarmd_proto::wire::metadata_piece_len(total_size, piece),
                Some(data.len())
            );
        }
        let mut out = Vec::new();
        msg.encode(&mut out);
        assert_eq!(MetadataMsg::parse(&out), Ok(msg));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    match Handshake::decode(data) {
        Ok(Some(h)) => {
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out[..], data[..HANDSHAKE_LEN]);
            rest = &data[HANDSHAKE_LEN..];
        }
        Ok(None) => assert!(data.len() < HANDSHAKE_LEN),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let pieces = u32::from(data.first().copied().unwrap_or(0)) * 8;
    let limits = Limits {
        max_extended_len: 64 * 1024,
        ..Limits::for_pieces(pieces)
    };
    let mut out = Vec::new();
    loop {
        match decode(rest, &limits) {
            Ok(Some((msg, used))) => {
                assert!(used >= 4 && used <= rest.len());
                assert!(used <= 4 + limits.max_message_len() as usize);
                out.clear();
                msg.encode(&mut out);
                assert_eq!(out[..], rest[..used]);
                match msg {
                    Message::Bitfield(bits) => {
                        let _ = check_bitfield(bits, pieces);
                    }
                    Message::Extended { payload, .. } => extension_payload(payload),
                    _ => {}
                }
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(e) => {
                let text = e.to_string();
                assert!(!text.is_empty() && text.len() < 100, "{text}");
                break;
            }
        }
    }
});
