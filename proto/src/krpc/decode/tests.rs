//! Unit tests of KRPC parsing: the BEP 5 examples byte for byte, the BEP 32/33/42/43/51 keys,
//! real-client quirks and liberal reading. Errors are in `error_tests.rs`.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::*;
use crate::krpc::COMPACT_NODE_V4_LEN;

const ID_A: NodeId = NodeId(*b"abcdefghij0123456789");
const ID_M: NodeId = NodeId(*b"mnopqrstuvwxyz123456");

fn query(packet: &[u8]) -> (Message<'_>, Query<'_>) {
    let msg = parse_message(packet).unwrap_or_else(|e| panic!("{e:?}"));
    let Body::Query(q) = msg.body else {
        panic!("not a query: {msg:?}")
    };
    (msg, q)
}

fn response(packet: &[u8]) -> (Message<'_>, Response<'_>) {
    let msg = parse_message(packet).unwrap_or_else(|e| panic!("{e:?}"));
    let Body::Response(r) = msg.body else {
        panic!("not a response: {msg:?}")
    };
    (msg, r)
}

// ---------------------------------------------------------------------------------------------
// BEP 5 examples

#[test]
fn bep5_ping() {
    let (msg, q) = query(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
    assert_eq!(msg.transaction_id, b"aa");
    assert_eq!((msg.ip, msg.read_only, msg.version), (None, false, None));
    assert_eq!(
        q,
        Query {
            id: ID_A,
            method: Method::Ping,
            want: Want::default()
        }
    );
    let (msg, r) = response(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re");
    assert_eq!(msg.transaction_id, b"aa");
    assert_eq!(r.id, ID_M);
    assert!(r.nodes.is_empty() && r.nodes6.is_empty() && r.values.is_empty());
    assert_eq!(
        (r.token, r.samples, r.interval, r.num),
        (None, &b""[..], None, None)
    );
}

#[test]
fn bep5_find_node() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e\
          1:q9:find_node1:t2:aa1:y1:qe",
    );
    assert_eq!(q.id, ID_A);
    assert_eq!(q.method, Method::FindNode { target: ID_M });
    assert_eq!(q.method.lookup_target(), Some(ID_M));
    // The BEP's example reply carries 9 bytes of "nodes": no whole node.
    let (_, r) = response(b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re");
    assert_eq!(r.id, NodeId(*b"0123456789abcdefghij"));
    assert!(r.nodes.is_empty());
    assert_eq!(r.nodes.raw(), b"");
}

#[test]
fn bep5_get_peers() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e\
          1:q9:get_peers1:t2:aa1:y1:qe",
    );
    let info_hash = InfoHash(ID_M.0);
    assert_eq!(
        q.method,
        Method::GetPeers {
            info_hash,
            noseed: false,
            scrape: false
        }
    );
    // With values.
    let (_, r) = response(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee\
          1:t2:aa1:y1:re",
    );
    assert_eq!(r.token, Some(&b"aoeusnth"[..]));
    let peers: Vec<SocketAddr> = r.values.iter().collect();
    let peer = |b: &[u8; 6]| {
        SocketAddr::V4(SocketAddrV4::new(
            [b[0], b[1], b[2], b[3]].into(),
            u16::from_be_bytes([b[4], b[5]]),
        ))
    };
    assert_eq!(peers, [peer(b"axje.u"), peer(b"idhtnm")]);
    assert_eq!(r.values.len(), 2);
    assert_eq!(r.values.raw(), b"6:axje.u6:idhtnm");
    // With nodes.
    let (_, r) = response(
        b"d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re",
    );
    assert!(r.values.is_empty() && r.nodes.is_empty());
    assert_eq!(r.token, Some(&b"aoeusnth"[..]));
}

#[test]
fn bep5_announce_peer() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456\
          4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
    );
    assert_eq!(
        q.method,
        Method::AnnouncePeer {
            info_hash: InfoHash(ID_M.0),
            port: 6881,
            implied_port: true,
            token: b"aoeusnth",
            seed: false
        }
    );
    // implied_port: the port may be absent or out of range.
    for port in [&b""[..], b"4:porti70000e", b"4:port3:abc"] {
        let packet = [
            &b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456"[..],
            port,
            b"5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
        ]
        .concat();
        let (_, q) = query(&packet);
        let Method::AnnouncePeer {
            port, implied_port, ..
        } = q.method
        else {
            panic!()
        };
        assert_eq!((port, implied_port), (0, true));
    }
    let (_, r) = response(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re");
    assert_eq!(r.id, ID_M);
}

#[test]
fn bep5_error() {
    let msg = parse_message(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
    assert_eq!(msg.transaction_id, b"aa");
    assert_eq!(
        msg.body,
        Body::Error {
            code: 201,
            message: b"A Generic Error Ocurred"
        }
    );
    // Extra items are ignored; negative codes parse.
    let msg = parse_message(b"d1:eli-1e0:i5ee1:t0:1:y1:ee").unwrap();
    assert_eq!(
        msg.body,
        Body::Error {
            code: -1,
            message: b""
        }
    );
    assert_eq!(msg.transaction_id, b"");
}

// ---------------------------------------------------------------------------------------------
// Extensions

#[test]
fn bep32_nodes6_and_want() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee\
          1:q9:find_node1:t2:aa1:y1:qe",
    );
    assert_eq!(q.want, Want { n4: true, n6: true });
    let (_, q) =
        query(b"d1:ad2:id20:abcdefghij01234567894:wantl2:n62:n8i4eee1:q4:ping1:t2:aa1:y1:qe");
    assert_eq!(
        q.want,
        Want {
            n4: false,
            n6: true
        }
    );
    let (_, q) = query(b"d1:ad2:id20:abcdefghij01234567894:wantlee1:q4:ping1:t2:aa1:y1:qe");
    assert!(q.want.is_empty());

    let mut node6 = Vec::from(*b"mnopqrstuvwxyz123456");
    node6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    node6.extend_from_slice(&6881u16.to_be_bytes());
    let mut node4 = Vec::from(*b"abcdefghij0123456789");
    node4.extend_from_slice(&[192, 0, 2, 1, 0x1a, 0xe1]);
    let packet = [
        &b"d1:rd2:id20:abcdefghij01234567895:nodes27:"[..],
        &node4,
        b"x6:nodes639:",
        &node6,
        b"!e1:t2:aa1:y1:re",
    ]
    .concat();
    let (_, r) = response(&packet);
    assert_eq!(r.nodes.len(), 1);
    assert_eq!(r.nodes.raw().len(), COMPACT_NODE_V4_LEN);
    assert_eq!(
        r.nodes.iter().collect::<Vec<_>>(),
        [(ID_A, SocketAddrV4::new([192, 0, 2, 1].into(), 6881))]
    );
    assert_eq!(
        r.nodes6.iter().collect::<Vec<_>>(),
        [(ID_M, SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6881, 0, 0))]
    );
    // IPv6 peers in values are 18 bytes; other lengths are skipped.
    let mut peer6 = Ipv6Addr::LOCALHOST.octets().to_vec();
    peer6.extend_from_slice(&[0, 80]);
    let packet = [
        &b"d1:rd2:id20:abcdefghij01234567896:valuesl18:"[..],
        &peer6,
        b"5:short0:4:abcdee1:t2:aa1:y1:re",
    ]
    .concat();
    let (_, r) = response(&packet);
    assert_eq!(
        r.values.iter().collect::<Vec<_>>(),
        ["[::1]:80".parse().unwrap()]
    );
    assert_eq!(r.values.len(), 1);
    assert!(!r.values.is_empty());
}

#[test]
fn bep42_ip() {
    let (msg, _) =
        response(b"d2:ip6:\xc0\x00\x02\x07\x1a\xe11:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re");
    assert_eq!(msg.ip, Some("192.0.2.7:6881".parse().unwrap()));
    let packet = [
        &b"d2:ip18:"[..],
        &Ipv6Addr::LOCALHOST.octets(),
        b"\x00\x501:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
    ]
    .concat();
    let (msg, _) = response(&packet);
    assert_eq!(msg.ip, Some("[::1]:80".parse().unwrap()));
    // Another length, or another type, is ignored.
    for ip in [&b"2:ip4:\xc0\x00\x02\x07"[..], b"2:ipi1e", b"2:iple"] {
        let packet = [
            &b"d"[..],
            ip,
            b"1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        ]
        .concat();
        assert_eq!(response(&packet).0.ip, None);
    }
}

#[test]
fn bep43_read_only() {
    let (msg, _) = query(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe");
    assert!(msg.read_only);
    let (msg, _) = query(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi0e1:t2:aa1:y1:qe");
    assert!(!msg.read_only);
    let (msg, _) = query(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:ro1:11:t2:aa1:y1:qe");
    assert!(!msg.read_only);
}

#[test]
fn bep51_sample_infohashes() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e\
          1:q17:sample_infohashes1:t2:aa1:y1:qe",
    );
    assert_eq!(q.method, Method::SampleInfohashes { target: ID_M });
    let (_, r) = response(
        b"d1:rd2:id20:abcdefghij01234567898:intervali21600e5:nodes0:3:numi2e\
          7:samples40:mnopqrstuvwxyz123456abcdefghij0123456789e1:t2:aa1:y1:re",
    );
    assert_eq!((r.interval, r.num), (Some(21600), Some(2)));
    assert_eq!(r.samples.len(), 40);
    assert_eq!(
        r.sample_hashes().collect::<Vec<_>>(),
        [InfoHash(ID_M.0), InfoHash(ID_A.0)]
    );
}

#[test]
fn bep33_flags() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseedi1e\
          6:scrapei1ee1:q9:get_peers1:t2:aa1:y1:qe",
    );
    assert_eq!(
        q.method,
        Method::GetPeers {
            info_hash: InfoHash(ID_M.0),
            noseed: true,
            scrape: true
        }
    );
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e\
          4:seedi1e5:token0:e1:q13:announce_peer1:t2:aa1:y1:qe",
    );
    let Method::AnnouncePeer {
        port,
        seed,
        token,
        implied_port,
        ..
    } = q.method
    else {
        panic!()
    };
    assert_eq!(
        (port, seed, token, implied_port),
        (1, true, &b""[..], false)
    );
}

// ---------------------------------------------------------------------------------------------
// Real-client quirks and liberal reading

#[test]
fn libtorrent_get_peers_with_unsorted_keys_and_unknown_keys() {
    let packet = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e\
                   1:q9:get_peers1:t2:aa1:y1:q1:v4:LT\x02\x08e";
    let (msg, q) = query(packet);
    assert_eq!(msg.version, Some(&b"LT\x02\x08"[..]));
    assert_eq!(q.method.lookup_target(), Some(ID_M));
    // `bs` (and any other unknown key) is skipped, at the top and in `a`, whatever its value.
    let packet = b"d1:ad2:bsi1e2:id20:abcdefghij01234567895:zzzzzd1:xl1:yee9:info_hash20:\
                   mnopqrstuvwxyz123456e2:bsi1e1:q9:get_peers1:t2:aa1:y1:q1:v4:LT\x02\x08e";
    assert_eq!(query(packet).1, q);
}

#[test]
fn unknown_methods() {
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q3:get1:t2:aa1:y1:qe",
    );
    assert_eq!(
        q.method,
        Method::Unknown {
            name: b"get",
            target: Some(ID_M),
            info_hash: None
        }
    );
    assert_eq!(q.method.lookup_target(), Some(ID_M));
    let (_, q) = query(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q1:x1:t2:aa1:y1:qe",
    );
    assert_eq!(q.method.lookup_target(), Some(ID_M));
    assert_eq!(q.method.name(), b"x");
    // Neither (or not 20 bytes): answer 204.
    let (_, q) = query(b"d1:ad2:id20:abcdefghij01234567896:target3:abce1:q3:put1:t2:aa1:y1:qe");
    assert_eq!(
        q.method,
        Method::Unknown {
            name: b"put",
            target: None,
            info_hash: None
        }
    );
    assert_eq!(q.method.lookup_target(), None);
}

#[test]
fn unused_arguments_are_not_checked_and_duplicates_take_the_last() {
    // A ping with a bogus target.
    query(b"d1:ad2:id20:abcdefghij01234567896:targeti1ee1:q4:ping1:t2:aa1:y1:qe");
    let (msg, q) = query(
        b"d1:ad2:id20:mnopqrstuvwxyz1234562:id20:abcdefghij0123456789e1:q4:ping1:t2:bb1:t2:aa1:y1:qe",
    );
    assert_eq!((msg.transaction_id, q.id), (&b"aa"[..], ID_A));
}
