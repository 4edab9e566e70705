//! The session engine end to end, in one process over loopback (port 0, explicit peer lists, no
//! tracker unless a test brings its own): a swarm of leechers sharing a multi-file torrent, a
//! corrupt and a flaky peer that get nowhere, resume, a magnet download through `ut_metadata`,
//! the tracker events, and the wire behaviour a raw client sees.
//!
//! The 256 MiB throughput figure is an ignored test; run it with
//! `cargo test -p swarmd-client-core --release --test session -- --ignored --nocapture`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use swarmd_client_core::session::{
    StorageConfig, Torrent, TorrentConfig, TorrentHandle, TorrentSource, TorrentState,
};
use swarmd_client_core::storage::{MemoryStorage, Storage, StorageError};
use swarmd_client_core::{Magnet, Metainfo};
use swarmd_proto::bencode::Value;
use swarmd_proto::krpc::{
    parse_message, write_compact_addr, write_response, Body, Method, ResponseFields,
};
use swarmd_proto::wire::{
    decode, ExtHandshake, Handshake, Limits, Message, MetadataMsg, Reserved, HANDSHAKE_LEN,
};
use swarmd_proto::{InfoHash, NodeId, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const DEADLINE: Duration = Duration::from_secs(20);

use common::TempDir;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A torrent over `files` (path, length) in that order, built in memory: its bytes and content.
fn build_torrent(
    name: &str,
    files: &[(&str, usize)],
    piece_len: usize,
    announce: Option<&str>,
) -> (Vec<u8>, Vec<u8>) {
    let total: usize = files.iter().map(|f| f.1).sum();
    let data = pattern(total, name.len() as u32);
    let hashes: Vec<u8> = data
        .chunks(piece_len)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let list: Vec<Value<'_>> = files
        .iter()
        .map(|(path, len)| {
            Value::Dict(vec![
                (b"length", Value::Int(*len as i64)),
                (
                    b"path",
                    Value::List(
                        path.split('/')
                            .map(|c| Value::Bytes(c.as_bytes()))
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let info = Value::Dict(vec![
        (b"files", Value::List(list)),
        (b"name", Value::Bytes(name.as_bytes())),
        (b"piece length", Value::Int(piece_len as i64)),
        (b"pieces", Value::Bytes(&hashes)),
    ]);
    let mut top = vec![(&b"info"[..], info)];
    if let Some(url) = announce {
        top.push((b"announce", Value::Bytes(url.as_bytes())));
    }
    (Value::Dict(top).to_bytes(), data)
}

/// Writes the first `upto` bytes of the torrent's content into its files under `root`.
fn write_files(root: &Path, meta: &Metainfo, data: &[u8], upto: usize) {
    let mut at = 0;
    for f in meta.files() {
        let path = f.path.iter().fold(root.join(meta.name()), |p, c| p.join(c));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let end = (at + f.length as usize).min(upto.max(at));
        if end > at || f.length == 0 {
            std::fs::write(&path, &data[at..end]).unwrap();
        }
        at += f.length as usize;
    }
}

fn config(torrent: &[u8], storage: StorageConfig) -> TorrentConfig {
    let mut c = TorrentConfig::new(TorrentSource::Torrent(torrent.to_vec()), storage);
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.rng_seed = Some(7);
    c
}

fn memory(data: Vec<u8>) -> StorageConfig {
    StorageConfig::Custom(Arc::new(MemoryStorage::from_vec(data)))
}

fn stored(h: &TorrentHandle, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    h.storage().unwrap().read_at(0, &mut buf).unwrap();
    buf
}

async fn complete(h: &TorrentHandle) {
    match tokio::time::timeout(DEADLINE, h.wait_complete()).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!(
            "not complete in time: {:?}\nclosed: {:?}",
            h.stats(),
            h.recent_closes()
        ),
    }
}

/// Polls `cond` until it holds, or panics at the deadline.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const FILES: &[(&str, usize)] = &[
    ("a/one.bin", 300_001),
    ("a/tiny", 1),
    ("a/empty", 0),
    ("b/two.bin", 777_777),
    ("b/c/three.bin", 65_536),
    ("four.bin", 2_900_000),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_multi_file_and_leechers_share() {
    let (torrent, data) = build_torrent("multi", FILES, 32 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let seed_dir = TempDir::new("seed");
    write_files(&seed_dir.0, &meta, &data, data.len());
    let mut sc = config(&torrent, StorageConfig::Directory(seed_dir.0.clone()));
    sc.seed_only = true;
    // Two direct downloaders at most: the others must get pieces from leechers.
    sc.limits.max_peers = 2;
    let seeder = Torrent::start(sc).await.unwrap();
    let dirs: Vec<TempDir> = (0..2).map(|i| TempDir::new(&format!("l{i}"))).collect();
    let mut leechers = Vec::new();
    for i in 0..5 {
        let storage = match dirs.get(i) {
            Some(d) => StorageConfig::Directory(d.0.clone()),
            None => StorageConfig::Memory,
        };
        let mut c = config(&torrent, storage);
        c.rng_seed = Some(i as u64);
        c.announce.peers = vec![seeder.listen_addr()];
        leechers.push(Torrent::start(c).await.unwrap());
    }
    let addrs: Vec<SocketAddr> = leechers.iter().map(|l| l.listen_addr()).collect();
    for l in &leechers {
        l.add_peers(addrs.iter().copied());
    }
    for l in &leechers {
        complete(l).await;
    }
    for (i, l) in leechers.iter().enumerate() {
        assert_eq!(stored(l, data.len()), data, "leecher {i}");
        let s = l.stats();
        assert_eq!(s.pieces_have, meta.piece_count() as u32);
        assert_eq!(s.pieces_total, s.pieces_have);
        assert_eq!(s.state, TorrentState::Seeding);
    }
    for (i, d) in dirs.iter().enumerate() {
        let mut copy = Vec::new();
        for f in meta.files() {
            let p = f.path.iter().fold(d.0.join("multi"), |p, c| p.join(c));
            copy.extend(std::fs::read(p).unwrap());
        }
        assert_eq!(copy, data, "files of leecher {i}");
    }
    // The seeder never downloads: whatever a leecher uploaded went to another leecher.
    let shared: Vec<u64> = leechers.iter().map(|l| l.stats().uploaded).collect();
    assert!(
        shared.iter().any(|u| *u > 0),
        "no leecher uploaded: {shared:?}"
    );
    let seeded = seeder.stats().uploaded;
    assert!(seeded >= data.len() as u64 && seeded < 5 * data.len() as u64);
    for l in leechers {
        l.stop().await.unwrap();
    }
    let s = seeder.stop().await.unwrap();
    assert_eq!(s.state, TorrentState::Stopped);
    assert_eq!(s.downloaded, 0);
}

/// A store that counts writes that differ from the true content.
struct Watched {
    inner: MemoryStorage,
    truth: Vec<u8>,
    bad: AtomicU64,
    good: AtomicU64,
}

impl Storage for Watched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let at = offset as usize;
        let ok = self.truth.get(at..at + data.len()) == Some(data);
        if ok { &self.good } else { &self.bad }.fetch_add(1, Ordering::Relaxed);
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answers every request at once, with garbage.
    Corrupt,
    /// Drops the connection after a few requests, in the middle of a piece message.
    Drop,
}

#[derive(Default)]
struct FaultLog {
    connections: AtomicUsize,
    blocks: AtomicUsize,
    closed_on_us: AtomicBool,
}

/// A raw peer, written against the codec: a full bitfield, an unchoke, then `fault`.
async fn fault_peer(fault: Fault, info_hash: InfoHash, pieces: u32) -> (SocketAddr, Arc<FaultLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(FaultLog::default());
    let l = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            l.connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(fault_conn(s, fault, info_hash, pieces, Arc::clone(&l)));
        }
    });
    (addr, log)
}

async fn fault_conn(mut s: TcpStream, fault: Fault, ih: InfoHash, pieces: u32, log: Arc<FaultLog>) {
    let mut hs = [0u8; HANDSHAKE_LEN];
    if s.read_exact(&mut hs).await.is_err() {
        return;
    }
    let mut out = Vec::new();
    let id = if fault == Fault::Corrupt {
        *b"-XX0001-corruptcorru"
    } else {
        *b"-XX0001-droppydroppy"
    };
    Handshake {
        reserved: Reserved::default(),
        info_hash: ih,
        peer_id: PeerId(id),
    }
    .encode(&mut out);
    let mut bits = vec![0xffu8; pieces.div_ceil(8) as usize];
    if pieces % 8 != 0 {
        *bits.last_mut().unwrap() = 0xff << (8 - pieces % 8);
    }
    Message::Bitfield(&bits).encode(&mut out);
    Message::Unchoke.encode(&mut out);
    if s.write_all(&out).await.is_err() {
        return;
    }
    let (mut buf, mut tmp, mut requests) = (Vec::new(), vec![0u8; 1 << 16], 0);
    let limits = Limits::default();
    loop {
        let n = match s.read(&mut tmp).await {
            Ok(0) | Err(_) => {
                log.closed_on_us.store(true, Ordering::Relaxed);
                return;
            }
            Ok(n) => n,
        };
        buf.extend_from_slice(&tmp[..n]);
        out.clear();
        let mut at = 0;
        while let Ok(Some((msg, used))) = decode(&buf[at..], &limits) {
            at += used;
            let Message::Request {
                index,
                begin,
                length,
            } = msg
            else {
                continue;
            };
            requests += 1;
            if fault == Fault::Drop && requests > 3 {
                // Half a piece message, then gone.
                out.extend_from_slice(&(9 + length).to_be_bytes());
                out.extend_from_slice(&[7, 0, 0]);
                let _ = s.write_all(&out).await;
                return;
            }
            let junk = pattern(length as usize, index ^ begin ^ 0x5555);
            Message::Piece {
                index,
                begin,
                block: &junk,
            }
            .encode(&mut out);
            log.blocks.fetch_add(1, Ordering::Relaxed);
        }
        buf.drain(..at);
        if s.write_all(&out).await.is_err() {
            log.closed_on_us.store(true, Ordering::Relaxed);
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_flaky_peers_do_not_stop_the_download_and_get_banned() {
    let (torrent, data) = build_torrent("faulty", &[("x.bin", 2 << 20)], 32 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let pieces = meta.piece_count() as u32;
    let seeder = Torrent::start(config(&torrent, memory(data.clone())))
        .await
        .unwrap();
    let (bad, bad_log) = fault_peer(Fault::Corrupt, meta.info_hash(), pieces).await;
    let (flaky, flaky_log) = fault_peer(Fault::Drop, meta.info_hash(), pieces).await;
    let watched = Arc::new(Watched {
        inner: MemoryStorage::new(data.len()),
        truth: data.clone(),
        bad: AtomicU64::new(0),
        good: AtomicU64::new(0),
    });
    let mut c = config(&torrent, StorageConfig::Custom(watched.clone()));
    // The faulty peers first, so they get requests before the good one answers.
    c.announce.peers = vec![bad, flaky];
    let leecher = Torrent::start(c).await.unwrap();
    until("the corrupt peer to send blocks", || {
        bad_log.blocks.load(Ordering::Relaxed) > 0
    })
    .await;
    leecher.add_peers([seeder.listen_addr()]);
    complete(&leecher).await;
    assert_eq!(stored(&leecher, data.len()), data);
    assert_eq!(
        watched.bad.load(Ordering::Relaxed),
        0,
        "corrupt data reached storage"
    );
    assert_eq!(watched.good.load(Ordering::Relaxed), u64::from(pieces));
    let s = leecher.stats();
    assert!(s.hash_failures >= 3, "{s:?}");
    assert!(s.wasted > 0);
    assert_eq!(leecher.banned(), [bad]);
    until("the banned peer to be dropped", || {
        bad_log.closed_on_us.load(Ordering::Relaxed)
    })
    .await;
    assert!(flaky_log.connections.load(Ordering::Relaxed) >= 1);
    assert!(leecher.peers().iter().all(|p| p.addr != bad));
    // Banned for good: not dialed again even when offered.
    let before = bad_log.connections.load(Ordering::Relaxed);
    leecher.add_peers([bad]);
    leecher.stop().await.unwrap();
    assert_eq!(bad_log.connections.load(Ordering::Relaxed), before);
    seeder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_rechecks_and_fetches_only_what_is_missing() {
    let (torrent, data) = build_torrent("resume", FILES, 32 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let dir = TempDir::new("resume");
    let half = data.len() / 2 + 1234;
    write_files(&dir.0, &meta, &data, half);
    let seeder = Torrent::start(config(&torrent, memory(data.clone())))
        .await
        .unwrap();
    let mut c = config(&torrent, StorageConfig::Directory(dir.0.clone()));
    c.announce.peers = vec![seeder.listen_addr()];
    let leecher = Torrent::start(c).await.unwrap();
    complete(&leecher).await;
    let piece = meta.piece_length() as usize;
    let had = half / piece; // whole pieces inside the first `half` bytes
    let missing = (data.len() - had * piece) as u64;
    let s = leecher.stop().await.unwrap();
    assert_eq!(s.downloaded, missing, "{s:?}");
    assert_eq!(s.wasted, 0);
    assert!(s.downloaded < data.len() as u64 * 6 / 10);
    // And what is on disk is the whole torrent.
    let mut copy = Vec::new();
    for f in meta.files() {
        let p = f.path.iter().fold(dir.0.join("resume"), |p, c| p.join(c));
        copy.extend(std::fs::read(p).unwrap());
    }
    assert_eq!(copy, data);
    seeder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_fetches_metadata_then_data() {
    // 1100 pieces: an info dictionary of about 22 KB, two metadata pieces.
    let files = [
        ("m/a.bin", 9_000_000),
        ("m/b.bin", 16384 * 1100 - 9_000_000 - 77),
    ];
    let (torrent, data) = build_torrent("magnetic", &files, 16 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let seeder = Torrent::start(config(&torrent, memory(data.clone())))
        .await
        .unwrap();
    let magnet = Magnet {
        info_hash: meta.info_hash(),
        name: Some("magnetic".into()),
        trackers: vec![],
    };
    let mut c = TorrentConfig::new(TorrentSource::Magnet(magnet), StorageConfig::Memory);
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let leecher = Torrent::start(c).await.unwrap();
    assert_eq!(leecher.stats().state, TorrentState::FetchingMetadata);
    assert!(leecher.metainfo().is_none());
    leecher.add_peers([seeder.listen_addr()]);
    complete(&leecher).await;
    assert_eq!(leecher.metainfo().unwrap(), meta);
    assert_eq!(leecher.info_dict(), seeder.info_dict());
    assert_eq!(stored(&leecher, data.len()), data);
    assert_eq!(leecher.stats().name.as_deref(), Some("magnetic"));
    leecher.stop().await.unwrap();
    seeder.stop().await.unwrap();
}

/// One announce as a tracker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    port: u16,
    event: String,
    left: u64,
    downloaded: u64,
    uploaded: u64,
}

/// A minimal HTTP tracker: records announces, answers with every other port seen.
async fn fake_tracker() -> (String, Arc<Mutex<Vec<Seen>>>) {
    slow_fake_tracker(Duration::ZERO).await
}

/// [`fake_tracker`], answering each announce `delay` after it arrives (one at a time).
async fn slow_fake_tracker(delay: Duration) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let query = text
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .split('?')
                .nth(1)
                .unwrap_or("");
            let field = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or("")
            };
            let num = |k: &str| field(k).parse::<u64>().unwrap_or(u64::MAX);
            let me = Seen {
                port: num("port") as u16,
                event: field("event").to_owned(),
                left: num("left"),
                downloaded: num("downloaded"),
                uploaded: num("uploaded"),
            };
            let mut peers = Vec::new();
            {
                let mut seen = log.lock().unwrap();
                let mut ports: Vec<u16> = seen.iter().map(|s| s.port).collect();
                ports.sort_unstable();
                ports.dedup();
                for p in ports.into_iter().filter(|p| *p != me.port) {
                    peers.extend_from_slice(&[127, 0, 0, 1]);
                    peers.extend_from_slice(&p.to_be_bytes());
                }
                seen.push(me);
            }
            let body = Value::Dict(vec![
                (b"interval", Value::Int(1800)),
                (b"peers", Value::Bytes(&peers)),
            ])
            .to_bytes();
            tokio::time::sleep(delay).await;
            let mut reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            reply.extend_from_slice(&body);
            let _ = s.write_all(&reply).await;
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_sees_started_completed_stopped_with_true_figures() {
    let (url, seen) = fake_tracker().await;
    let (torrent, data) = build_torrent("tracked", &[("t.bin", 1_500_000)], 32 << 10, Some(&url));
    let total = data.len() as u64;
    let seeder = Torrent::start(config(&torrent, memory(data.clone())))
        .await
        .unwrap();
    let sp = seeder.listen_addr().port();
    let events = |port: u16| -> Vec<Seen> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.port == port)
            .cloned()
            .collect()
    };
    until("the seeder's started", || !events(sp).is_empty()).await;
    let leecher = Torrent::start(config(&torrent, StorageConfig::Memory))
        .await
        .unwrap();
    let lp = leecher.listen_addr().port();
    complete(&leecher).await;
    until("the leecher's completed", || events(lp).len() >= 2).await;
    leecher.stop().await.unwrap();
    seeder.stop().await.unwrap();
    let l = events(lp);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(
        (l[0].event.as_str(), l[0].left, l[0].downloaded),
        ("started", total, 0)
    );
    assert_eq!(
        (l[1].event.as_str(), l[1].left, l[1].downloaded),
        ("completed", 0, total)
    );
    assert_eq!(
        (l[2].event.as_str(), l[2].left, l[2].downloaded),
        ("stopped", 0, total)
    );
    let s = events(sp);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(
        (s[0].event.as_str(), s[0].left, s[0].uploaded),
        ("started", 0, 0)
    );
    assert_eq!(
        (s[1].event.as_str(), s[1].left, s[1].uploaded),
        ("stopped", 0, total)
    );
}

/// Stopped while its `started` is still unanswered, a torrent waits for the answer and then
/// announces `stopped`, rather than dropping the request the tracker already has (which would
/// leave it listed, with no `stopped` ever sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_during_an_announce_still_sends_stopped_after_it() {
    let (url, seen) = slow_fake_tracker(Duration::from_millis(600)).await;
    let (torrent, _) = build_torrent("slow", &[("s.bin", 100_000)], 32 << 10, Some(&url));
    let h = Torrent::start(config(&torrent, StorageConfig::Memory))
        .await
        .unwrap();
    until("the started announce to arrive", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    h.stop().await.unwrap();
    let events: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.event.clone())
        .collect();
    assert_eq!(events, ["started", "stopped"]);
}

/// A one-node DHT that remembers announces and hands them out to `get_peers`.
async fn fake_dht() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let announced = Arc::new(Mutex::new(Vec::<SocketAddr>::new()));
    let log = Arc::clone(&announced);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(msg) = parse_message(&buf[..n]) else {
                continue;
            };
            let Body::Query(q) = msg.body else { continue };
            let mut values = Vec::new();
            match q.method {
                Method::AnnouncePeer {
                    port, implied_port, ..
                } => {
                    let port = if implied_port { from.port() } else { port };
                    log.lock().unwrap().push(SocketAddr::new(from.ip(), port));
                }
                Method::GetPeers { .. } => {
                    for a in log.lock().unwrap().iter() {
                        write_compact_addr(&mut values, *a);
                    }
                }
                _ => {}
            }
            let fields = ResponseFields {
                values: &values,
                token: Some(b"tok"),
                ..ResponseFields::new(NodeId([9; 20]))
            };
            let mut out = Vec::new();
            write_response(&mut out, msg.transaction_id, Some(from), None, &fields);
            let _ = sock.send_to(&out, from).await;
        }
    });
    (addr, announced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_found_through_the_dht_only() {
    let (node, announced) = fake_dht().await;
    let (torrent, data) = build_torrent("dht", &[("d.bin", 700_000)], 32 << 10, None);
    let mut sc = config(&torrent, memory(data.clone()));
    sc.announce.dht_nodes = vec![node];
    let seeder = Torrent::start(sc).await.unwrap();
    let seeder_addr = SocketAddr::from(([127, 0, 0, 1], seeder.listen_addr().port()));
    until("the seeder's DHT announce", || {
        announced.lock().unwrap().contains(&seeder_addr)
    })
    .await;
    let mut c = config(&torrent, StorageConfig::Memory);
    c.announce.dht_nodes = vec![node];
    let leecher = Torrent::start(c).await.unwrap();
    complete(&leecher).await;
    assert_eq!(stored(&leecher, data.len()), data);
    let lp = leecher.listen_addr().port();
    until("the leecher's DHT announce", || {
        announced.lock().unwrap().iter().any(|a| a.port() == lp)
    })
    .await;
    leecher.stop().await.unwrap();
    seeder.stop().await.unwrap();
}

/// Reads one whole message into an owned frame (length prefix included).
async fn next_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Ok(Some((_, used))) = decode(buf, &Limits::default()) {
            return buf.drain(..used).collect();
        }
        let mut tmp = [0u8; 65536];
        let n = tokio::time::timeout(DEADLINE, s.read(&mut tmp))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&tmp[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_sees_extensions_rejects_unchoke_data_and_metadata() {
    let (torrent, data) = build_torrent("raw", &[("r.bin", 200_000)], 16 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let seeder = Torrent::start(config(&torrent, memory(data.clone())))
        .await
        .unwrap();
    until("the seeder to be ready", || {
        seeder.stats().state == TorrentState::Seeding
    })
    .await;
    let mut s = TcpStream::connect(seeder.listen_addr()).await.unwrap();
    let mut out = Vec::new();
    let reserved = Reserved::default().with_extensions(true).with_fast(true);
    let peer_id = PeerId(*b"-RW0001-rawrawrawraw");
    Handshake {
        reserved,
        info_hash: meta.info_hash(),
        peer_id,
    }
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let mut hs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut hs).await.unwrap();
    let theirs = Handshake::decode(&hs).unwrap().unwrap();
    assert!(theirs.reserved.extensions() && theirs.reserved.fast());
    assert_eq!(theirs.info_hash, meta.info_hash());
    let mut buf = Vec::new();
    let frame = next_frame(&mut s, &mut buf).await;
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap().unwrap().0,
        Message::HaveAll
    );
    let frame = next_frame(&mut s, &mut buf).await;
    let Some((Message::Extended { id: 0, payload }, _)) =
        decode(&frame, &Limits::default()).unwrap()
    else {
        panic!("expected the extension handshake")
    };
    let ext = ExtHandshake::parse(payload).unwrap();
    let ut = ext.ext_id(b"ut_metadata").unwrap();
    assert_eq!(
        ext.metadata_size,
        Some(seeder.info_dict().unwrap().len() as u64)
    );
    assert_eq!(ext.p, Some(seeder.listen_addr().port()));
    assert!(ext.upload_only && ext.reqq.is_some());
    // Allowed-fast pieces, then (choked) a request outside them is rejected.
    let mut allowed = Vec::new();
    out.clear();
    let ours = ExtHandshake {
        m: vec![(b"ut_metadata", 3)],
        ..ExtHandshake::default()
    };
    let mut payload = Vec::new();
    ours.encode(&mut payload);
    Message::Extended {
        id: 0,
        payload: &payload,
    }
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let probe = loop {
        let frame = next_frame(&mut s, &mut buf).await;
        match decode(&frame, &Limits::default()).unwrap().unwrap().0 {
            Message::AllowedFast { index } => allowed.push(index),
            other => panic!("unexpected {other:?}"),
        }
        if allowed.len() == 4 {
            break (0..13).find(|p| !allowed.contains(p)).unwrap();
        }
    };
    out.clear();
    Message::Request {
        index: probe,
        begin: 0,
        length: 16384,
    }
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let frame = next_frame(&mut s, &mut buf).await;
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap().unwrap().0,
        Message::Reject {
            index: probe,
            begin: 0,
            length: 16384
        }
    );
    // Interested: a free slot unchokes at once; then data, and metadata.
    out.clear();
    Message::Interested.encode(&mut out);
    Message::Request {
        index: 5,
        begin: 16384 - 100,
        length: 100,
    }
    .encode(&mut out);
    let mut m = Vec::new();
    MetadataMsg::Request { piece: 0 }.encode(&mut m);
    s.write_all(&out).await.unwrap();
    let frame = next_frame(&mut s, &mut buf).await;
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap().unwrap().0,
        Message::Unchoke
    );
    // The request raced the unchoke: rejected or served, it is answered.
    let frame = next_frame(&mut s, &mut buf).await;
    let msg = decode(&frame, &Limits::default()).unwrap().unwrap().0;
    assert!(
        msg == Message::Piece {
            index: 5,
            begin: 16284,
            block: &data[5 * 16384 + 16284..6 * 16384]
        } || msg
            == Message::Reject {
                index: 5,
                begin: 16284,
                length: 100
            },
        "{msg:?}"
    );
    out.clear();
    Message::Request {
        index: 12,
        begin: 0,
        length: 200_000 - 12 * 16384,
    }
    .encode(&mut out);
    Message::Extended {
        id: ut,
        payload: &m,
    }
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let frame = next_frame(&mut s, &mut buf).await;
    let msg = decode(&frame, &Limits::default()).unwrap().unwrap().0;
    assert_eq!(
        msg,
        Message::Extended {
            id: 3,
            payload: &msg_payload(&seeder)
        }
    );
    let frame = next_frame(&mut s, &mut buf).await;
    let msg = decode(&frame, &Limits::default()).unwrap().unwrap().0;
    assert_eq!(
        msg,
        Message::Piece {
            index: 12,
            begin: 0,
            block: &data[12 * 16384..]
        }
    );
    // A 4 GiB length prefix: dropped, not obeyed.
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    let mut rest = Vec::new();
    // Closed (a clean end or a reset), well before the deadline.
    let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut rest))
        .await
        .unwrap();
    until("the peer to be dropped", || seeder.peers().is_empty()).await;
    assert!(seeder
        .recent_closes()
        .iter()
        .any(|(_, why)| why.contains("wire")));
    seeder.stop().await.unwrap();
}

fn msg_payload(seeder: &TorrentHandle) -> Vec<u8> {
    let info = seeder.info_dict().unwrap();
    let mut p = Vec::new();
    MetadataMsg::Data {
        piece: 0,
        total_size: info.len() as u64,
        data: &info,
    }
    .encode(&mut p);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "moves 256 MiB; run by hand with --release --nocapture"]
async fn throughput_256_mib_over_loopback() {
    let len = 256usize << 20;
    let (torrent, data) = build_torrent("big", &[("big.bin", len)], 256 << 10, None);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    for storage in ["memory", "files"] {
        let dirs = (TempDir::new("big-seed"), TempDir::new("big-leech"));
        let (seed_storage, leech_storage) = if storage == "files" {
            write_files(&dirs.0 .0, &meta, &data, len);
            (
                StorageConfig::Directory(dirs.0 .0.clone()),
                StorageConfig::Directory(dirs.1 .0.clone()),
            )
        } else {
            (memory(data.clone()), StorageConfig::Memory)
        };
        let mut sc = config(&torrent, seed_storage);
        sc.seed_only = true;
        let seeder = Torrent::start(sc).await.unwrap();
        until("the seeder to be ready", || {
            seeder.stats().state == TorrentState::Seeding
        })
        .await;
        let mut c = config(&torrent, leech_storage);
        c.announce.peers = vec![seeder.listen_addr()];
        let start = Instant::now();
        let leecher = Torrent::start(c).await.unwrap();
        tokio::time::timeout(Duration::from_secs(300), leecher.wait_complete())
            .await
            .unwrap()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(stored(&leecher, len), data);
        let synced = Instant::now();
        leecher.stop().await.unwrap();
        let synced = secs + synced.elapsed().as_secs_f64();
        println!(
            "256 MiB seeder -> leecher over loopback ({storage} storage): {secs:.2} s, \
             {:.0} MiB/s ({synced:.2} s with the final sync)",
            256.0 / secs
        );
        seeder.stop().await.unwrap();
    }
}
