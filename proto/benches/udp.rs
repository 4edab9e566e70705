//! Benchmarks of the UDP tracker codec's hot paths: parsing an announce (plain, and with BEP 41
//! URL data) and a scrape, and writing 50-peer announce replies into a reused buffer.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use swarmd_proto::udp::{
    parse_request, write_announce_request, write_announce_response, write_scrape_request,
    write_scrape_response_entry, write_scrape_response_header, AnnounceRequest, Request, UrlData,
};
use swarmd_proto::{Event, InfoHash, PeerId};

fn announce(url: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_announce_request(
        &mut out,
        &AnnounceRequest {
            connection_id: 0x1234_5678_9abc_def0,
            transaction_id: 0xdead_beef,
            info_hash: InfoHash([0xd8; 20]),
            peer_id: PeerId(*b"-qB4650-!Wp(k*Lm~3)_"),
            downloaded: 0,
            left: 1_234_567_890,
            uploaded: 0,
            event: Event::Started,
            ip: None,
            key: 0x6e5c_3a27,
            num_want: 200,
            port: 6881,
            url_data: UrlData::new(url),
        },
    );
    out
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp_parse");
    let plain = announce(b"");
    assert_eq!(plain.len(), 98);
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("announce_98", |b| {
        b.iter(|| match parse_request(black_box(&plain)) {
            Ok(Request::Announce(a)) => a.left,
            _ => 0,
        })
    });
    let passkey = announce(b"/0123456789abcdef0123456789abcdef/announce");
    g.throughput(Throughput::Bytes(passkey.len() as u64));
    g.bench_function("announce_url_data", |b| {
        b.iter(|| match parse_request(black_box(&passkey)) {
            Ok(Request::Announce(a)) => a.url_data.as_contiguous().map_or(0, <[u8]>::len),
            _ => 0,
        })
    });
    let hashes: Vec<InfoHash> = (0..10u8).map(|i| InfoHash([i; 20])).collect();
    let mut scrape = Vec::new();
    write_scrape_request(&mut scrape, 1, 2, &hashes);
    g.throughput(Throughput::Bytes(scrape.len() as u64));
    g.bench_function("scrape_10", |b| {
        b.iter(|| match parse_request(black_box(&scrape)) {
            Ok(Request::Scrape(s)) => s.info_hashes().fold(0u8, |acc, h| acc ^ h.0[0]),
            _ => 0,
        })
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let v4: Vec<u8> = (0..50u8).flat_map(|i| [10, 0, i, 1, 0x1a, 0xe1]).collect();
    let v6: Vec<u8> = (0..50u8)
        .flat_map(|i| {
            [
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i, 0x1a, 0xe1,
            ]
        })
        .collect();
    let mut out = Vec::with_capacity(1500);
    let mut g = c.benchmark_group("udp_write");
    g.bench_function("announce_v4_50", |b| {
        b.iter(|| {
            out.clear();
            write_announce_response(&mut out, 0xdead_beef, 1800, 56, 1234, black_box(&v4));
            out.len()
        })
    });
    g.bench_function("announce_v6_50", |b| {
        b.iter(|| {
            out.clear();
            write_announce_response(&mut out, 0xdead_beef, 1800, 56, 1234, black_box(&v6));
            out.len()
        })
    });
    g.bench_function("scrape_10", |b| {
        b.iter(|| {
            out.clear();
            write_scrape_response_header(&mut out, 0xdead_beef);
            for i in 0..black_box(10u32) {
                write_scrape_response_entry(&mut out, i, 2 * i, 3 * i);
            }
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
