//! Unit tests of KRPC writing: the BEP 5 examples reproduced byte for byte, and the exact
//! placement of the BEP 32/33/42/43/51 keys.

use super::*;
use crate::krpc::{error_code, parse_message, Body};
use crate::InfoHash;

const ID_A: NodeId = NodeId(*b"abcdefghij0123456789");
const ID_M: NodeId = NodeId(*b"mnopqrstuvwxyz123456");

fn query(method: &Method<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_query(&mut out, b"aa", ID_A, method, Want::default(), false, None);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bep5_queries() {
    assert_eq!(
        text(&query(&Method::Ping)),
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    );
    assert_eq!(
        text(&query(&Method::FindNode { target: ID_M })),
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e\
         1:q9:find_node1:t2:aa1:y1:qe"
    );
    assert_eq!(
        text(&query(&Method::GetPeers {
            info_hash: InfoHash(ID_M.0),
            noseed: false,
            scrape: false
        })),
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e\
         1:q9:get_peers1:t2:aa1:y1:qe"
    );
    assert_eq!(
        text(&query(&Method::AnnouncePeer {
            info_hash: InfoHash(ID_M.0),
            port: 6881,
            implied_port: true,
            token: b"aoeusnth",
            seed: false
        })),
        "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456\
         4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
    );
}

#[test]
fn bep5_responses_and_error() {
    let mut out = Vec::new();
    write_response(&mut out, b"aa", None, None, &ResponseFields::new(ID_M));
    assert_eq!(
        text(&out),
        "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"
    );

    out.clear();
    write_response(
        &mut out,
        b"aa",
        None,
        None,
        &ResponseFields {
            token: Some(b"aoeusnth"),
            values: b"axje.uidhtnm",
            ..ResponseFields::new(ID_A)
        },
    );
    assert_eq!(
        text(&out),
        "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee\
         1:t2:aa1:y1:re"
    );

    out.clear();
    write_error(
        &mut out,
        b"aa",
        None,
        None,
        error_code::GENERIC,
        "A Generic Error Ocurred",
    );
    assert_eq!(
        text(&out),
        "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"
    );
}

#[test]
fn extension_keys_in_order() {
    // BEP 32 want, BEP 33 flags, BEP 43 ro, `v`.
    let mut out = Vec::new();
    write_query(
        &mut out,
        b"t",
        ID_A,
        &Method::GetPeers {
            info_hash: InfoHash(ID_M.0),
            noseed: true,
            scrape: true,
        },
        Want { n4: true, n6: true },
        true,
        Some(b"SW01"),
    );
    assert_eq!(
        text(&out),
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseedi1e\
         6:scrapei1e4:wantl2:n42:n6ee1:q9:get_peers2:roi1e1:t1:t1:v4:SW011:y1:qe"
    );
    out.clear();
    write_query(
        &mut out,
        b"t",
        ID_A,
        &Method::AnnouncePeer {
            info_hash: InfoHash(ID_M.0),
            port: 0,
            implied_port: false,
            token: b"",
            seed: true,
        },
        Want {
            n4: false,
            n6: true,
        },
        false,
        None,
    );
    assert_eq!(
        text(&out),
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e\
         4:seedi1e5:token0:4:wantl2:n6ee1:q13:announce_peer1:t1:t1:y1:qe"
    );
    out.clear();
    write_query(
        &mut out,
        b"t",
        ID_A,
        &Method::Unknown {
            name: b"vote",
            target: Some(ID_M),
            info_hash: Some(InfoHash(ID_A.0)),
        },
        Want::default(),
        false,
        None,
    );
    assert_eq!(
        text(&out),
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:abcdefghij01234567896:target20:\
         mnopqrstuvwxyz123456e1:q4:vote1:t1:t1:y1:qe"
    );
    out.clear();
    write_query(
        &mut out,
        b"",
        ID_A,
        &Method::SampleInfohashes { target: ID_M },
        Want::default(),
        false,
        None,
    );
    assert_eq!(
        text(&out),
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e\
         1:q17:sample_infohashes1:t0:1:y1:qe"
    );
}

#[test]
fn response_with_every_key() {
    let mut nodes = Vec::new();
    write_compact_node(&mut nodes, &ID_A, "192.0.2.1:6881".parse().unwrap());
    assert_eq!(nodes.len(), COMPACT_NODE_V4_LEN);
    let mut nodes6 = Vec::new();
    write_compact_node(&mut nodes6, &ID_M, "[2001:db8::1]:6881".parse().unwrap());
    assert_eq!(nodes6.len(), COMPACT_NODE_V6_LEN);
    nodes.push(0xff); // a partial entry is dropped
    let mut out = Vec::new();
    write_response(
        &mut out,
        b"aa",
        Some("198.51.100.7:4000".parse().unwrap()),
        Some(b"SW01"),
        &ResponseFields {
            id: ID_M,
            nodes: &nodes,
            nodes6: &nodes6,
            values: &[0; 18 * 2 + 1],
            values_v6: true,
            token: Some(b"tok"),
            samples: Some(&[7; 20]),
            interval: Some(21600),
            num: Some(-1),
        },
    );
    let expected = [
        &b"d2:ip6:\xc6\x33\x64\x07\x0f\xa01:rd2:id20:mnopqrstuvwxyz1234568:intervali21600e5:nodes26:"[..],
        &nodes[..26],
        b"6:nodes638:",
        &nodes6,
        b"3:numi-1e7:samples20:",
        &[7; 20],
        b"5:token3:tok6:valuesl18:",
        &[0; 18],
        b"18:",
        &[0; 18],
        b"ee1:t2:aa1:v4:SW011:y1:re",
    ]
    .concat();
    assert_eq!(text(&out), text(&expected));
    let msg = parse_message(&out).unwrap();
    assert_eq!(msg.ip, Some("198.51.100.7:4000".parse().unwrap()));
    let Body::Response(r) = msg.body else {
        panic!()
    };
    assert_eq!(r.nodes.len(), 1);
    assert_eq!(r.nodes6.len(), 1);
    assert_eq!(r.values.len(), 2);

    // Empty samples are still written (a BEP 51 reply always carries the key).
    out.clear();
    write_response(
        &mut out,
        b"aa",
        Some("[::1]:80".parse().unwrap()),
        None,
        &ResponseFields {
            samples: Some(b""),
            ..ResponseFields::new(ID_M)
        },
    );
    let mut expected = b"d2:ip18:".to_vec();
    write_compact_addr(&mut expected, "[::1]:80".parse().unwrap());
    expected.extend_from_slice(b"1:rd2:id20:mnopqrstuvwxyz1234567:samples0:e1:t2:aa1:y1:re");
    assert_eq!(text(&out), text(&expected));
}

#[test]
fn error_with_ip_and_version() {
    let mut out = Vec::new();
    write_error(
        &mut out,
        b"xy",
        Some("10.0.0.1:1".parse().unwrap()),
        Some(b"v"),
        error_code::METHOD_UNKNOWN,
        "Method Unknown",
    );
    assert_eq!(
        out,
        b"d1:eli204e14:Method Unknowne2:ip6:\x0a\x00\x00\x01\x00\x011:t2:xy1:v1:v1:y1:ee"
    );
}

#[test]
fn compact_helpers() {
    let mut out = Vec::new();
    write_compact_addr(&mut out, "1.2.3.4:258".parse().unwrap());
    assert_eq!(out, [1, 2, 3, 4, 1, 2]);
    out.clear();
    write_compact_addr(&mut out, "[::ffff:1.2.3.4]:1".parse().unwrap());
    assert_eq!(out.len(), 18);
    assert_eq!(
        crate::krpc::compact_addr(&out),
        Some("[::ffff:1.2.3.4]:1".parse().unwrap())
    );
    assert_eq!(crate::krpc::compact_addr(&out[..17]), None);
}
