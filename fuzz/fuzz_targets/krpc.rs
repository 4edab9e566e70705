//! Fuzzes the KRPC codec (BEP 5 + 32/33/42/43/51) with arbitrary datagrams: `parse_message`;
//! whatever parses is written back (query, reply or error) and must parse again to the same
//! fields; a refused query with a transaction id gets a 203 error that must itself parse.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use swarmd_proto::bep42;
use swarmd_proto::krpc::{
    error_code, parse_message, write_compact_addr, write_error, write_query, write_response, Body,
    Message, ResponseFields, COMPACT_NODE_V4_LEN, COMPACT_NODE_V6_LEN, MAX_TRANSACTION_ID_LEN,
};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let msg = match parse_message(data) {
        Ok(msg) => msg,
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty() && text.len() < 40, "{text}");
            if let Some(tid) = e.transaction_id {
                assert!(tid.len() <= MAX_TRANSACTION_ID_LEN);
                write_error(&mut out, tid, None, None, error_code::PROTOCOL, &text);
                let again = parse_message(&out).expect("our error reply parses");
                assert_eq!(again.transaction_id, tid);
                assert_eq!(
                    again.body,
                    Body::Error {
                        code: error_code::PROTOCOL,
                        message: text.as_bytes()
                    }
                );
            }
            return;
        }
    };
    assert!(msg.transaction_id.len() <= MAX_TRANSACTION_ID_LEN);

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
            let again = parse_message(&out).expect("our query parses");
            // Queries are written without `ip`.
            assert_eq!(again, Message { ip: None, ..msg });
            if let Some(ip) = msg.ip {
                let _ = bep42::is_exempt(ip.ip()) || bep42::is_valid_node_id(&q.id, ip.ip());
            }
        }
        Body::Response(r) => {
            assert_eq!(r.nodes.raw().len(), r.nodes.len() * COMPACT_NODE_V4_LEN);
            assert_eq!(r.nodes6.raw().len(), r.nodes6.len() * COMPACT_NODE_V6_LEN);
            for (id, addr) in r.nodes.iter() {
                let _ = bep42::is_valid_node_id(&id, (*addr.ip()).into());
            }
            // `values` may mix families; the writer takes one: write the IPv4 peers, unless
            // there are none.
            let peers: Vec<SocketAddr> = r.values.iter().collect();
            assert_eq!(peers.len(), r.values.len());
            let values_v6 = peers.iter().all(SocketAddr::is_ipv6) && !peers.is_empty();
            let kept: Vec<SocketAddr> = peers
                .into_iter()
                .filter(|p| p.is_ipv6() == values_v6)
                .collect();
            let mut values = Vec::new();
            for p in &kept {
                write_compact_addr(&mut values, *p);
            }
            write_response(
                &mut out,
                msg.transaction_id,
                msg.ip,
                msg.version,
                &ResponseFields {
                    id: r.id,
                    nodes: r.nodes.raw(),
                    nodes6: r.nodes6.raw(),
                    values: &values,
                    values_v6,
                    token: r.token,
                    samples: (!r.samples.is_empty()).then_some(r.samples),
                    interval: r.interval,
                    num: r.num,
                },
            );
            let again = parse_message(&out).expect("our reply parses");
            assert_eq!(
                (
                    again.transaction_id,
                    again.ip,
                    again.version,
                    again.read_only
                ),
                (msg.transaction_id, msg.ip, msg.version, false)
            );
            let Body::Response(p) = again.body else {
                panic!("not a reply")
            };
            assert_eq!((p.id, p.nodes, p.nodes6), (r.id, r.nodes, r.nodes6));
            assert_eq!(p.values.iter().collect::<Vec<_>>(), kept);
            assert_eq!((p.token, p.samples), (r.token, r.samples));
            assert_eq!((p.interval, p.num), (r.interval, r.num));
        }
        Body::Error { code, message } => {
            let Ok(text) = std::str::from_utf8(message) else {
                return;
            };
            write_error(
                &mut out,
                msg.transaction_id,
                msg.ip,
                msg.version,
                code,
                text,
            );
            let again = parse_message(&out).expect("our error parses");
            assert_eq!(
                again,
                Message {
                    read_only: false,
                    ..msg
                }
            );
        }
    }
});
