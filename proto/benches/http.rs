//! Benchmarks of the HTTP tracker codec's hot paths: parsing a realistic announce query and
//! writing a 50-peer compact reply into a reused buffer.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use swarmd_proto::http::{
    parse_announce, parse_scrape, write_announce, write_scrape, AnnounceResponse, Peers, ScrapeFile,
};
use swarmd_proto::InfoHash;

/// What libtorrent 2.0 (qBittorrent 4.6) sends: a fully escaped binary info hash, an id with a
/// few raw bytes, and the usual extension parameters.
const ANNOUNCE: &[u8] = b"info_hash=%d8%8a%1b%c3%9e%f0%12%7f%aa%5c%04%e1%b2%93%c6%7d%0e%84%f1%3a\
&peer_id=-qB4650-%21Wp%28k*Lm~3%29_&port=6881&uploaded=0&downloaded=0&left=1234567890\
&corrupt=0&key=6E5C3A27&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1\
&redundant=0";

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_parse");
    g.throughput(Throughput::Bytes(ANNOUNCE.len() as u64));
    g.bench_function("announce_libtorrent", |b| {
        b.iter(|| parse_announce(black_box(ANNOUNCE)).map(|q| q.left))
    });
    let scrape: Vec<u8> = (0..10u8)
        .map(|i| format!("info_hash={}", "%ab".repeat(19) + &format!("%{i:02x}")))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    let mut hashes = Vec::with_capacity(64);
    g.throughput(Throughput::Bytes(scrape.len() as u64));
    g.bench_function("scrape_10", |b| {
        b.iter(|| parse_scrape(black_box(&scrape), 64, &mut hashes).map(|()| hashes.len()))
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let v4: Vec<u8> = (0..50u8).flat_map(|i| [10, 0, i, 1, 0x1a, 0xe1]).collect();
    let mut out = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("http_write");
    g.bench_function("announce_compact_50", |b| {
        b.iter(|| {
            out.clear();
            let r = AnnounceResponse {
                interval: 1800,
                min_interval: 900,
                complete: 1234,
                incomplete: 56,
                downloaded: 7890,
                tracker_id: None,
                warning: None,
                peers: Peers::Compact {
                    v4: black_box(&v4),
                    v6: &[],
                },
            };
            write_announce(&mut out, &r);
            out.len()
        })
    });
    g.bench_function("announce_dicts_50", |b| {
        b.iter(|| {
            out.clear();
            let r = AnnounceResponse {
                interval: 1800,
                min_interval: 900,
                complete: 1234,
                incomplete: 56,
                downloaded: 7890,
                tracker_id: None,
                warning: None,
                peers: Peers::Dicts {
                    v4: black_box(&v4),
                    v6: &[],
                    v4_ids: None,
                    v6_ids: None,
                },
            };
            write_announce(&mut out, &r);
            out.len()
        })
    });
    let files: Vec<ScrapeFile> = (0..10u8)
        .map(|i| ScrapeFile {
            info_hash: InfoHash([i.wrapping_mul(37); 20]),
            complete: 5,
            ..Default::default()
        })
        .collect();
    let mut scratch = files.clone();
    g.bench_function("scrape_10", |b| {
        b.iter(|| {
            out.clear();
            scratch.copy_from_slice(&files);
            write_scrape(&mut out, &mut scratch, Some(900));
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
