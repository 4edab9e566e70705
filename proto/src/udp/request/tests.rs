//! Unit tests of request parsing and writing: exact byte layouts, every error kind, BEP 41.

use super::*;
use crate::udp::{CONNECT_REQUEST_LEN, MAX_SCRAPE_HASHES, MIN_SCRAPE_REQUEST_LEN};

/// Concatenates byte pieces.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

const CONNECT: [u8; 16] = [
    0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, // protocol id
    0x00, 0x00, 0x00, 0x00, // action: connect
    0xde, 0xad, 0xbe, 0xef, // transaction id
];

/// A 98-byte announce with a distinct value in every field.
fn announce_bytes() -> Vec<u8> {
    cat(&[
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08], // connection id
        &[0x00, 0x00, 0x00, 0x01],                         // action: announce
        &[0x0a, 0x0b, 0x0c, 0x0d],                         // transaction id
        &[0xaa; 20],                                       // info hash
        b"-TR3000-abcdefghijkl",                           // peer id
        &[0, 0, 0, 0, 0, 0, 0x10, 0x00],                   // downloaded 4096
        &[0, 0, 0, 0x01, 0, 0, 0, 0],                      // left 2^32
        &[0, 0, 0, 0, 0, 0, 0, 0x07],                      // uploaded 7
        &[0, 0, 0, 2],                                     // event: started
        &[192, 0, 2, 7],                                   // ip
        &[0x12, 0x34, 0x56, 0x78],                         // key
        &[0xff, 0xff, 0xff, 0xff],                         // num_want -1
        &[0x1a, 0xe1],                                     // port 6881
    ])
}

fn expected_announce() -> AnnounceRequest<'static> {
    AnnounceRequest {
        connection_id: 0x0102_0304_0506_0708,
        transaction_id: 0x0a0b_0c0d,
        info_hash: InfoHash([0xaa; 20]),
        peer_id: PeerId(*b"-TR3000-abcdefghijkl"),
        downloaded: 4096,
        left: 1 << 32,
        uploaded: 7,
        event: Event::Started,
        ip: Some(Ipv4Addr::new(192, 0, 2, 7)),
        key: 0x1234_5678,
        num_want: -1,
        port: 6881,
        url_data: UrlData::default(),
    }
}

fn announce(packet: &[u8]) -> AnnounceRequest<'_> {
    match parse_request(packet) {
        Ok(Request::Announce(a)) => a,
        other => panic!("not an announce: {other:?}"),
    }
}

fn url(a: &AnnounceRequest<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    a.url_data.write_to(&mut out);
    out
}

fn err(packet: &[u8]) -> RequestError {
    parse_request(packet).expect_err("should not parse")
}

fn header(action: u32) -> Option<RequestHeader> {
    Some(RequestHeader {
        connection_id: 0x0102_0304_0506_0708,
        action,
        transaction_id: 0x0a0b_0c0d,
    })
}

#[test]
fn connect_layout() {
    assert_eq!(CONNECT.len(), CONNECT_REQUEST_LEN);
    let req = parse_request(&CONNECT).unwrap();
    assert_eq!(
        req,
        Request::Connect {
            transaction_id: 0xdead_beef
        }
    );
    assert_eq!(
        (req.transaction_id(), req.connection_id()),
        (0xdead_beef, None)
    );
    let mut out = vec![0x55];
    write_connect_request(&mut out, 0xdead_beef);
    assert_eq!(&out[1..], &CONNECT);
    // Extra bytes are ignored.
    let long = cat(&[&CONNECT, b"extra"]);
    assert_eq!(parse_request(&long), parse_request(&CONNECT));
}

#[test]
fn connect_errors() {
    for n in 0..16 {
        let e = err(&CONNECT[..n]);
        assert_eq!(
            (e.kind, e.header),
            (RequestErrorKind::TooShort, None),
            "{n}"
        );
    }
    let mut bad = CONNECT;
    bad[7] = 0x81;
    let e = err(&bad);
    assert_eq!(e.kind, RequestErrorKind::BadProtocolId);
    assert_eq!(
        e.header,
        Some(RequestHeader {
            connection_id: 0x0417_2710_1981,
            action: 0,
            transaction_id: 0xdead_beef
        })
    );
}

#[test]
fn announce_layout() {
    let bytes = announce_bytes();
    assert_eq!(bytes.len(), ANNOUNCE_REQUEST_LEN);
    let a = announce(&bytes);
    assert_eq!(a, expected_announce());
    assert!(a.url_data.is_empty());
    let req = Request::Announce(a);
    assert_eq!(req.transaction_id(), 0x0a0b_0c0d);
    assert_eq!(req.connection_id(), Some(0x0102_0304_0506_0708));

    let mut out = Vec::new();
    write_announce_request(&mut out, &expected_announce());
    assert_eq!(out, bytes);
}

#[test]
fn announce_fields() {
    let mut bytes = announce_bytes();
    bytes[84..88].fill(0); // ip 0
    bytes[92..96].copy_from_slice(&200i32.to_be_bytes());
    let a = announce(&bytes);
    assert_eq!((a.ip, a.num_want), (None, 200));
    bytes[92..96].copy_from_slice(&i32::MIN.to_be_bytes());
    assert_eq!(announce(&bytes).num_want, i32::MIN);

    let mut out = Vec::new();
    write_announce_request(
        &mut out,
        &AnnounceRequest {
            ip: None,
            ..expected_announce()
        },
    );
    assert_eq!(&out[84..88], &[0; 4]);
}

#[test]
fn events_use_bep15_numbering() {
    let mut bytes = announce_bytes();
    for (code, event) in [
        (0, Event::None),
        (1, Event::Completed),
        (2, Event::Started),
        (3, Event::Stopped),
        (4, Event::Paused),
    ] {
        bytes[80..84].copy_from_slice(&u32::to_be_bytes(code));
        assert_eq!(announce(&bytes).event, event);
        assert_eq!(event_to_udp(event), code);
        assert_eq!(event_from_udp(code), Some(event));
    }
    for code in [5, 0x100, u32::MAX] {
        bytes[80..84].copy_from_slice(&u32::to_be_bytes(code));
        let e = err(&bytes);
        assert_eq!(e.kind, RequestErrorKind::UnknownEvent(code));
        assert_eq!(e.header, header(1));
    }
}

#[test]
fn announce_errors() {
    let bytes = announce_bytes();
    for n in 16..ANNOUNCE_REQUEST_LEN {
        let e = err(&bytes[..n]);
        assert_eq!(
            (e.kind, e.header),
            (RequestErrorKind::TooShort, header(1)),
            "{n}"
        );
    }
    let mut zero = bytes.clone();
    zero[96..98].fill(0);
    assert_eq!(err(&zero).kind, RequestErrorKind::PortZero);
    assert_eq!(err(&zero).header, header(1));
}

#[test]
fn bep41_example() {
    // BEP 41's examples, for `udp://tracker.example.com:80/dir?a=b&c=d`.
    let base = announce_bytes();
    for options in [
        &b"\x02\x0c/dir?a=b&c=d"[..],
        b"\x02\x0c/dir?a=b&c=d\x01\x01\x00",
    ] {
        let packet = cat(&[&base, options]);
        let a = announce(&packet);
        assert_eq!(url(&a), b"/dir?a=b&c=d");
        assert_eq!(
            a,
            AnnounceRequest {
                url_data: UrlData::new(b"/dir?a=b&c=d"),
                ..expected_announce()
            }
        );
    }
    // `udp://tracker.example.com:80`: an empty URLData.
    let packet = cat(&[&base, b"\x02\x00"]);
    let a = announce(&packet);
    assert!(a.url_data.is_empty());
    assert_eq!(a, expected_announce());
}

#[test]
fn passkey_split_over_options() {
    let packet = cat(&[
        &announce_bytes(),
        b"\x02\x0a/announce?",
        b"\x01",
        b"\x02\x0dpasskey=abcde",
        b"\x01\x01",
        b"\x02\x07f012345",
        b"\x00",
        b"\x02\x05junk!", // after EndOfOptions: ignored
        b"\x02\xff",      // even if malformed
    ]);
    let a = announce(&packet);
    assert_eq!(url(&a), b"/announce?passkey=abcdef012345");
    assert_eq!(a.url_data.len(), 30);
    assert_eq!(a.url_data.chunks().count(), 3);
    assert_eq!(a.url_data.as_contiguous(), None);
}

#[test]
fn long_url_over_two_options() {
    let long: Vec<u8> = format!("/announce?k={}", "x".repeat(288)).into_bytes();
    assert_eq!(long.len(), 300);
    let packet = cat(&[
        &announce_bytes(),
        &[2, 255],
        &long[..255],
        &[2, 45],
        &long[255..],
    ]);
    let a = announce(&packet);
    assert_eq!(url(&a), long);
    assert_eq!(a.url_data, UrlData::new(&long));

    // The writer splits it the same way, and ends with EndOfOptions.
    let mut out = Vec::new();
    write_announce_request(
        &mut out,
        &AnnounceRequest {
            url_data: UrlData::new(&long),
            ..expected_announce()
        },
    );
    assert_eq!(out, cat(&[&packet, &[0]]));
}

#[test]
fn bad_options() {
    let base = announce_bytes();
    for options in [
        &b"\x02"[..],
        b"\x02\x0d/announce",
        b"\x02\x01/\x05",
        b"\x01\x01\x09\x03ab",
        b"\x02\x02/a\x02\xff/b",
    ] {
        let e = err(&cat(&[&base, options]));
        assert_eq!(
            (e.kind, e.header),
            (RequestErrorKind::BadOptions, header(1)),
            "{options:?}"
        );
    }
}

#[test]
fn unknown_options_are_skipped() {
    let packet = cat(&[
        &announce_bytes(),
        b"\x03\x04abcd\x02\x02/x\xfe\x00\x80\x01z\x02\x01y",
    ]);
    let a = announce(&packet);
    assert_eq!(url(&a), b"/xy");
    // Only unknown options and NOPs: no URL data.
    let packet = cat(&[&announce_bytes(), b"\x01\x07\x00\x01"]);
    let a = announce(&packet);
    assert!(a.url_data.is_empty());
}

fn scrape_bytes(n: u8) -> Vec<u8> {
    let mut v = cat(&[
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        &[0, 0, 0, 2],
        &[0x0a, 0x0b, 0x0c, 0x0d],
    ]);
    for i in 0..n {
        v.extend_from_slice(&[i; 20]);
    }
    v
}

fn scrape(packet: &[u8]) -> ScrapeRequest<'_> {
    match parse_request(packet) {
        Ok(Request::Scrape(s)) => s,
        other => panic!("not a scrape: {other:?}"),
    }
}

#[test]
fn scrape_layout() {
    let bytes = scrape_bytes(2);
    assert_eq!(bytes.len(), 56);
    let s = scrape(&bytes);
    assert_eq!(
        (s.connection_id, s.transaction_id),
        (0x0102_0304_0506_0708, 0x0a0b_0c0d)
    );
    assert_eq!((s.len(), s.is_empty()), (2, false));
    let hashes: Vec<InfoHash> = s.info_hashes().collect();
    assert_eq!(hashes, [InfoHash([0; 20]), InfoHash([1; 20])]);
    assert_eq!(s.info_hashes().len(), 2);
    assert!(format!("{s:?}").contains("InfoHash(0101"));

    let mut out = Vec::new();
    write_scrape_request(&mut out, 0x0102_0304_0506_0708, 0x0a0b_0c0d, &hashes);
    assert_eq!(out, bytes);
    assert_eq!(scrape_bytes(1).len(), MIN_SCRAPE_REQUEST_LEN);
}

#[test]
fn scrape_trailing_bytes_are_ignored() {
    let bytes = scrape_bytes(2);
    for extra in 1..20 {
        let s = scrape(&bytes[..56 - 20 + extra]);
        assert_eq!(s.len(), 1, "{extra}");
        let longer = cat(&[&bytes, &[0xee; 19][..extra]]);
        assert_eq!(scrape(&longer), scrape(&bytes));
    }
}

#[test]
fn scrape_without_hash() {
    let bytes = scrape_bytes(1);
    for n in 16..MIN_SCRAPE_REQUEST_LEN {
        let e = err(&bytes[..n]);
        assert_eq!(
            (e.kind, e.header),
            (RequestErrorKind::NoInfoHash, header(2)),
            "{n}"
        );
    }
}

#[test]
fn scrape_beyond_the_cap_parses() {
    let n = MAX_SCRAPE_HASHES as u8 + 26;
    let bytes = scrape_bytes(n);
    let s = scrape(&bytes);
    assert_eq!(s.len(), usize::from(n));
    let mut it = s.info_hashes();
    assert_eq!(it.len(), 100);
    assert_eq!(it.nth(99), Some(InfoHash([99; 20])));
    assert_eq!(it.len(), 0);
}

#[test]
fn unknown_actions() {
    for action in [3, 4, 0x0100_0000, u32::MAX] {
        let mut bytes = announce_bytes();
        bytes[8..12].copy_from_slice(&u32::to_be_bytes(action));
        let e = err(&bytes);
        assert_eq!(
            (e.kind, e.header),
            (RequestErrorKind::UnknownAction(action), header(action))
        );
    }
    // Exactly the header of an unknown action is enough to identify it.
    let mut bytes = announce_bytes();
    bytes[8..12].copy_from_slice(&[0, 0, 0, 9]);
    assert_eq!(err(&bytes[..16]).kind, RequestErrorKind::UnknownAction(9));
}

#[test]
fn messages() {
    use RequestErrorKind as K;
    for (kind, text) in [
        (K::TooShort, "packet too short"),
        (K::BadProtocolId, "bad protocol id"),
        (K::UnknownAction(7), "unknown action 7"),
        (K::UnknownEvent(9), "unknown event 9"),
        (K::PortZero, "port must not be 0"),
        (K::NoInfoHash, "no info_hash to scrape"),
        (K::BadOptions, "malformed BEP 41 options"),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(RequestError { kind, header: None }.to_string(), text);
    }
}
