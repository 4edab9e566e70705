//! Unit tests of query parsing: error messages, real-client fixtures, edge cases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// A fixed, awkward info hash: has bytes that need escaping, unreserved ASCII, `%`, `&`, `+`.
const IH: [u8; 20] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, b'A', b'z', b'-', b'.', b'%', b'&', b'+', b'=',
    0x00, 0xff, b'~', b'_',
];

/// Escapes every byte of `bytes` as `%xx`, lowercase or uppercase hex.
fn escape_all(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn encode(bytes: &[u8]) -> String {
    let mut s = String::new();
    percent_encode_into(bytes, &mut s);
    s
}

fn pid(s: &str) -> PeerId {
    PeerId::from_slice(s.as_bytes()).unwrap()
}

/// A minimal valid announce, plus `extra` appended.
fn base(extra: &str) -> String {
    format!(
        "info_hash={}&peer_id=-XX0000-abcdefghijkl&port=6881&left=0{extra}",
        encode(&IH)
    )
}

/// Parses a query that must be valid (leaked: tests only, so borrowed fields outlive it).
fn ok(query: String) -> AnnounceQuery<'static> {
    parse_announce(Box::leak(query.into_boxed_str()).as_bytes()).unwrap()
}

fn err(query: &str) -> String {
    parse_announce(query.as_bytes()).unwrap_err().to_string()
}

#[test]
fn libtorrent_qbittorrent_fixture() {
    // libtorrent 2.0 as used by qBittorrent 4.6: lowercase hex, `-_.!~*()` left unescaped.
    let q = format!(
        "info_hash={}&peer_id=-qB4650-%21Wp%28k*Lm~3%29_&port=6881&uploaded=0&downloaded=0\
         &left=1234&corrupt=0&key=ABCD1234&event=started&numwant=200&compact=1&no_peer_id=1\
         &supportcrypto=1&redundant=0&ipv6=2001%3adb8%3a%3a1",
        escape_all(&IH, false)
    );
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.info_hash, InfoHash(IH));
    assert_eq!(a.peer_id, pid("-qB4650-!Wp(k*Lm~3)_"));
    assert_eq!(
        (a.port, a.uploaded, a.downloaded, a.left),
        (6881, 0, 0, 1234)
    );
    assert_eq!(a.event, Event::Started);
    assert_eq!(a.numwant, Some(200));
    assert!(a.compact && a.no_peer_id);
    assert_eq!(a.key, Some(&b"ABCD1234"[..]));
    assert_eq!((a.tracker_id, a.ip), (None, None));
}

#[test]
fn libtorrent_unescaped_safe_bytes_in_info_hash() {
    // libtorrent leaves `!*()` raw; other clients leave `:@,;$'` raw. All are data bytes here.
    let mut ih = *b"abcdefghij!*()-_.~:@";
    let q = format!(
        "info_hash={}&peer_id=-lt2080-{}&port=6881&left=0&compact=1",
        std::str::from_utf8(&ih).unwrap(),
        "%01%02%03%04%05%06%07%08%09%0a%0B%0c"
    );
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.info_hash, InfoHash(ih));
    assert_eq!(&a.peer_id.0[8..], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    ih[10..16].copy_from_slice(b",;$'=+");
    let q = format!(
        "info_hash={}&peer_id=-lt2080-aaaaaaaaaaaa&port=1&left=0",
        as_str(&ih)
    );
    assert_eq!(
        parse_announce(q.as_bytes()).unwrap().info_hash,
        InfoHash(ih)
    );
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn transmission_fixture() {
    // Transmission 4.0: uppercase hex, stopped event with final counters.
    let q = format!(
        "info_hash={}&peer_id=-TR4050-n2r8x0qx3d8m&port=51413&uploaded=1048576&downloaded=734003200\
         &left=0&numwant=0&key=6E5C3A27&compact=1&supportcrypto=1&event=stopped",
        escape_all(&IH, true)
    );
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.info_hash, InfoHash(IH));
    assert_eq!(a.peer_id, pid("-TR4050-n2r8x0qx3d8m"));
    assert_eq!(
        (a.port, a.uploaded, a.downloaded, a.left),
        (51413, 1 << 20, 734_003_200, 0)
    );
    assert_eq!(
        (a.event, a.numwant, a.compact, a.no_peer_id),
        (Event::Stopped, None, true, false)
    );
}

#[test]
fn aria2_fixture() {
    // aria2 1.36: binary peer id tail fully escaped, mixed-case escapes, params in its own order.
    let q = format!(
        "info_hash={}&peer_id=A2-1-36-0-%5B%e1%9Fz%00%FF%c3%8D%aa%0F&uploaded=0&downloaded=0\
         &left=4294967296&compact=1&key=%a1%B2c3d4&numwant=50&no_peer_id=1&port=6881\
         &event=completed&supportcrypto=1",
        encode(&IH)
    );
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.info_hash, InfoHash(IH));
    let mut want = *b"A2-1-36-0-0000000000";
    want[10..].copy_from_slice(&[0x5b, 0xe1, 0x9f, b'z', 0, 0xff, 0xc3, 0x8d, 0xaa, 0x0f]);
    assert_eq!(a.peer_id, PeerId(want));
    assert_eq!((a.port, a.left, a.event), (6881, 1 << 32, Event::Completed));
    assert_eq!(a.key, Some(&b"%a1%B2c3d4"[..]), "key stays raw");
}

#[test]
fn utorrent_style_with_trackerid_and_ip() {
    let q = base("&event=&trackerid=ab%20cd&ip=10.1.2.3&numwant=-1&compact=0");
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.event, Event::None);
    assert_eq!(a.tracker_id, Some(&b"ab%20cd"[..]));
    assert_eq!(a.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
    assert_eq!(a.numwant, None);
    assert!(!a.compact);
}

#[test]
fn defaults() {
    let a = ok(base(""));
    assert_eq!((a.uploaded, a.downloaded), (0, 0));
    assert_eq!(a.event, Event::None);
    assert!(a.compact && !a.no_peer_id);
    assert_eq!(
        (a.numwant, a.key, a.tracker_id, a.ip),
        (None, None, None, None)
    );
}

#[test]
fn missing_required() {
    assert_eq!(err(""), "missing info_hash");
    assert_eq!(
        err("peer_id=-XX0000-abcdefghijkl&port=1&left=0"),
        "missing info_hash"
    );
    let ih = format!("info_hash={}", encode(&IH));
    assert_eq!(err(&format!("{ih}&port=1&left=0")), "missing peer_id");
    assert_eq!(
        err(&format!("{ih}&peer_id=-XX0000-abcdefghijkl&left=0")),
        "missing port"
    );
    assert_eq!(
        err(&format!("{ih}&peer_id=-XX0000-abcdefghijkl&port=1")),
        "missing left"
    );
}

#[test]
fn id_lengths() {
    let short = format!(
        "info_hash={}&peer_id=-XX0000-abcdefghijkl&port=1&left=0",
        encode(&IH[..19])
    );
    assert_eq!(err(&short), "info_hash must be 20 bytes (got 19)");
    let q = format!(
        "info_hash={}&peer_id=-XX0000-abcdefghijklm&port=1&left=0",
        encode(&IH)
    );
    assert_eq!(err(&q), "peer_id must be 20 bytes (got 21)");
    let q = "info_hash=&peer_id=-XX0000-abcdefghijkl&port=1&left=0";
    assert_eq!(err(q), "info_hash must be 20 bytes (got 0)");
    let long = format!("info_hash={}&port=1", "%41".repeat(1000));
    assert_eq!(err(&long), "info_hash must be 20 bytes (got 1000)");
}

#[test]
fn malformed_escapes() {
    let q = format!(
        "info_hash={}&peer_id=-XX0000-abcdefghi%zz&port=1&left=0",
        encode(&IH)
    );
    assert_eq!(err(&q), "malformed percent-encoding in peer_id");
    assert_eq!(
        err("info_hash=%4"),
        "malformed percent-encoding in info_hash"
    );
    assert_eq!(
        err("info_hash=abc%"),
        "malformed percent-encoding in info_hash"
    );
    assert_eq!(
        err("info_hash=%g0"),
        "malformed percent-encoding in info_hash"
    );
    let q = format!("info_hash={}&left=1%", encode(&IH));
    assert_eq!(err(&q), "malformed percent-encoding in left");
    assert_eq!(
        err("port=6%38"),
        "missing info_hash",
        "escaped digits decode"
    );
    assert_eq!(err("port=%3"), "malformed percent-encoding in port");
    assert_eq!(err("event=st%art"), "malformed percent-encoding in event");
    assert_eq!(err("compact=%"), "malformed percent-encoding in compact");
    assert_eq!(err("numwant=%-1"), "malformed percent-encoding in numwant");
}

#[test]
fn numbers() {
    let q = |extra: &str| err(&format!("info_hash={}{extra}", encode(&IH)));
    assert_eq!(q("&port=abc"), "invalid port");
    assert_eq!(q("&port=65536"), "invalid port");
    assert_eq!(q("&port=-1"), "invalid port");
    assert_eq!(q("&port="), "invalid port");
    assert_eq!(q("&port=+80"), "invalid port");
    assert_eq!(q("&port= 80"), "invalid port");
    assert_eq!(q("&port=0"), "port must not be 0");
    assert_eq!(q("&port=00000"), "port must not be 0");
    assert_eq!(q("&left=x"), "invalid left");
    assert_eq!(q("&left=-1"), "invalid left");
    assert_eq!(q("&left=18446744073709551616"), "invalid left");
    assert_eq!(q("&left=1.5"), "invalid left");
    assert_eq!(q("&uploaded=1e9"), "invalid uploaded");
    assert_eq!(q("&downloaded="), "invalid downloaded");
    assert_eq!(q("&numwant=abc"), "invalid numwant");
    assert_eq!(q("&numwant=-"), "invalid numwant");
    assert_eq!(q("&numwant=5-"), "invalid numwant");
    assert_eq!(q("&numwant="), "invalid numwant");

    let a = ok(base("&uploaded=18446744073709551615&port2=x"));
    assert_eq!(a.uploaded, u64::MAX);
    let port = |p: &str| {
        let q = format!(
            "info_hash={}&peer_id=-XX0000-abcdefghijkl&port={p}&left=0",
            encode(&IH)
        );
        parse_announce(q.as_bytes()).map(|a| a.port)
    };
    assert_eq!(port("65535"), Ok(65535));
    assert_eq!(port("0000080"), Ok(80));
    assert_eq!(port("%36%38%38%31"), Ok(6881));
}

#[test]
fn numwant_values() {
    let nw = |v: &str| parse_announce(base(&format!("&numwant={v}")).as_bytes()).map(|a| a.numwant);
    assert_eq!(nw("-1"), Ok(None));
    assert_eq!(nw("-99999999999999999999999"), Ok(None));
    assert_eq!(nw("0"), Ok(None));
    assert_eq!(nw("-0"), Ok(None));
    assert_eq!(nw("50"), Ok(Some(50)));
    assert_eq!(nw("+50"), Ok(Some(50)));
    assert_eq!(nw("%2B7"), Ok(Some(7)));
    assert_eq!(nw("4294967295"), Ok(Some(u32::MAX)));
    assert_eq!(nw("99999999999999999999999"), Ok(Some(u32::MAX)));
}

#[test]
fn events() {
    let ev = |v: &str| parse_announce(base(&format!("&event={v}")).as_bytes()).map(|a| a.event);
    assert_eq!(ev(""), Ok(Event::None));
    assert_eq!(ev("empty"), Ok(Event::None));
    assert_eq!(ev("started"), Ok(Event::Started));
    assert_eq!(ev("completed"), Ok(Event::Completed));
    assert_eq!(ev("stopped"), Ok(Event::Stopped));
    assert_eq!(ev("paused"), Ok(Event::Paused));
    assert_eq!(ev("%73tarted"), Ok(Event::Started));
    assert_eq!(err(&base("&event=foo")), "unknown event \"foo\"");
    assert_eq!(err(&base("&event=Started")), "unknown event \"Started\"");
    assert_eq!(
        err(&base("&event=a%22b%00")),
        "unknown event \"a\\\"b\\x00\""
    );
    assert_eq!(
        err(&base("&event=startedstartedstarted")),
        "unknown event \"startedstartedst...\""
    );
    // Exactly CAPACITY bytes is not truncated.
    assert_eq!(
        err(&base("&event=0123456789abcdef")),
        "unknown event \"0123456789abcdef\""
    );
}

#[test]
fn duplicates() {
    let twice = |extra: &str| err(&base(extra));
    assert_eq!(
        twice(&format!("&info_hash={}", encode(&IH))),
        "info_hash given more than once"
    );
    assert_eq!(
        twice("&peer_id=-XX0000-abcdefghijkl"),
        "peer_id given more than once"
    );
    assert_eq!(twice("&port=6881"), "port given more than once");
    assert_eq!(twice("&left=0"), "left given more than once");
    assert_eq!(
        twice("&event=started&event=started"),
        "event given more than once"
    );
    assert_eq!(
        twice("&numwant=1&numwant=2"),
        "numwant given more than once"
    );
    assert_eq!(twice("&key=a&key=b"), "key given more than once");
    assert_eq!(twice("&ip=1.2.3.4&ip=1.2.3.4"), "ip given more than once");
    // Unknown parameters may repeat freely.
    assert!(parse_announce(base("&supportcrypto=1&supportcrypto=1").as_bytes()).is_ok());
}

#[test]
fn ip_values() {
    let ip = |v: &str| {
        parse_announce(base(&format!("&ip={v}")).as_bytes())
            .unwrap()
            .ip
    };
    assert_eq!(ip("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip("%5B%3A%3A1%5D"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip("2001%3adb8%3A%3a1").map(|a| a.is_ipv6()), Some(true));
    assert_eq!(
        ip("192.0.2.7"),
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
    );
    assert_eq!(ip("tracker.example.org"), None);
    assert_eq!(ip("[192.0.2.7]"), None);
    assert_eq!(ip("[::1"), None);
    assert_eq!(ip(""), None);
    assert_eq!(ip("%zz"), None);
    assert_eq!(ip("%ff%fe"), None);
    assert_eq!(ip(&"1".repeat(200)), None);
}

#[test]
fn flags() {
    let a = |extra: &str| ok(base(extra));
    assert!(!a("&compact=0").compact);
    assert!(!a("&compact=%30").compact);
    assert!(a("&compact=1").compact);
    assert!(a("&compact=00").compact);
    assert!(a("&compact").compact, "a bare `compact` is ignored");
    assert!(a("&no_peer_id=1").no_peer_id);
    assert!(a("&no_peer_id=yes").no_peer_id);
    assert!(a("&no_peer_id=").no_peer_id);
    assert!(!a("&no_peer_id=0").no_peer_id);
    assert!(!a("&no_peer_id").no_peer_id);
}

#[test]
fn splitting() {
    // Empty segments, segments without `=`, and `=` inside a value.
    let q = format!(
        "&&info_hash={}&&peer_id=-XX0000-abcdefghij==&port=1&left=0&flag&=x&",
        encode(&IH)
    );
    let a = parse_announce(q.as_bytes()).unwrap();
    assert_eq!(a.peer_id, pid("-XX0000-abcdefghij=="));
    // `;` is not a separator.
    let a = ok(base("&key=a;numwant=5"));
    assert_eq!((a.key, a.numwant), (Some(&b"a;numwant=5"[..]), None));
    let a = ok(base("&trackerid=a;numwant=5"));
    assert_eq!((a.tracker_id, a.numwant), (Some(&b"a;numwant=5"[..]), None));
    assert_eq!(err(&base("&uploaded=5;port=1")), "invalid uploaded");
    // Names are matched literally.
    let a = ok(base("&INFO_HASH=x&info%5Fhash=y&Event=foo"));
    assert_eq!(a.info_hash, InfoHash(IH));
}

#[test]
fn non_utf8_and_garbage_never_panic() {
    for q in [
        &b"\xff\xfe=\x80&info_hash=%"[..],
        b"%",
        b"=",
        b"&",
        b"info_hash",
        b"info_hash=%%%%%%",
        b"port=99999999999999999999999999999",
        b"event=\xff\xff",
        b"ip=\xff",
    ] {
        assert!(parse_announce(q).is_err());
        let _ = parse_scrape(q, 64, &mut Vec::new());
        let _ = percent_decode_into(q, &mut Vec::new());
    }
}

#[test]
fn scrape() {
    let a = [1u8; 20];
    let b = [2u8; 20];
    let q = format!(
        "info_hash={}&info_hash={}&foo=bar&info_hash={}",
        escape_all(&b, false),
        encode(&a),
        escape_all(&b, true)
    );
    let mut out = vec![InfoHash([9; 20])];
    parse_scrape(q.as_bytes(), 64, &mut out).unwrap();
    assert_eq!(out, [InfoHash(b), InfoHash(a), InfoHash(b)]);

    parse_scrape(b"passkey=abc", 64, &mut out).unwrap();
    assert!(out.is_empty(), "no hash is fine; cleared first");
    parse_scrape(b"", 0, &mut out).unwrap();

    let many: Vec<String> = (0..65u8)
        .map(|i| format!("info_hash={}", encode(&[i; 20])))
        .collect();
    let many = many.join("&");
    let e = parse_scrape(many.as_bytes(), 64, &mut out).unwrap_err();
    assert_eq!(e, QueryError::TooManyHashes(64));
    assert_eq!(e.to_string(), "too many info_hash values (at most 64)");
    let exactly = many.rsplit_once('&').unwrap().0;
    parse_scrape(exactly.as_bytes(), 64, &mut out).unwrap();
    assert_eq!(out.len(), 64);

    let e = parse_scrape(b"info_hash=abc", 64, &mut out).unwrap_err();
    assert_eq!(e.to_string(), "info_hash must be 20 bytes (got 3)");
    let e = parse_scrape(b"info_hash=%x1", 64, &mut out).unwrap_err();
    assert_eq!(e.to_string(), "malformed percent-encoding in info_hash");
}

#[test]
fn percent_coding() {
    let mut out = b"keep".to_vec();
    percent_decode_into(b"a+b%20c%2b%2B%41%7e~", &mut out).unwrap();
    assert_eq!(out, b"keepa+b c++A~~");
    let e = percent_decode_into(b"ok%zz", &mut out).unwrap_err();
    assert_eq!(e.to_string(), "malformed percent-encoding in value");
    assert_eq!(out, b"keepa+b c++A~~", "unchanged on error");

    let mut s = String::from(">");
    percent_encode_into(b"Az09-._~ +%&=/\x00\xff", &mut s);
    assert_eq!(s, ">Az09-._~%20%2B%25%26%3D%2F%00%FF");
}

#[test]
fn snippet() {
    let s = Snippet::new(b"0123456789abcdefXYZ");
    assert!(s.is_truncated());
    assert_eq!(s.as_bytes(), b"0123456789abcdef");
    assert_eq!(format!("{s:?}"), "Snippet(\"0123456789abcdef...\")");
    assert!(!Snippet::new(b"").is_truncated());
}
