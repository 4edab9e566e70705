//! Property tests of the HTTP tracker codec: queries built from arbitrary values parse back to
//! those values; no input makes a parser panic; every writer's output is canonical bencode that
//! decodes to what was written.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_bencode::value::Value;
use swarmd_proto::http::{
    parse_announce, parse_scrape, percent_decode_into, percent_encode_into, write_announce,
    write_failure, write_failure_retry, write_scrape, AnnounceResponse, Peers, QueryError,
    ScrapeFile,
};
use swarmd_proto::{Event, InfoHash, PeerId, COMPACT_V4_LEN, COMPACT_V6_LEN};

// ---------------------------------------------------------------------------------------------
// Building queries

/// Bytes a client may leave unescaped in a value: RFC 3986 unreserved and most sub-delims, but
/// never `&` (the separator) or `%` (the escape), nor `#` (a URL fragment).
fn is_safe_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$'()*+,;:@/?=".contains(&b)
}

/// How one value is encoded: `std` uses `percent_encode_into`; otherwise each byte is escaped
/// (in upper or lower case) unless it is safe and its `raw` flag is set.
#[derive(Debug, Clone)]
struct Enc {
    std: bool,
    raw: Vec<bool>,
    upper: Vec<bool>,
}

fn enc() -> impl Strategy<Value = Enc> {
    (
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 40),
        prop::collection::vec(any::<bool>(), 40),
    )
        .prop_map(|(std, raw, upper)| Enc { std, raw, upper })
}

impl Enc {
    fn encode(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.std {
            let mut s = String::new();
            percent_encode_into(bytes, &mut s);
            out.extend_from_slice(s.as_bytes());
            return;
        }
        for (i, &b) in bytes.iter().enumerate() {
            if is_safe_raw(b) && self.raw.get(i % 40).copied().unwrap_or(false) {
                out.push(b);
            } else if self.upper.get(i % 40).copied().unwrap_or(false) {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            } else {
                out.extend_from_slice(format!("%{b:02x}").as_bytes());
            }
        }
    }
}

const EVENTS: [(&str, Event); 7] = [
    ("", Event::None),
    ("empty", Event::None),
    ("started", Event::Started),
    ("completed", Event::Completed),
    ("stopped", Event::Stopped),
    ("paused", Event::Paused),
    ("%73topped", Event::Stopped),
];

const KNOWN: [&str; 13] = [
    "info_hash",
    "peer_id",
    "port",
    "uploaded",
    "downloaded",
    "left",
    "event",
    "compact",
    "no_peer_id",
    "numwant",
    "key",
    "trackerid",
    "ip",
];

#[derive(Debug, Clone)]
struct Announce {
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    uploaded: Option<u64>,
    downloaded: Option<u64>,
    left: u64,
    event: Option<usize>,
    compact: Option<bool>,
    no_peer_id: Option<bool>,
    numwant: Option<i64>,
    key: Option<String>,
    tracker_id: Option<Vec<u8>>,
    ip: Option<(IpAddr, bool)>,
}

fn ip_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn announce_strategy() -> impl Strategy<Value = Announce> {
    (
        (any::<[u8; 20]>(), any::<[u8; 20]>(), 1..=u16::MAX),
        (any::<Option<u64>>(), any::<Option<u64>>(), any::<u64>()),
        (
            prop::option::of(0..EVENTS.len()),
            any::<Option<bool>>(),
            any::<Option<bool>>(),
        ),
        any::<Option<i64>>(),
        (
            prop::option::of("[A-Za-z0-9]{0,12}"),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..12)),
        ),
        prop::option::of((ip_strategy(), any::<bool>())),
    )
        .prop_map(
            |((ih, id, port), (up, down, left), (event, compact, npi), numwant, (key, tid), ip)| {
                Announce {
                    info_hash: ih,
                    peer_id: id,
                    port,
                    uploaded: up,
                    downloaded: down,
                    left,
                    event,
                    compact,
                    no_peer_id: npi,
                    numwant,
                    key,
                    tracker_id: tid,
                    ip,
                }
            },
        )
}

/// Noise: unknown parameters (arbitrary values without `&`), bare names, empty segments.
fn noise_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let unknown = (
        "[a-z_]{1,12}",
        prop::collection::vec(any::<u8>().prop_filter("no &", |b| *b != b'&'), 0..16),
    )
        .prop_filter("not a known name", |(n, _)| !KNOWN.contains(&n.as_str()))
        .prop_map(|(n, v)| [n.as_bytes(), b"=", &v].concat());
    let bare = prop::sample::select(&KNOWN[..]).prop_map(|n| n.as_bytes().to_vec());
    prop::collection::vec(
        prop_oneof![4 => unknown, 1 => bare, 1 => Just(Vec::new())],
        0..6,
    )
}

/// A number in decimal, each digit maybe escaped, maybe with leading zeros.
fn number(n: impl ToString, e: &Enc, zeros: usize) -> Vec<u8> {
    let text = format!("{}{}", "0".repeat(zeros), n.to_string());
    let mut out = Vec::new();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if !e.std && !e.raw[i % 40] {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn build(a: &Announce, e: &Enc, noise: &[Vec<u8>], order: &[u32]) -> (Vec<u8>, Vec<u8>) {
    let mut params: Vec<Vec<u8>> = Vec::new();
    let mut p = |name: &str, value: Vec<u8>| params.push([name.as_bytes(), b"=", &value].concat());
    let enc_bytes = |b: &[u8]| {
        let mut v = Vec::new();
        e.encode(b, &mut v);
        v
    };
    p("info_hash", enc_bytes(&a.info_hash));
    p("peer_id", enc_bytes(&a.peer_id));
    p("port", number(a.port, e, usize::from(e.upper[0])));
    p("left", number(a.left, e, 0));
    if let Some(v) = a.uploaded {
        p("uploaded", number(v, e, 0));
    }
    if let Some(v) = a.downloaded {
        p("downloaded", number(v, e, 2));
    }
    if let Some(i) = a.event {
        p("event", EVENTS[i].0.as_bytes().to_vec());
    }
    if let Some(c) = a.compact {
        p("compact", if c { b"1".to_vec() } else { number(0, e, 0) });
    }
    if let Some(c) = a.no_peer_id {
        p("no_peer_id", if c { b"1".to_vec() } else { b"0".to_vec() });
    }
    if let Some(n) = a.numwant {
        p("numwant", n.to_string().into_bytes());
    }
    if let Some(k) = &a.key {
        p("key", k.as_bytes().to_vec());
    }
    let mut tid = Vec::new();
    if let Some(t) = &a.tracker_id {
        tid = enc_bytes(t);
        p("trackerid", tid.clone());
    }
    if let Some((ip, brackets)) = a.ip {
        let text = match ip {
            IpAddr::V6(v6) if brackets => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        p("ip", enc_bytes(text.as_bytes()));
    }
    params.extend(noise.iter().cloned());
    let mut keyed: Vec<(u32, Vec<u8>)> = params
        .into_iter()
        .enumerate()
        .map(|(i, q)| (order.get(i).copied().unwrap_or(0), q))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let query = keyed
        .into_iter()
        .map(|(_, q)| q)
        .collect::<Vec<_>>()
        .join(&b'&');
    (query, tid)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn announce_round_trip(
        a in announce_strategy(),
        e in enc(),
        noise in noise_strategy(),
        order in prop::collection::vec(any::<u32>(), 20),
    ) {
        let (query, tid) = build(&a, &e, &noise, &order);
        let q = parse_announce(&query);
        prop_assert!(q.is_ok(), "{:?} for {}", q, String::from_utf8_lossy(&query));
        let q = q.unwrap();
        prop_assert_eq!(q.info_hash, InfoHash(a.info_hash));
        prop_assert_eq!(q.peer_id, PeerId(a.peer_id));
        prop_assert_eq!(q.port, a.port);
        prop_assert_eq!(q.left, a.left);
        prop_assert_eq!(q.uploaded, a.uploaded.unwrap_or(0));
        prop_assert_eq!(q.downloaded, a.downloaded.unwrap_or(0));
        prop_assert_eq!(q.event, a.event.map_or(Event::None, |i| EVENTS[i].1));
        prop_assert_eq!(q.compact, a.compact != Some(false));
        prop_assert_eq!(q.no_peer_id, a.no_peer_id == Some(true));
        let want_numwant = a.numwant.filter(|&n| n > 0).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        prop_assert_eq!(q.numwant, want_numwant);
        prop_assert_eq!(q.key, a.key.as_ref().map(|k| k.as_bytes()));
        prop_assert_eq!(q.tracker_id, a.tracker_id.as_ref().map(|_| tid.as_slice()));
        if let Some(t) = q.tracker_id {
            let mut decoded = Vec::new();
            percent_decode_into(t, &mut decoded).unwrap();
            prop_assert_eq!(Some(decoded), a.tracker_id.clone());
        }
        prop_assert_eq!(q.ip, a.ip.map(|(ip, _)| ip));
    }

    #[test]
    fn scrape_round_trip(
        hashes in prop::collection::vec(any::<[u8; 20]>(), 0..80),
        e in enc(),
        noise in noise_strategy(),
        max in 0usize..100,
    ) {
        let mut parts: Vec<Vec<u8>> = hashes.iter().map(|h| {
            let mut v = b"info_hash=".to_vec();
            e.encode(h, &mut v);
            v
        }).collect();
        // Noise goes in front, so it never reorders the hashes.
        let noise: Vec<Vec<u8>> = noise.into_iter().filter(|n| !n.starts_with(b"info_hash")).collect();
        parts.splice(0..0, noise);
        let query = parts.join(&b'&');
        let mut out = Vec::new();
        let r = parse_scrape(&query, max, &mut out);
        if hashes.len() > max {
            prop_assert_eq!(r, Err(QueryError::TooManyHashes(max)));
        } else {
            prop_assert_eq!(r, Ok(()));
            prop_assert_eq!(out, hashes.iter().map(|h| InfoHash(*h)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn percent_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut s = String::new();
        percent_encode_into(&bytes, &mut s);
        prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let mut back = Vec::new();
        percent_decode_into(s.as_bytes(), &mut back).unwrap();
        prop_assert_eq!(back, bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), max in 0usize..8) {
        let _ = parse_announce(&bytes);
        let _ = parse_scrape(&bytes, max, &mut Vec::new());
        let _ = percent_decode_into(&bytes, &mut Vec::new());
    }

    #[test]
    fn query_shaped_garbage_never_panics(
        parts in prop::collection::vec(
            (prop::sample::select(&KNOWN[..]), "[0-9a-fA-F%+;=&\\[\\]:.-]{0,30}"),
            0..16,
        ),
    ) {
        let query: Vec<u8> = parts.iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        if let Ok(q) = parse_announce(&query) {
            // Whatever parsed must be internally consistent.
            prop_assert!(q.port != 0);
        }
        let _ = parse_scrape(&query, 4, &mut Vec::new());
    }
}

// ---------------------------------------------------------------------------------------------
// Writers

fn decode_canonical(bytes: &[u8]) -> Result<HashMap<Vec<u8>, Value>, TestCaseError> {
    let value: Value = serde_bencode::from_bytes(bytes)
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(bytes))))?;
    // serde_bencode sorts keys when encoding: equal bytes prove our keys were sorted & unique.
    let again = serde_bencode::to_bytes(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(bytes)
    );
    match value {
        Value::Dict(d) => Ok(d),
        other => Err(TestCaseError::fail(format!("not a dict: {other:?}"))),
    }
}

fn int(d: &HashMap<Vec<u8>, Value>, k: &str) -> Option<i64> {
    match d.get(k.as_bytes()) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

fn bytes<'v>(d: &'v HashMap<Vec<u8>, Value>, k: &str) -> Option<&'v [u8]> {
    match d.get(k.as_bytes()) {
        Some(Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

fn whole(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len() / n * n]
}

fn compact_ip(peer: &[u8]) -> (IpAddr, u16) {
    let (addr, port) = peer.split_at(peer.len() - 2);
    let ip = match addr.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(addr).unwrap())),
        _ => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).unwrap())),
    };
    (ip, u16::from_be_bytes([port[0], port[1]]))
}

#[derive(Debug, Clone)]
struct Resp {
    nums: [u32; 5],
    tracker_id: Option<Vec<u8>>,
    warning: Option<String>,
    v4: Vec<u8>,
    v6: Vec<u8>,
    compact: bool,
    v4_ids: Option<Vec<u8>>,
    v6_ids: Option<Vec<u8>>,
}

fn resp_strategy() -> impl Strategy<Value = Resp> {
    let ids = || prop::option::of(prop::collection::vec(any::<u8>(), 0..200));
    (
        any::<[u32; 5]>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..30)),
        prop::option::of(".{0,30}"),
        prop::collection::vec(any::<u8>(), 0..70),
        prop::collection::vec(any::<u8>(), 0..100),
        any::<bool>(),
        ids(),
        ids(),
    )
        .prop_map(
            |(nums, tracker_id, warning, v4, v6, compact, v4_ids, v6_ids)| Resp {
                nums,
                tracker_id,
                warning,
                v4,
                v6,
                compact,
                v4_ids,
                v6_ids,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn announce_writer_is_canonical(r in resp_strategy()) {
        let peers = if r.compact {
            Peers::Compact { v4: &r.v4, v6: &r.v6 }
        } else {
            Peers::Dicts { v4: &r.v4, v6: &r.v6, v4_ids: r.v4_ids.as_deref(), v6_ids: r.v6_ids.as_deref() }
        };
        let [interval, min_interval, complete, incomplete, downloaded] = r.nums;
        let resp = AnnounceResponse {
            interval, min_interval, complete, incomplete, downloaded,
            tracker_id: r.tracker_id.as_deref(),
            warning: r.warning.as_deref(),
            peers,
        };
        let mut out = Vec::new();
        write_announce(&mut out, &resp);
        let d = decode_canonical(&out)?;
        prop_assert_eq!(int(&d, "interval"), Some(i64::from(interval)));
        prop_assert_eq!(int(&d, "min interval"), Some(i64::from(min_interval.min(interval))));
        prop_assert_eq!(int(&d, "complete"), Some(i64::from(complete)));
        prop_assert_eq!(int(&d, "incomplete"), Some(i64::from(incomplete)));
        prop_assert_eq!(int(&d, "downloaded"), Some(i64::from(downloaded)));
        prop_assert_eq!(bytes(&d, "tracker id"), r.tracker_id.as_deref());
        prop_assert_eq!(bytes(&d, "warning message"), r.warning.as_deref().map(str::as_bytes));
        let v4 = whole(&r.v4, COMPACT_V4_LEN);
        let v6 = whole(&r.v6, COMPACT_V6_LEN);
        if r.compact {
            prop_assert_eq!(bytes(&d, "peers"), Some(v4));
            prop_assert_eq!(bytes(&d, "peers6"), if v6.is_empty() { None } else { Some(v6) });
            return Ok(());
        }
        prop_assert!(!d.contains_key(&b"peers6"[..]));
        let Some(Value::List(list)) = d.get(&b"peers"[..]) else {
            return Err(TestCaseError::fail("peers is not a list"));
        };
        let mut want = Vec::new();
        for (peers, len, ids) in [(v4, COMPACT_V4_LEN, &r.v4_ids), (v6, COMPACT_V6_LEN, &r.v6_ids)] {
            for (i, p) in peers.chunks_exact(len).enumerate() {
                let id = ids.as_ref().and_then(|ids| ids.get(i * 20..i * 20 + 20));
                want.push((compact_ip(p), id.map(<[u8]>::to_vec)));
            }
        }
        prop_assert_eq!(list.len(), want.len());
        for (got, (addr, id)) in list.iter().zip(want) {
            let Value::Dict(g) = got else { return Err(TestCaseError::fail("peer is not a dict")) };
            let ip: IpAddr = std::str::from_utf8(bytes(g, "ip").unwrap_or_default()).unwrap().parse().unwrap();
            prop_assert_eq!((ip, int(g, "port")), (addr.0, Some(i64::from(addr.1))));
            prop_assert_eq!(bytes(g, "peer id").map(<[u8]>::to_vec), id);
        }
    }

    #[test]
    fn scrape_writer_is_canonical(
        raw in prop::collection::vec((0u8..8, any::<[u32; 4]>()), 0..20),
        flags in any::<Option<u32>>(),
    ) {
        let mut files: Vec<ScrapeFile> = raw.iter().map(|&(h, [c, dl, inc, dls])| ScrapeFile {
            info_hash: InfoHash([h; 20]), complete: c, downloaded: dl, incomplete: inc, downloaders: dls,
        }).collect();
        let orig = files.clone();
        let mut out = Vec::new();
        write_scrape(&mut out, &mut files, flags);
        let d = decode_canonical(&out)?;
        let Some(Value::Dict(got)) = d.get(&b"files"[..]) else {
            return Err(TestCaseError::fail("no files dict"));
        };
        let mut distinct: Vec<InfoHash> = orig.iter().map(|f| f.info_hash).collect();
        distinct.sort();
        distinct.dedup();
        prop_assert_eq!(got.len(), distinct.len());
        for (hash, v) in got {
            let Value::Dict(v) = v else { return Err(TestCaseError::fail("file is not a dict")) };
            let counts = [int(v, "complete"), int(v, "downloaded"), int(v, "incomplete"), int(v, "downloaders")];
            prop_assert!(orig.iter().any(|f| f.info_hash.as_bytes()[..] == hash[..]
                && counts == [f.complete, f.downloaded, f.incomplete, f.downloaders].map(|n| Some(i64::from(n)))));
        }
        match flags {
            Some(secs) => {
                let Some(Value::Dict(f)) = d.get(&b"flags"[..]) else {
                    return Err(TestCaseError::fail("no flags dict"));
                };
                prop_assert_eq!(int(f, "min_request_interval"), Some(i64::from(secs)));
            }
            None => prop_assert!(!d.contains_key(&b"flags"[..])),
        }
    }

    #[test]
    fn failure_writers_are_canonical(reason in ".{0,60}", retry in any::<Option<Option<u32>>>()) {
        let mut out = Vec::new();
        match retry {
            None => write_failure(&mut out, &reason),
            Some(r) => write_failure_retry(&mut out, &reason, r),
        }
        let d = decode_canonical(&out)?;
        prop_assert_eq!(bytes(&d, "failure reason"), Some(reason.as_bytes()));
        match retry {
            None => prop_assert_eq!(d.len(), 1),
            Some(Some(m)) => prop_assert_eq!(int(&d, "retry in"), Some(i64::from(m))),
            Some(None) => prop_assert_eq!(bytes(&d, "retry in"), Some(&b"never"[..])),
        }
    }
}
