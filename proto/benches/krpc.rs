//! Benchmarks of the KRPC codec's hot paths: parsing a get_peers query (as libtorrent sends it)
//! and a find_node reply, and writing a find_node reply with 8 nodes into a reused buffer.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput};
use swarmd_proto::krpc::{
    parse_message, write_compact_node, write_query, write_response, Body, Message, Method,
    ResponseFields, Want,
};
use swarmd_proto::{InfoHash, NodeId};

/// A libtorrent get_peers query: unsorted `v` after `y`, as captured.
const GET_PEERS: &[u8] = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e\
1:q9:get_peers1:t2:aa1:y1:q1:v4:LT\x02\x08e";

fn eight_nodes() -> Vec<u8> {
    let mut nodes = Vec::with_capacity(8 * 26);
    for i in 0..8u8 {
        let addr = SocketAddr::from(([203, 0, 113, i], 6881 + u16::from(i)));
        write_compact_node(&mut nodes, &NodeId([i; 20]), addr);
    }
    nodes
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("krpc_parse");
    g.throughput(Throughput::Bytes(GET_PEERS.len() as u64));
    g.bench_function("get_peers_query", |b| {
        b.iter(|| match parse_message(black_box(GET_PEERS)) {
            Ok(m) => match m.body {
                Body::Query(q) => q.method.lookup_target().map_or(0, |t| t.0[0]),
                _ => 1,
            },
            Err(_) => 2,
        })
    });
    let mut query = Vec::new();
    write_query(
        &mut query,
        b"ab",
        NodeId([1; 20]),
        &Method::FindNode {
            target: NodeId([2; 20]),
        },
        Want { n4: true, n6: true },
        false,
        Some(b"SW01"),
    );
    g.throughput(Throughput::Bytes(query.len() as u64));
    g.bench_function("find_node_query_want", |b| {
        b.iter(|| parse_message(black_box(&query)).map(|m| m.transaction_id.len()))
    });
    let nodes = eight_nodes();
    let mut reply = Vec::new();
    write_response(
        &mut reply,
        b"ab",
        Some(([198, 51, 100, 1], 4000).into()),
        Some(b"SW01"),
        &ResponseFields {
            nodes: &nodes,
            ..ResponseFields::new(NodeId([9; 20]))
        },
    );
    g.throughput(Throughput::Bytes(reply.len() as u64));
    g.bench_function("find_node_reply_8", |b| {
        b.iter(|| match parse_message(black_box(&reply)) {
            Ok(Message {
                body: Body::Response(r),
                ..
            }) => r.nodes.iter().fold(0u16, |acc, (_, a)| acc ^ a.port()),
            _ => 0,
        })
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let nodes = eight_nodes();
    let requester: SocketAddr = ([198, 51, 100, 1], 4000).into();
    let mut out = Vec::with_capacity(1500);
    let mut g = c.benchmark_group("krpc_write");
    g.bench_function("find_node_reply_8", |b| {
        b.iter(|| {
            out.clear();
            write_response(
                &mut out,
                black_box(b"aa"),
                Some(requester),
                Some(b"SW01"),
                &ResponseFields {
                    nodes: black_box(&nodes),
                    ..ResponseFields::new(NodeId([9; 20]))
                },
            );
            out.len()
        })
    });
    g.bench_function("get_peers_query", |b| {
        b.iter(|| {
            out.clear();
            write_query(
                &mut out,
                black_box(b"aa"),
                NodeId([1; 20]),
                &Method::GetPeers {
                    info_hash: InfoHash([2; 20]),
                    noseed: false,
                    scrape: false,
                },
                Want::default(),
                false,
                Some(b"SW01"),
            );
            out.len()
        })
    });
    g.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn` they
// generate (which the workspace's `missing_docs` lint rejects).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_parse(&mut c);
    bench_write(&mut c);
    c.final_summary();
}
