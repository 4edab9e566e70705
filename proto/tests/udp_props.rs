//! Property tests of the UDP tracker codec (BEP 15 + BEP 41): every request and response
//! written from arbitrary values parses back to those values; BEP 41 options built from an
//! arbitrary list parse to the URL data a model predicts; no input makes a parser panic; and a
//! connect request never parses from fewer bytes than its reply carries.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use swarmd_proto::udp::{
    action, parse_request, parse_response, scrape_entries, write_announce_request,
    write_announce_response, write_connect_request, write_connect_response, write_error_response,
    write_scrape_request, write_scrape_response_entry, write_scrape_response_header,
    AnnounceRequest, Request, RequestErrorKind, Response, ScrapeEntry, UrlData,
    ANNOUNCE_REQUEST_LEN, ANNOUNCE_RESPONSE_HEADER_LEN, CONNECT_RESPONSE_LEN, PROTOCOL_ID,
};
use swarmd_proto::{Event, InfoHash, PeerId};

// ---------------------------------------------------------------------------------------------
// Strategies

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::None),
        Just(Event::Completed),
        Just(Event::Started),
        Just(Event::Stopped),
        Just(Event::Paused),
    ]
}

/// The owned values of an announce request (the request borrows its URL data).
#[derive(Debug, Clone)]
struct Announce {
    connection_id: u64,
    transaction_id: u32,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    downloaded: u64,
    left: u64,
    uploaded: u64,
    event: Event,
    ip: Option<u32>,
    key: u32,
    num_want: i32,
    port: u16,
    url: Vec<u8>,
}

impl Announce {
    fn request(&self) -> AnnounceRequest<'_> {
        AnnounceRequest {
            connection_id: self.connection_id,
            transaction_id: self.transaction_id,
            info_hash: InfoHash(self.info_hash),
            peer_id: PeerId(self.peer_id),
            downloaded: self.downloaded,
            left: self.left,
            uploaded: self.uploaded,
            event: self.event,
            ip: self.ip.map(Ipv4Addr::from),
            key: self.key,
            num_want: self.num_want,
            port: self.port,
            url_data: UrlData::new(&self.url),
        }
    }
}

fn announce() -> impl Strategy<Value = Announce> {
    (
        (
            any::<u64>(),
            any::<u32>(),
            any::<[u8; 20]>(),
            any::<[u8; 20]>(),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>(), event()),
        (
            prop::option::of(1..=u32::MAX),
            any::<u32>(),
            prop_oneof![Just(-1), any::<i32>()],
            1..=u16::MAX,
        ),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(
            |(
                (connection_id, transaction_id, info_hash, peer_id),
                (downloaded, left, uploaded, event),
                (ip, key, num_want, port),
                url,
            )| Announce {
                connection_id,
                transaction_id,
                info_hash,
                peer_id,
                downloaded,
                left,
                uploaded,
                event,
                ip,
                key,
                num_want,
                port,
                url,
            },
        )
}

/// One BEP 41 option, as a model.
#[derive(Debug, Clone)]
enum Opt {
    Nop,
    Url(Vec<u8>),
    /// Any type from 0x3 up, with its data.
    Unknown(u8, Vec<u8>),
}

fn opt() -> impl Strategy<Value = Opt> {
    let data = || prop::collection::vec(any::<u8>(), 0..=255);
    prop_oneof![
        Just(Opt::Nop),
        data().prop_map(Opt::Url),
        (3..=u8::MAX, data()).prop_map(|(t, d)| Opt::Unknown(t, d)),
    ]
}

fn encode(opts: &[Opt], out: &mut Vec<u8>) {
    for o in opts {
        match o {
            Opt::Nop => out.push(1),
            Opt::Url(d) | Opt::Unknown(_, d) => {
                out.push(if let Opt::Unknown(t, _) = o { *t } else { 2 });
                out.push(u8::try_from(d.len()).unwrap());
                out.extend_from_slice(d);
            }
        }
    }
}

/// The URL data the model says `opts` carry.
fn model_url(opts: &[Opt]) -> Vec<u8> {
    opts.iter()
        .filter_map(|o| match o {
            Opt::Url(d) => Some(&d[..]),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Bytes that often look like requests or responses: arbitrary bytes, or a plausible header
/// (sometimes with the connect magic, sometimes cut short) followed by arbitrary bytes.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop_oneof![Just(PROTOCOL_ID), any::<u64>()],
            0..=4u32,
            any::<u32>(),
            0..=16usize,
            prop::collection::vec(any::<u8>(), 0..400),
        )
            .prop_map(|(cid, action, tid, cut, tail)| {
                let mut v = [
                    &cid.to_be_bytes()[..],
                    &action.to_be_bytes(),
                    &tid.to_be_bytes(),
                ]
                .concat();
                if tail.is_empty() {
                    v.truncate(cut);
                }
                v.extend_from_slice(&tail);
                v
            }),
        // A response header: action, then transaction id.
        (0..=4u32, prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(action, tail)| { [&action.to_be_bytes()[..], &tail].concat() }),
        mutated(),
    ]
}

/// A valid request (announce with options, scrape or connect), then damaged: a few bytes
/// overwritten, maybe cut short, maybe extended.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        3 => (announce(), prop::collection::vec(opt(), 0..4)).prop_map(|(a, opts)| {
            let mut v = Vec::new();
            write_announce_request(&mut v, &a.request());
            encode(&opts, &mut v);
            v
        }),
        1 => prop::collection::vec(any::<[u8; 20]>().prop_map(InfoHash), 1..5).prop_map(|h| {
            let mut v = Vec::new();
            write_scrape_request(&mut v, 1, 2, &h);
            v
        }),
        1 => any::<u32>().prop_map(|tid| {
            let mut v = Vec::new();
            write_connect_request(&mut v, tid);
            v
        }),
    ];
    (
        valid,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut v, flips, cut, tail)| {
            for (at, b) in flips {
                let i = at.index(v.len());
                v[i] = b;
            }
            if let Some(cut) = cut {
                v.truncate(cut.index(v.len() + 1));
            }
            v.extend_from_slice(&tail);
            v
        })
}

// ---------------------------------------------------------------------------------------------
// Requests

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn connect_request_round_trip(tid in any::<u32>()) {
        let mut out = Vec::new();
        write_connect_request(&mut out, tid);
        prop_assert_eq!(out.len(), 16);
        prop_assert_eq!(parse_request(&out), Ok(Request::Connect { transaction_id: tid }));
    }

    #[test]
    fn announce_request_round_trip(a in announce()) {
        let req = a.request();
        let mut out = Vec::new();
        write_announce_request(&mut out, &req);
        let options = if a.url.is_empty() { 0 } else { a.url.len() + 2 * a.url.len().div_ceil(255) + 1 };
        prop_assert_eq!(out.len(), ANNOUNCE_REQUEST_LEN + options);
        let Ok(Request::Announce(parsed)) = parse_request(&out) else {
            return Err(TestCaseError::fail(format!("{:?}", parse_request(&out))));
        };
        prop_assert_eq!(parsed, req);
        let mut url = Vec::new();
        parsed.url_data.write_to(&mut url);
        prop_assert_eq!(&url, &a.url);
        prop_assert_eq!(parsed.url_data.len(), a.url.len());
        prop_assert!(parsed.url_data.chunks().all(|c| !c.is_empty() && c.len() <= 255));
        prop_assert_eq!(parsed.url_data.as_contiguous().is_some(), a.url.len() <= 255);
    }

    #[test]
    fn scrape_request_round_trip(
        cid in any::<u64>(),
        tid in any::<u32>(),
        hashes in prop::collection::vec(any::<[u8; 20]>().prop_map(InfoHash), 1..100),
    ) {
        let mut out = Vec::new();
        write_scrape_request(&mut out, cid, tid, &hashes);
        prop_assert_eq!(out.len(), 16 + 20 * hashes.len());
        let Ok(Request::Scrape(s)) = parse_request(&out) else {
            return Err(TestCaseError::fail("not a scrape"));
        };
        prop_assert_eq!((s.connection_id, s.transaction_id, s.len()), (cid, tid, hashes.len()));
        prop_assert_eq!(s.info_hashes().len(), hashes.len());
        prop_assert_eq!(s.info_hashes().collect::<Vec<_>>(), hashes);
    }

    /// Options built from any list parse to the model's URL data, whatever follows an
    /// `EndOfOptions`.
    #[test]
    fn options_match_the_model(
        opts in prop::collection::vec(opt(), 0..8),
        end in any::<bool>(),
        junk in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut packet = Vec::new();
        write_announce_request(&mut packet, &announce_fixed());
        encode(&opts, &mut packet);
        if end {
            packet.push(0);
            packet.extend_from_slice(&junk);
        }
        let Ok(Request::Announce(a)) = parse_request(&packet) else {
            return Err(TestCaseError::fail(format!("{:?}", parse_request(&packet))));
        };
        let expected = model_url(&opts);
        let mut url = Vec::new();
        a.url_data.write_to(&mut url);
        prop_assert_eq!(&url, &expected);
        prop_assert_eq!(a.url_data, UrlData::new(&expected));
        let pieces = opts.iter().filter(|o| matches!(o, Opt::Url(d) if !d.is_empty())).count();
        prop_assert_eq!(a.url_data.chunks().count(), pieces);
        prop_assert_eq!(a.url_data.as_contiguous(), (pieces <= 1).then_some(&expected[..]));
    }

    /// Options cut anywhere either parse (to a prefix of the URL data) or are malformed.
    #[test]
    fn truncated_options(opts in prop::collection::vec(opt(), 1..6), cut in any::<prop::sample::Index>()) {
        let mut packet = Vec::new();
        write_announce_request(&mut packet, &announce_fixed());
        encode(&opts, &mut packet);
        let full = model_url(&opts);
        let at = ANNOUNCE_REQUEST_LEN + cut.index(packet.len() - ANNOUNCE_REQUEST_LEN + 1);
        match parse_request(&packet[..at]) {
            Ok(Request::Announce(a)) => {
                let mut url = Vec::new();
                a.url_data.write_to(&mut url);
                prop_assert!(full.starts_with(&url));
            }
            Err(e) => prop_assert_eq!(e.kind, RequestErrorKind::BadOptions),
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }
}

fn announce_fixed() -> AnnounceRequest<'static> {
    AnnounceRequest {
        connection_id: 1,
        transaction_id: 2,
        info_hash: InfoHash([3; 20]),
        peer_id: PeerId([4; 20]),
        downloaded: 5,
        left: 6,
        uploaded: 7,
        event: Event::None,
        ip: None,
        key: 8,
        num_want: -1,
        port: 9,
        url_data: UrlData::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn connect_response_round_trip(tid in any::<u32>(), cid in any::<u64>()) {
        let mut out = Vec::new();
        write_connect_response(&mut out, tid, cid);
        prop_assert_eq!(out.len(), CONNECT_RESPONSE_LEN);
        prop_assert_eq!(
            parse_response(&out),
            Ok(Response::Connect { transaction_id: tid, connection_id: cid })
        );
    }

    #[test]
    fn announce_response_round_trip(
        (tid, interval, leechers, seeders) in any::<(u32, u32, u32, u32)>(),
        v6 in any::<bool>(),
        n in 0..100usize,
        seed in any::<u8>(),
    ) {
        let size = if v6 { 18 } else { 6 };
        let peers: Vec<u8> = (0..n * size).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let mut out = Vec::new();
        write_announce_response(&mut out, tid, interval, leechers, seeders, &peers);
        prop_assert_eq!(out.len(), ANNOUNCE_RESPONSE_HEADER_LEN + size * n);
        prop_assert_eq!(
            parse_response(&out),
            Ok(Response::Announce { transaction_id: tid, interval, leechers, seeders, peers: &peers })
        );
    }

    #[test]
    fn scrape_response_round_trip(
        tid in any::<u32>(),
        entries in prop::collection::vec(any::<(u32, u32, u32)>(), 0..80),
    ) {
        let mut out = Vec::new();
        write_scrape_response_header(&mut out, tid);
        for &(s, c, l) in &entries {
            write_scrape_response_entry(&mut out, s, c, l);
        }
        prop_assert_eq!(out.len(), 8 + 12 * entries.len());
        let Ok(Response::Scrape { transaction_id, entries: raw }) = parse_response(&out) else {
            return Err(TestCaseError::fail("not a scrape"));
        };
        prop_assert_eq!(transaction_id, tid);
        let got: Vec<ScrapeEntry> = scrape_entries(raw).collect();
        let want: Vec<ScrapeEntry> = entries
            .iter()
            .map(|&(seeders, completed, leechers)| ScrapeEntry { seeders, completed, leechers })
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn error_response_round_trip(tid in any::<u32>(), message in ".{0,100}") {
        let mut out = Vec::new();
        write_error_response(&mut out, tid, &message);
        prop_assert_eq!(out.len(), 8 + message.len());
        prop_assert_eq!(
            parse_response(&out),
            Ok(Response::Error { transaction_id: tid, message: message.as_bytes() })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// No input panics; an error carries the header exactly when there were 16 bytes; what parses
    /// is written back into a packet that parses to the same value.
    #[test]
    fn arbitrary_requests(packet in packet()) {
        match parse_request(&packet) {
            Err(e) => {
                prop_assert_eq!(e.header.is_some(), packet.len() >= 16);
                let text = e.to_string();
                prop_assert!(!text.is_empty() && text.len() < 64, "{}", text);
                if let Some(h) = e.header {
                    prop_assert_eq!(&h.transaction_id.to_be_bytes()[..], &packet[12..16]);
                }
            }
            Ok(req) => {
                let mut again = Vec::new();
                match req {
                    Request::Connect { transaction_id } => {
                        write_connect_request(&mut again, transaction_id);
                        prop_assert_eq!(&again[..], &packet[..16]);
                    }
                    Request::Announce(a) => {
                        prop_assert!(packet.len() >= ANNOUNCE_REQUEST_LEN);
                        prop_assert!(a.port != 0);
                        write_announce_request(&mut again, &a);
                        prop_assert_eq!(&again[..ANNOUNCE_REQUEST_LEN], &packet[..ANNOUNCE_REQUEST_LEN]);
                        prop_assert_eq!(parse_request(&again), Ok(Request::Announce(a)));
                    }
                    Request::Scrape(s) => {
                        prop_assert!(!s.is_empty());
                        prop_assert_eq!(16 + 20 * s.len(), packet.len() - (packet.len() - 16) % 20);
                        let hashes: Vec<InfoHash> = s.info_hashes().collect();
                        write_scrape_request(&mut again, s.connection_id, s.transaction_id, &hashes);
                        prop_assert_eq!(&again[..], &packet[..again.len()]);
                    }
                }
            }
        }
    }

    /// A connect reply is 16 bytes, so a connect request that parses must have carried at least
    /// as many: the server never amplifies an unauthenticated packet.
    #[test]
    fn connect_never_amplifies(packet in packet()) {
        if let Ok(Request::Connect { .. }) = parse_request(&packet) {
            prop_assert!(packet.len() >= CONNECT_RESPONSE_LEN);
            prop_assert_eq!(&packet[..8], &PROTOCOL_ID.to_be_bytes());
            prop_assert_eq!(&packet[8..12], &action::CONNECT.to_be_bytes());
        }
    }

    /// No input panics; what parses is written back to the same bytes.
    #[test]
    fn arbitrary_responses(packet in packet()) {
        let mut again = Vec::new();
        match parse_response(&packet) {
            Err(_) => return Ok(()),
            Ok(Response::Connect { transaction_id, connection_id }) => {
                write_connect_response(&mut again, transaction_id, connection_id);
            }
            Ok(Response::Announce { transaction_id, interval, leechers, seeders, peers }) => {
                write_announce_response(&mut again, transaction_id, interval, leechers, seeders, peers);
            }
            Ok(Response::Scrape { transaction_id, entries }) => {
                write_scrape_response_header(&mut again, transaction_id);
                for e in scrape_entries(entries) {
                    write_scrape_response_entry(&mut again, e.seeders, e.completed, e.leechers);
                }
                prop_assert!(packet.len() - again.len() < 12);
            }
            Ok(Response::Error { transaction_id, message }) => {
                let text = String::from_utf8_lossy(message);
                write_error_response(&mut again, transaction_id, &text);
                if std::str::from_utf8(message).is_err() {
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(&again[..], &packet[..again.len()]);
    }
}
