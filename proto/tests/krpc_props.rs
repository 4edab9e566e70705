//! Property tests of the KRPC codec: every query, reply and error written from arbitrary values
//! parses back to those values; every writer's output is canonical bencode; no input (random,
//! mutated or deeply nested) makes the parser panic or overflow the stack.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use serde_bencode::value::Value;
use swarmd_proto::krpc::{
    parse_message, write_compact_node, write_error, write_query, write_response, Body,
    KrpcErrorKind, Message, Method, Query, ResponseFields, Want, COMPACT_NODE_V4_LEN,
    COMPACT_NODE_V6_LEN, MAX_TOKEN_LEN, MAX_TRANSACTION_ID_LEN,
};
use swarmd_proto::{InfoHash, NodeId};

// ---------------------------------------------------------------------------------------------
// Strategies

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn info_hash() -> impl Strategy<Value = InfoHash> {
    any::<[u8; 20]>().prop_map(InfoHash)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| (Ipv4Addr::from(a), p).into()),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| (Ipv6Addr::from(a), p).into()),
    ]
}

fn want() -> impl Strategy<Value = Want> {
    (any::<bool>(), any::<bool>()).prop_map(|(n4, n6)| Want { n4, n6 })
}

/// An owned method, borrowed as a [`Method`] for writing.
#[derive(Debug, Clone)]
enum OwnedMethod {
    Ping,
    FindNode(NodeId),
    GetPeers(InfoHash, bool, bool),
    AnnouncePeer(InfoHash, u16, bool, Vec<u8>, bool),
    Sample(NodeId),
    Unknown(Vec<u8>, Option<NodeId>, Option<InfoHash>),
}

impl OwnedMethod {
    fn borrow(&self) -> Method<'_> {
        match self {
            Self::Ping => Method::Ping,
            Self::FindNode(target) => Method::FindNode { target: *target },
            Self::GetPeers(info_hash, noseed, scrape) => Method::GetPeers {
                info_hash: *info_hash,
                noseed: *noseed,
                scrape: *scrape,
            },
            Self::AnnouncePeer(info_hash, port, implied_port, token, seed) => {
                Method::AnnouncePeer {
                    info_hash: *info_hash,
                    port: *port,
                    implied_port: *implied_port,
                    token,
                    seed: *seed,
                }
            }
            Self::Sample(target) => Method::SampleInfohashes { target: *target },
            Self::Unknown(name, target, info_hash) => Method::Unknown {
                name,
                target: *target,
                info_hash: *info_hash,
            },
        }
    }
}

const KNOWN: [&[u8]; 5] = [
    b"ping",
    b"find_node",
    b"get_peers",
    b"announce_peer",
    b"sample_infohashes",
];

fn method() -> impl Strategy<Value = OwnedMethod> {
    prop_oneof![
        Just(OwnedMethod::Ping),
        node_id().prop_map(OwnedMethod::FindNode),
        (info_hash(), any::<bool>(), any::<bool>())
            .prop_map(|(h, n, s)| OwnedMethod::GetPeers(h, n, s)),
        (
            info_hash(),
            any::<u16>(),
            any::<bool>(),
            bytes(MAX_TOKEN_LEN),
            any::<bool>()
        )
            .prop_map(|(h, p, i, t, s)| OwnedMethod::AnnouncePeer(h, p, i, t, s)),
        node_id().prop_map(OwnedMethod::Sample),
        (
            bytes(24).prop_filter("a known method", |n| !KNOWN.contains(&&n[..])),
            prop::option::of(node_id()),
            prop::option::of(info_hash()),
        )
            .prop_map(|(n, t, h)| OwnedMethod::Unknown(n, t, h)),
    ]
}

#[derive(Debug, Clone)]
struct Reply {
    id: NodeId,
    nodes: Vec<(NodeId, SocketAddr)>,
    nodes6: Vec<(NodeId, SocketAddr)>,
    values: Vec<SocketAddr>,
    values_v6: bool,
    token: Option<Vec<u8>>,
    samples: Option<Vec<u8>>,
    interval: Option<i64>,
    num: Option<i64>,
}

fn v4_addr() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| (Ipv4Addr::from(a), p).into())
}

fn v6_addr() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| (Ipv6Addr::from(a), p).into())
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        node_id(),
        prop::collection::vec((node_id(), v4_addr()), 0..9),
        prop::collection::vec((node_id(), v6_addr()), 0..9),
        any::<bool>().prop_flat_map(|v6| {
            let peer = if v6 {
                v6_addr().boxed()
            } else {
                v4_addr().boxed()
            };
            (Just(v6), prop::collection::vec(peer, 0..20))
        }),
        prop::option::of(bytes(MAX_TOKEN_LEN)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..=100)),
        any::<Option<i64>>(),
        any::<Option<i64>>(),
    )
        .prop_map(
            |(id, nodes, nodes6, (values_v6, values), token, samples, interval, num)| Reply {
                id,
                nodes,
                nodes6,
                values,
                values_v6,
                token,
                samples,
                interval,
                num,
            },
        )
}

fn compact_peers(peers: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in peers {
        match p.ip() {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&p.port().to_be_bytes());
    }
    out
}

fn compact_nodes(nodes: &[(NodeId, SocketAddr)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, addr) in nodes {
        write_compact_node(&mut out, id, *addr);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Canonical bencode

/// Decodes with serde_bencode and re-encodes: serde_bencode sorts keys when encoding, so equal
/// bytes prove our keys were sorted and unique and every item canonical.
fn assert_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    let value: Value = serde_bencode::from_bytes(bytes)
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(bytes))))?;
    let again = serde_bencode::to_bytes(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(bytes)
    );
    prop_assert!(matches!(value, Value::Dict(_)));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn queries_round_trip(
        tid in bytes(MAX_TRANSACTION_ID_LEN),
        id in node_id(),
        m in method(),
        want in want(),
        read_only in any::<bool>(),
        version in prop::option::of(bytes(8)),
    ) {
        let method = m.borrow();
        let mut out = Vec::new();
        write_query(&mut out, &tid, id, &method, want, read_only, version.as_deref());
        assert_canonical(&out)?;
        let msg = parse_message(&out).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(msg, Message {
            transaction_id: &tid,
            body: Body::Query(Query { id, method, want }),
            ip: None,
            read_only,
            version: version.as_deref(),
        });
    }

    #[test]
    fn responses_round_trip(
        tid in bytes(MAX_TRANSACTION_ID_LEN),
        r in reply(),
        requester in prop::option::of(addr()),
        version in prop::option::of(bytes(8)),
    ) {
        let nodes = compact_nodes(&r.nodes);
        let nodes6 = compact_nodes(&r.nodes6);
        let values = compact_peers(&r.values);
        let mut out = Vec::new();
        write_response(&mut out, &tid, requester, version.as_deref(), &ResponseFields {
            id: r.id,
            nodes: &nodes,
            nodes6: &nodes6,
            values: &values,
            values_v6: r.values_v6,
            token: r.token.as_deref(),
            samples: r.samples.as_deref(),
            interval: r.interval,
            num: r.num,
        });
        assert_canonical(&out)?;
        let msg = parse_message(&out).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(msg.transaction_id, &tid[..]);
        prop_assert_eq!(msg.ip, requester);
        prop_assert_eq!(msg.version, version.as_deref());
        prop_assert!(!msg.read_only);
        let Body::Response(p) = msg.body else {
            return Err(TestCaseError::fail("not a response"));
        };
        prop_assert_eq!(p.id, r.id);
        prop_assert_eq!(p.nodes.raw(), &nodes[..]);
        prop_assert_eq!(p.nodes.len(), r.nodes.len());
        let got: Vec<(NodeId, SocketAddr)> = p.nodes.iter().map(|(i, a)| (i, a.into())).collect();
        prop_assert_eq!(got, r.nodes.clone());
        let got: Vec<(NodeId, SocketAddr)> = p.nodes6.iter().map(|(i, a)| (i, a.into())).collect();
        prop_assert_eq!(got, r.nodes6.clone());
        prop_assert_eq!(p.nodes6.raw().len(), r.nodes6.len() * COMPACT_NODE_V6_LEN);
        prop_assert_eq!(p.values.iter().collect::<Vec<_>>(), r.values.clone());
        prop_assert_eq!(p.values.len(), r.values.len());
        prop_assert_eq!(p.token, r.token.as_deref());
        prop_assert_eq!(p.samples, r.samples.as_deref().unwrap_or_default());
        prop_assert_eq!(p.sample_hashes().len(), p.samples.len() / 20);
        prop_assert_eq!((p.interval, p.num), (r.interval, r.num));
    }

    #[test]
    fn errors_round_trip(
        tid in bytes(MAX_TRANSACTION_ID_LEN),
        code in any::<i64>(),
        message in ".{0,40}",
        requester in prop::option::of(addr()),
        version in prop::option::of(bytes(8)),
    ) {
        let mut out = Vec::new();
        write_error(&mut out, &tid, requester, version.as_deref(), code, &message);
        assert_canonical(&out)?;
        let msg = parse_message(&out).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(msg, Message {
            transaction_id: &tid,
            body: Body::Error { code, message: message.as_bytes() },
            ip: requester,
            read_only: false,
            version: version.as_deref(),
        });
    }

    #[test]
    fn partial_entries_are_dropped(
        r in reply(),
        extra in 1usize..26,
    ) {
        let mut nodes = compact_nodes(&r.nodes);
        let whole = nodes.len();
        nodes.extend(std::iter::repeat_n(0xee, extra.min(COMPACT_NODE_V4_LEN - 1)));
        let mut out = Vec::new();
        write_response(&mut out, b"t", None, None, &ResponseFields {
            nodes: &nodes,
            ..ResponseFields::new(r.id)
        });
        assert_canonical(&out)?;
        let Ok(Message { body: Body::Response(p), .. }) = parse_message(&out) else {
            return Err(TestCaseError::fail("did not parse"));
        };
        prop_assert_eq!(p.nodes.raw(), &nodes[..whole]);
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// Checks what the parser promises on any input: no panic, bounded answers, and whatever
/// parses writes back to something that parses to the same message.
fn check_any(data: &[u8]) -> Result<(), TestCaseError> {
    match parse_message(data) {
        Err(e) => {
            let text = e.to_string();
            prop_assert!(!text.is_empty() && text.len() < 40, "{}", text);
            if let Some(tid) = e.transaction_id {
                prop_assert!(tid.len() <= MAX_TRANSACTION_ID_LEN);
                prop_assert!(!matches!(
                    e.kind,
                    KrpcErrorKind::Malformed | KrpcErrorKind::TooDeep | KrpcErrorKind::NotADict
                ));
            }
        }
        Ok(msg) => {
            prop_assert!(msg.transaction_id.len() <= MAX_TRANSACTION_ID_LEN);
            let mut out = Vec::new();
            match msg.body {
                Body::Query(q) => {
                    write_query(
                        &mut out,
                        msg.transaction_id,
                        q.id,
                        &q.method,
                        q.want,
                        msg.read_only,
                        msg.version,
                    );
                    let again =
                        parse_message(&out).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    // `ip` is not written in queries.
                    prop_assert_eq!(again, Message { ip: None, ..msg });
                }
                Body::Response(r) => {
                    prop_assert_eq!(r.nodes.raw().len() % COMPACT_NODE_V4_LEN, 0);
                    let _ = r.values.iter().count();
                    let _ = r.nodes6.iter().count();
                }
                Body::Error { .. } => {}
            }
        }
    }
    Ok(())
}

fn valid_messages() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"
            .to_vec(),
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee".to_vec(),
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456\
          4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
            .to_vec(),
    ];
    let mut out = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..8u8 {
        write_compact_node(&mut nodes, &NodeId([i; 20]), ([10, 0, 0, i], 6881).into());
    }
    write_response(
        &mut out,
        b"ab",
        Some(([192, 0, 2, 1], 1).into()),
        Some(b"SW01"),
        &ResponseFields {
            nodes: &nodes,
            samples: Some(&[1; 40]),
            interval: Some(60),
            num: Some(2),
            ..ResponseFields::new(NodeId([9; 20]))
        },
    );
    v.push(out);
    v
}

/// Tokens that assemble into bencode-like packets, to reach past the syntax checks.
const PIECES: [&[u8]; 23] = [
    b"d",
    b"l",
    b"e",
    b"i1e",
    b"i-5e",
    b"1:t",
    b"1:y",
    b"1:q",
    b"1:r",
    b"1:a",
    b"1:e",
    b"2:id",
    b"20:abcdefghij0123456789",
    b"4:ping",
    b"2:aa",
    b"6:target",
    b"5:nodes",
    b"6:values",
    b"2:ip",
    b"6:\x01\x02\x03\x04\x05\x06",
    b"0:",
    b"9:",
    b"9:find_node",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(300)) {
        check_any(&data)?;
    }

    #[test]
    fn bencode_shaped_bytes_never_panic(
        pieces in prop::collection::vec(
            prop::sample::select(&PIECES[..]),
            0..40,
        )
    ) {
        check_any(&pieces.concat())?;
    }

    #[test]
    fn mutated_messages_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut data = valid_messages().swap_remove(which);
        for (at, byte, op) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                2 => { data.remove(i); }
                _ => data.truncate(i),
            }
            check_any(&data)?;
        }
    }
}

#[test]
fn valid_messages_parse() {
    for m in valid_messages() {
        assert!(parse_message(&m).is_ok(), "{}", String::from_utf8_lossy(&m));
        check_any(&m).unwrap();
    }
}

#[test]
fn deep_nesting_is_refused_without_stack_overflow() {
    for open in [b'l', b'd'] {
        let data = vec![open; 10_000];
        let e = parse_message(&data).unwrap_err();
        assert_eq!(e.transaction_id, None);
    }
    assert_eq!(
        parse_message(&[b'l'; 10_000]).unwrap_err().kind,
        KrpcErrorKind::TooDeep
    );
    // Deep nesting hidden in an unknown key of a query: silence, not a 203.
    let deep = [
        &b"d1:ad2:id20:abcdefghij01234567891:x"[..],
        &[b'l'; 100_000],
        &[b'e'; 100_000],
        b"e1:q4:ping1:t2:aa1:y1:qe",
    ]
    .concat();
    assert_eq!(
        parse_message(&deep).unwrap_err(),
        swarmd_proto::krpc::KrpcError {
            kind: KrpcErrorKind::TooDeep,
            transaction_id: None
        }
    );
    // Deeply nested dictionaries too.
    let dicts = [b"d1:x".repeat(10_000), b"e".repeat(10_001)].concat();
    assert_eq!(
        parse_message(&dicts).unwrap_err().kind,
        KrpcErrorKind::TooDeep
    );
}
