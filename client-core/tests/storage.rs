//! Piece storage: layout math, file and memory backends side by side, recheck after damage,
//! the open-file cache bound, path escapes, and verification off the async runtime.
//!
//! The recheck speed figure is an ignored test; run it with
//! `cargo test -p swarmd-client-core --release --test storage -- --ignored --nocapture`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use sha1::{Digest, Sha1};
use swarmd_client_core::metainfo::{create, CreateOptions};
use swarmd_client_core::storage::{
    recheck, verify_piece, FileStorage, Layout, MemoryStorage, Mode, Op, Storage, StorageError,
    StorageOptions, Verifier,
};
use swarmd_client_core::Metainfo;
use swarmd_proto::bencode::Value;

use common::TempDir;

fn layout_of(piece: u64, lens: &[u64]) -> Layout {
    Layout::new(
        piece,
        lens.iter().enumerate().map(|(i, l)| {
            (
                vec!["t".to_string(), format!("d{}", i % 3), format!("f{i}")],
                *l,
            )
        }),
    )
    .unwrap()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn piece_hashes(data: &[u8], piece: usize) -> Vec<[u8; 20]> {
    data.chunks(piece).map(|c| Sha1::digest(c).into()).collect()
}

fn options(mode: Mode, preallocate: bool, open_files: usize) -> StorageOptions {
    StorageOptions {
        mode,
        preallocate,
        open_files,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Spans cover exactly the range, in order, each inside one file, skipping nothing.
    #[test]
    fn spans_cover_range_in_order(
        lens in prop::collection::vec(prop_oneof![Just(0u64), 1u64..40], 1..12),
        piece in 1u64..50,
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let l = layout_of(piece, &lens);
        let total = l.total_length();
        prop_assert_eq!(total, lens.iter().sum::<u64>());
        let (offset, len) = if total == 0 { (0, 0) } else {
            let offset = a % (total + 1);
            (offset, b % (total - offset + 1))
        };
        let mut at = offset;
        let mut last_file = None;
        for s in l.spans(offset, len).unwrap() {
            let f = &l.files()[s.file];
            prop_assert!(s.len > 0);
            prop_assert!(last_file.is_none_or(|x| s.file > x), "files in order");
            prop_assert_eq!(f.offset + s.file_offset, at, "contiguous");
            prop_assert_eq!(s.pos, at - offset);
            prop_assert!(s.file_offset + s.len <= f.length, "inside the file");
            last_file = Some(s.file);
            at += s.len;
        }
        prop_assert_eq!(at, offset + len, "covers the range");
        prop_assert!(l.spans(offset, total - offset + 1).is_err());
        // Pieces: full length but the last, and they add up.
        let n = l.piece_count();
        prop_assert_eq!(u64::from(n), total.div_ceil(piece));
        let sizes: Vec<u64> = (0..n).map(|p| l.piece_size(p)).collect();
        prop_assert_eq!(sizes.iter().sum::<u64>(), total);
        prop_assert!(sizes.iter().rev().skip(1).all(|s| *s == piece));
        for p in 0..n {
            let spans: u64 = l.piece_spans(p).map(|s| s.len).sum();
            prop_assert_eq!(spans, l.piece_size(p));
        }
        for i in 0..lens.len() {
            let touched: HashSet<u32> = (0..n)
                .filter(|p| l.piece_spans(*p).any(|s| s.file == i))
                .collect();
            prop_assert_eq!(touched, l.file_pieces(i).collect::<HashSet<_>>());
        }
    }
}

#[derive(Debug, Clone)]
enum StorageOp {
    Write(u64, Vec<u8>),
    Read(u64, usize),
}

fn ops_strategy() -> impl Strategy<Value = (Vec<u64>, u64, Vec<StorageOp>)> {
    (
        prop::collection::vec(prop_oneof![Just(0u64), 1u64..3000], 1..8),
        1u64..2000,
    )
        .prop_filter("non-empty torrent", |(lens, _)| {
            lens.iter().sum::<u64>() > 0
        })
        .prop_flat_map(|(lens, piece)| {
            let total = lens.iter().sum::<u64>();
            let op =
                (0..total, any::<bool>(), any::<u8>()).prop_flat_map(move |(offset, w, seed)| {
                    let room = (total - offset) as usize;
                    (0..=room.min(5000)).prop_map(move |len| {
                        if w {
                            StorageOp::Write(offset, pattern(len, u32::from(seed)))
                        } else {
                            StorageOp::Read(offset, len)
                        }
                    })
                });
            (Just(lens), Just(piece), prop::collection::vec(op, 1..24))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random positional writes and reads give the same bytes on disk as in memory.
    #[test]
    fn file_storage_matches_memory((lens, piece, ops) in ops_strategy(), prealloc in any::<bool>()) {
        let dir = TempDir::new("equiv");
        let layout = layout_of(piece, &lens);
        let total = layout.total_length() as usize;
        let disk = FileStorage::new(&dir.0, &layout, options(Mode::ReadWrite, prealloc, 2)).unwrap();
        let mem = MemoryStorage::new(total);
        for op in &ops {
            match op {
                StorageOp::Write(offset, data) => {
                    disk.write_at(*offset, data).unwrap();
                    mem.write_at(*offset, data).unwrap();
                }
                StorageOp::Read(offset, len) => {
                    let (mut a, mut b) = (vec![1u8; *len], vec![2u8; *len]);
                    mem.read_at(*offset, &mut b).unwrap();
                    match disk.read_at(*offset, &mut a) {
                        Ok(()) => prop_assert_eq!(a, b),
                        // Without preallocation, bytes past a file's end were never written.
                        Err(e) => prop_assert!(!prealloc && e.is_absent(), "{}", e),
                    }
                }
            }
        }
        if prealloc {
            for (i, f) in layout.files().iter().enumerate() {
                let len = std::fs::metadata(disk.path(i).unwrap()).unwrap().len();
                prop_assert_eq!(len, f.length);
            }
        } else {
            // Fill the gaps the way a download finishes, then everything must match.
            let all = mem.to_vec();
            disk.write_at(0, &all).unwrap();
        }
        let mut whole = vec![0u8; total];
        disk.read_at(0, &mut whole).unwrap();
        prop_assert_eq!(whole, mem.to_vec());
        disk.sync().unwrap();
        prop_assert!(disk.cache_stats().cached <= 2);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever bytes are flipped, recheck reports exactly the pieces that hold none of them.
    #[test]
    fn recheck_flags_exactly_corrupted_pieces(
        lens in prop::collection::vec(prop_oneof![Just(0u64), 1u64..500], 1..8),
        piece in 1u64..300,
        flips in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        threads in 1usize..4,
    ) {
        let layout = layout_of(piece, &lens);
        let total = layout.total_length() as usize;
        let data = pattern(total, 9);
        let hashes = piece_hashes(&data, piece as usize);
        let mem = MemoryStorage::from_vec(data.clone());
        let mut damaged = Vec::new();
        if total > 0 {
            for i in &flips {
                let at = i.index(total);
                mem.write_at(at as u64, &[data[at] ^ 0x5a]).unwrap();
                damaged.push(at as u64..at as u64 + 1);
            }
        }
        let have = recheck(&mem, &layout, &hashes, threads, |_| {}).unwrap();
        prop_assert_eq!(have, expected_have(&layout, &damaged));
    }
}

/// A multi-file torrent with pieces crossing file boundaries and zero-length files between them,
/// made by our own `create`. Returns (dir, content folder, metainfo, content bytes).
fn make_torrent(tag: &str) -> (TempDir, Metainfo, Vec<u8>) {
    let dir = TempDir::new(tag);
    let content = dir.0.join("seed").join("album");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    // Sorted by path: a.bin, b.empty, c.bin, d.empty, sub/e.bin, sub/f.bin
    let files: [(&str, usize); 6] = [
        ("a.bin", 10_000),
        ("b.empty", 0),
        ("c.bin", 40_000),
        ("d.empty", 0),
        ("sub/e.bin", 5),
        ("sub/f.bin", 70_001),
    ];
    let mut all = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let data = pattern(*len, i as u32 * 77);
        std::fs::write(content.join(name), &data).unwrap();
        all.extend_from_slice(&data);
    }
    let opts = CreateOptions {
        piece_length: Some(16 << 10),
        ..CreateOptions::default()
    };
    let meta = Metainfo::from_bytes(&create(&content, &opts, |_| {}).unwrap()).unwrap();
    (dir, meta, all)
}

/// Pieces of `layout` that hold none of the `damaged` torrent-global byte ranges.
fn expected_have(layout: &Layout, damaged: &[std::ops::Range<u64>]) -> Vec<bool> {
    (0..layout.piece_count())
        .map(|p| {
            let r = layout.piece_range(p);
            !damaged.iter().any(|d| d.start < r.end && r.start < d.end)
        })
        .collect()
}

#[test]
fn recheck_finds_exactly_the_good_pieces() {
    let (dir, meta, all) = make_torrent("recheck");
    let layout = Layout::from_metainfo(&meta).unwrap();
    assert_eq!(layout.total_length(), all.len() as u64);
    assert_eq!(layout.piece_count(), 8);
    let root = dir.0.join("seed");
    let seed = FileStorage::new(&root, &layout, options(Mode::ReadOnly, false, 4)).unwrap();
    let have = recheck(&seed, &layout, meta.pieces(), 2, |_| {}).unwrap();
    assert!(have.iter().all(|h| *h), "{have:?}");
    for p in 0..layout.piece_count() {
        assert!(verify_piece(&seed, &layout, p, &meta.pieces()[p as usize]).unwrap());
    }
    let file_start = |i: usize| layout.files()[i].offset;

    // One byte of c.bin corrupted (in the piece that starts in a.bin and ends in c.bin).
    let c = seed.path(2).unwrap().to_owned();
    let mut bytes = std::fs::read(&c).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&c, &bytes).unwrap();
    let mut damaged = Vec::new();
    damaged.push(file_start(2) + 100..file_start(2) + 101);
    let have = recheck(&seed, &layout, meta.pieces(), 2, |_| {}).unwrap();
    assert_eq!(have, expected_have(&layout, &damaged));
    assert_eq!(have.iter().filter(|h| !**h).count(), 1);

    // sub/f.bin truncated by 20 000 bytes.
    let f = seed.path(5).unwrap().to_owned();
    let flen = layout.files()[5].length;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(flen - 20_000)
        .unwrap();
    damaged.push(file_start(5) + flen - 20_000..file_start(5) + flen);
    let have = recheck(&seed, &layout, meta.pieces(), 2, |_| {}).unwrap();
    assert_eq!(have, expected_have(&layout, &damaged));

    // sub/e.bin (5 bytes, inside one piece) and d.empty deleted.
    std::fs::remove_file(seed.path(4).unwrap()).unwrap();
    std::fs::remove_file(seed.path(3).unwrap()).unwrap();
    damaged.push(file_start(4)..file_start(4) + 5);
    let mut progress = Vec::new();
    let have = recheck(&seed, &layout, meta.pieces(), 2, |p| progress.push(p)).unwrap();
    assert_eq!(have, expected_have(&layout, &damaged));
    let good = have.iter().filter(|h| **h).count();
    assert!((3..8).contains(&good), "{have:?}");
    let last = progress.last().unwrap();
    assert_eq!((last.checked, last.have), (8, good as u32));
    // Pieces over missing bytes were never read.
    assert!(progress[0].checked >= 2, "{progress:?}");
    // The cached handle still reads the deleted file's inode; closed, the file is gone.
    seed.close_files();
    let missing = seed.read_at(file_start(4), &mut [0; 5]).unwrap_err();
    assert!(matches!(missing, StorageError::Missing { .. }), "{missing}");
    assert!(missing.to_string().contains("e.bin"));
}

#[test]
fn resumed_download_rechecks_then_completes() {
    let (dir, meta, all) = make_torrent("resume");
    let layout = Layout::from_metainfo(&meta).unwrap();
    let root = dir.0.join("download");
    let dl = FileStorage::new(&root, &layout, options(Mode::ReadWrite, false, 3)).unwrap();
    // Zero-length files exist at once; nothing else yet.
    assert_eq!(std::fs::metadata(dl.path(1).unwrap()).unwrap().len(), 0);
    assert!(!dl.path(0).unwrap().exists());
    let mut first = None;
    let have = recheck(&dl, &layout, meta.pieces(), 2, |p| {
        first.get_or_insert(p);
    })
    .unwrap();
    assert!(have.iter().all(|h| !*h));
    assert_eq!(first.unwrap().checked, 8, "a fresh download reads nothing");
    // Pieces 1, 4 and 7 (the short last one) arrive; the session stops.
    for p in [1u32, 4, 7] {
        let r = layout.piece_range(p);
        dl.write_at(r.start, &all[r.start as usize..r.end as usize])
            .unwrap();
    }
    dl.sync().unwrap();
    drop(dl);
    // Restart: exactly those pieces are found, then the rest is fetched and the whole verifies.
    let dl = FileStorage::new(&root, &layout, options(Mode::ReadWrite, false, 3)).unwrap();
    let have = recheck(&dl, &layout, meta.pieces(), 2, |_| {}).unwrap();
    let want: Vec<bool> = (0..8).map(|p| [1, 4, 7].contains(&p)).collect();
    assert_eq!(have, want);
    for p in (0..8u32).filter(|p| !have[*p as usize]) {
        let r = layout.piece_range(p);
        dl.write_at(r.start, &all[r.start as usize..r.end as usize])
            .unwrap();
    }
    dl.set_mode(Mode::ReadOnly).unwrap();
    assert!(matches!(
        dl.write_at(0, b"x"),
        Err(StorageError::ReadOnly { .. })
    ));
    assert!(recheck(&dl, &layout, meta.pieces(), 1, |_| {})
        .unwrap()
        .iter()
        .all(|h| *h));
    // Same bytes as the seed's files.
    for (i, f) in layout.files().iter().enumerate() {
        let theirs = dir.0.join("seed").join(f.path.join("/"));
        assert_eq!(
            std::fs::read(dl.path(i).unwrap()).unwrap(),
            std::fs::read(theirs).unwrap()
        );
    }
}

#[test]
fn open_file_cache_stays_bounded() {
    let dir = TempDir::new("cache");
    let lens: Vec<u64> = (0..300).map(|i| [0, 1, 97, 300][i % 4]).collect();
    let layout = layout_of(256, &lens);
    let total = layout.total_length() as usize;
    let data = pattern(total, 5);
    let disk = FileStorage::new(&dir.0, &layout, options(Mode::ReadWrite, false, 8)).unwrap();
    const THREADS: usize = 4;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (disk, layout, data) = (&disk, &layout, &data);
            s.spawn(move || {
                for p in (0..layout.piece_count()).filter(|p| *p as usize % THREADS == t) {
                    let r = layout.piece_range(p);
                    disk.write_at(r.start, &data[r.start as usize..r.end as usize])
                        .unwrap();
                }
            });
        }
    });
    let stats = disk.cache_stats();
    assert!(stats.cached <= 8, "{stats:?}");
    // Capacity plus, per thread, its own handle (evicted by another thread while in use) and
    // one it evicted and has not closed yet (see the cache's module docs).
    assert!(stats.peak_open <= 8 + 2 * THREADS, "{stats:?}");
    assert_eq!(
        stats.open, stats.cached,
        "evicted handles closed: {stats:?}"
    );
    assert!(stats.opens >= 225, "every non-empty file opened: {stats:?}");
    let hashes = piece_hashes(&data, 256);
    let have = recheck(&disk, &layout, &hashes, 3, |_| {}).unwrap();
    assert!(have.iter().all(|h| *h));
    let stats = disk.cache_stats();
    // Capacity plus, per thread, its own handle (evicted by another thread while in use) and
    // one it evicted and has not closed yet (see the cache's module docs).
    assert!(stats.peak_open <= 8 + 2 * THREADS, "{stats:?}");
    assert!(stats.cached <= 8);
    // The descriptors this process really holds for the torrent's files.
    let ours = std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| t.starts_with(&dir.0))
                .count()
        })
        .unwrap_or(0);
    assert!(ours <= 8, "{ours} descriptors open");
}

#[test]
fn paths_escaping_the_root_are_refused() {
    let dir = TempDir::new("escape");
    let root = dir.0.join("root");
    for path in [
        vec!["t", "..", "..", "escaped"],
        vec!["..", "escaped"],
        vec!["/tmp/escaped"],
        vec!["t", "a/../../escaped"],
        vec![],
    ] {
        let layout = Layout::new(
            16,
            [
                (vec!["t".to_string(), "ok".into()], 0),
                (path.iter().map(|c| c.to_string()).collect(), 10),
            ],
        )
        .unwrap();
        let e = FileStorage::new(&root, &layout, StorageOptions::default()).unwrap_err();
        assert!(
            matches!(e, StorageError::PathEscape { .. }),
            "{path:?}: {e}"
        );
        assert!(e.to_string().contains("escapes"));
    }
    assert!(!dir.0.join("escaped").exists());
    assert!(!root.exists(), "nothing created before the check");
}

#[test]
fn io_errors_name_file_and_operation() {
    let dir = TempDir::new("errors");
    let layout = layout_of(8, &[4, 4]);
    let disk = FileStorage::new(&dir.0, &layout, StorageOptions::default()).unwrap();
    // A folder where file 1 should be.
    std::fs::create_dir_all(disk.path(1).unwrap()).unwrap();
    let e = disk.write_at(2, b"abcd").unwrap_err();
    match &e {
        StorageError::Io { path, op, .. } => {
            assert_eq!(path, disk.path(1).unwrap());
            assert_eq!(*op, Op::Open);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("f1: open:"), "{e}");
    assert!(matches!(
        disk.read_at(6, &mut [0; 4]),
        Err(StorageError::OutOfRange { .. })
    ));
    // Read-only storage creates nothing and reports missing files.
    let ro = FileStorage::new(
        dir.0.join("none"),
        &layout,
        options(Mode::ReadOnly, true, 4),
    )
    .unwrap();
    assert!(!dir.0.join("none").exists());
    assert!(matches!(
        ro.read_at(0, &mut [0; 2]),
        Err(StorageError::Missing { .. })
    ));
}

/// Records which threads read, to show verification runs off the runtime.
struct Spy {
    inner: FileStorage,
    threads: Mutex<HashSet<String>>,
}

impl Storage for Spy {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        self.threads.lock().unwrap().insert(name);
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        self.threads.lock().unwrap().insert(name);
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn verifier_hashes_off_the_runtime() {
    let (dir, meta, all) = make_torrent("verifier");
    let layout = Arc::new(Layout::from_metainfo(&meta).unwrap());
    let inner =
        FileStorage::new(dir.0.join("dl"), &layout, options(Mode::ReadWrite, true, 8)).unwrap();
    let spy = Arc::new(Spy {
        inner,
        threads: Mutex::default(),
    });
    let verifier = Arc::new(Verifier::new(spy.clone(), layout.clone(), 2, 2).unwrap());
    assert_eq!(verifier.threads(), 2);
    let piece = |p: u32| {
        let r = layout.piece_range(p);
        all[r.start as usize..r.end as usize].to_vec()
    };
    // A corrupt piece is refused and never written; a good one is written.
    let mut bad = piece(0);
    bad[5] ^= 1;
    let c = verifier
        .check_and_write(0, bad, meta.pieces()[0])
        .await
        .unwrap();
    assert!(!c.ok);
    assert!(!verifier.verify(0, meta.pieces()[0]).await.unwrap());
    assert!(
        spy.inner.read_at(0, &mut [0; 16]).is_ok(),
        "preallocated zeros"
    );
    // All pieces at once from many tasks: the bounded queue makes them wait, none is lost.
    let tasks: Vec<_> = (0..layout.piece_count())
        .map(|p| {
            let (v, data, hash) = (verifier.clone(), piece(p), meta.pieces()[p as usize]);
            tokio::spawn(async move { v.check_and_write(p, data, hash).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().ok);
    }
    let checks: Vec<_> = (0..layout.piece_count())
        .map(|p| {
            let (v, hash) = (verifier.clone(), meta.pieces()[p as usize]);
            tokio::spawn(async move { v.verify(p, hash).await })
        })
        .collect();
    for t in checks {
        assert!(t.await.unwrap().unwrap());
    }
    assert!(matches!(
        verifier.verify(99, [0; 20]).await,
        Err(StorageError::NoSuchPiece { piece: 99, .. })
    ));
    let threads = spy.threads.lock().unwrap().clone();
    assert!(
        threads.iter().all(|t| t.starts_with("swarmd-verify-")),
        "{threads:?}"
    );
    let mut disk = vec![0u8; all.len()];
    spy.inner.read_at(0, &mut disk).unwrap();
    assert_eq!(disk, all);
}

/// Pieces of 32 KiB over files padded (BEP 47, libtorrent style) to 16 KiB boundaries, with an
/// executable file and a symbolic link: piece 0 is `a.bin` → pad → `b.bin`, piece 1 is `b.bin`
/// → pad → `c.bin`. Returns the metainfo and the torrent's bytes (pads as zeros).
fn padded_torrent() -> (Metainfo, Vec<u8>) {
    const PIECE: usize = 32 << 10;
    // (path, length, attr)
    type RawPath<'a> = &'a [&'a [u8]];
    let files: [(RawPath<'_>, usize, &[u8]); 7] = [
        (&[b"a.bin"], 10_000, b"x"),
        (&[b".pad", b"6384"], 6_384, b"p"),
        (&[b"b.bin"], 20_000, b""),
        (&[b".pad", b"12768"], 12_768, b"p"),
        (&[b"link"], 0, b"l"),
        (&[b"sub", b"c.bin"], 30_000, b""),
        (&[b".pad", b"6384"], 2_768, b"p"),
    ];
    let mut all = Vec::new();
    for (i, (path, len, attr)) in files.iter().enumerate() {
        if attr.contains(&b'p') || attr.contains(&b'l') {
            all.resize(all.len() + len, 0);
        } else {
            assert!(!path.is_empty());
            all.extend_from_slice(&pattern(*len, i as u32 * 31 + 1));
        }
    }
    let hashes: Vec<u8> = all
        .chunks(PIECE)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let entries = files
        .iter()
        .map(|(path, len, attr)| {
            let mut d = vec![
                (&b"length"[..], Value::Int(*len as i64)),
                (
                    b"path",
                    Value::List(path.iter().map(|c| Value::Bytes(c)).collect()),
                ),
            ];
            if !attr.is_empty() {
                d.push((b"attr", Value::Bytes(attr)));
            }
            if attr == b"l" {
                d.push((b"symlink path", Value::List(vec![Value::Bytes(b"a.bin")])));
            }
            Value::Dict(d)
        })
        .collect();
    let bytes = Value::Dict(vec![(
        b"info",
        Value::Dict(vec![
            (b"files", Value::List(entries)),
            (b"name", Value::Bytes(b"padded")),
            (b"piece length", Value::Int(PIECE as i64)),
            (b"pieces", Value::Bytes(&hashes)),
        ]),
    )])
    .to_bytes();
    (Metainfo::from_bytes(&bytes).unwrap(), all)
}

/// Every entry below `dir`, as paths relative to it.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn pad_files_are_virtual_zeros() {
    use std::os::unix::fs::PermissionsExt;

    let (meta, all) = padded_torrent();
    let layout = Layout::from_metainfo(&meta).unwrap();
    assert!(layout.has_virtual_bytes());
    assert_eq!(layout.piece_count(), 3);
    let real = [
        "padded",
        "padded/a.bin",
        "padded/b.bin",
        "padded/sub",
        "padded/sub/c.bin",
    ];
    for prealloc in [false, true] {
        let dir = TempDir::new("pads");
        let dl = FileStorage::new(&dir.0, &layout, options(Mode::ReadWrite, prealloc, 4)).unwrap();
        if prealloc {
            assert_eq!(tree(&dir.0), real, "pads and links are never preallocated");
        }
        // Nothing stored yet: pieces over real files are absent, pads alone are no piece.
        let have = recheck(&dl, &layout, meta.pieces(), 2, |_| {}).unwrap();
        assert_eq!(have, [false; 3]);
        for p in 0..layout.piece_count() {
            let r = layout.piece_range(p);
            dl.write_at(r.start, &all[r.start as usize..r.end as usize])
                .unwrap();
        }
        dl.sync().unwrap();
        assert_eq!(tree(&dir.0), real, "no `.pad` folder, no link");
        let mut back = vec![7u8; all.len()];
        dl.read_at(0, &mut back).unwrap();
        assert_eq!(back, all);
        // A read wholly inside a pad gives zeros.
        let pad = layout.files()[3].offset;
        let mut z = [9u8; 100];
        dl.read_at(pad + 10, &mut z).unwrap();
        assert_eq!(z, [0; 100]);
        assert_eq!(
            std::fs::read(dir.0.join("padded/sub/c.bin")).unwrap(),
            all[layout.file_range(5).start as usize..layout.file_range(5).end as usize]
        );
        let mode = |f: &str| {
            std::fs::metadata(dir.0.join(f))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_ne!(mode("padded/a.bin") & 0o100, 0, "`x` is executable");
        assert_eq!(mode("padded/b.bin") & 0o111, 0);
        drop(dl);

        // Resume: a fresh storage over the same folder finds every piece.
        let again = FileStorage::new(&dir.0, &layout, options(Mode::ReadWrite, false, 4)).unwrap();
        let have = recheck(&again, &layout, meta.pieces(), 2, |_| {}).unwrap();
        assert_eq!(have, [true; 3]);
        // Seeding read-only from it: same bytes, pads from nowhere.
        let seed = FileStorage::new(&dir.0, &layout, options(Mode::ReadOnly, false, 4)).unwrap();
        let mut back = vec![7u8; all.len()];
        seed.read_at(0, &mut back).unwrap();
        assert_eq!(back, all);
        for p in 0..layout.piece_count() {
            assert!(verify_piece(&seed, &layout, p, &meta.pieces()[p as usize]).unwrap());
        }
        assert!(matches!(
            seed.write_at(pad, &[0; 4]),
            Err(StorageError::ReadOnly { .. })
        ));
    }
}

#[test]
fn non_zero_pad_bytes_never_reach_the_disk() {
    let (meta, all) = padded_torrent();
    let layout = Arc::new(Layout::from_metainfo(&meta).unwrap());
    let dir = TempDir::new("padcorrupt");
    let dl = FileStorage::new(&dir.0, &layout, options(Mode::ReadWrite, false, 4)).unwrap();
    // Piece 0 with one byte set in its pad: refused whole, a.bin and b.bin never created.
    let r = layout.piece_range(0);
    let mut bad = all[r.start as usize..r.end as usize].to_vec();
    let pad = layout.files()[1].offset;
    bad[pad as usize + 3] = 1;
    match dl.write_at(r.start, &bad) {
        Err(StorageError::PadNotZero { offset }) => assert_eq!(offset, pad + 3),
        other => panic!("{other:?}"),
    }
    assert!(tree(&dir.0).is_empty(), "{:?}", tree(&dir.0));

    // Through the verifier, even with a hash that matches the corrupt bytes (a broken torrent),
    // the piece fails like a bad hash and nothing is written.
    let verifier = Verifier::new(Arc::new(dl), layout.clone(), 1, 1).unwrap();
    let corrupt_hash: [u8; 20] = Sha1::digest(&bad).into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = verifier
            .check_and_write(0, bad, corrupt_hash)
            .await
            .unwrap();
        assert!(!c.ok);
        let good = all[r.start as usize..r.end as usize].to_vec();
        let c = verifier
            .check_and_write(0, good, meta.pieces()[0])
            .await
            .unwrap();
        assert!(c.ok);
        assert!(verifier.verify(0, meta.pieces()[0]).await.unwrap());
    });
    assert_eq!(tree(&dir.0), ["padded", "padded/a.bin", "padded/b.bin"]);
}

#[test]
fn memory_storage_keeps_padded_pieces() {
    let (meta, all) = padded_torrent();
    let layout = Layout::from_metainfo(&meta).unwrap();
    let mem = MemoryStorage::from_vec(all.clone());
    let have = recheck(&mem, &layout, meta.pieces(), 2, |_| {}).unwrap();
    assert_eq!(have, [true; 3]);
}

/// Recheck speed on a 256 MiB file beside `sha1sum` on the same file, page cache warm.
#[test]
#[ignore = "writes and hashes 256 MiB; run by hand with --release"]
fn recheck_speed_vs_sha1sum() {
    use std::io::Write as _;
    use std::time::Instant;
    const LEN: usize = 256 << 20;
    const PIECE: usize = 1 << 20;
    const RUNS: usize = 5;
    let dir = TempDir::new("speed");
    let path = dir.0.join("big.bin");
    let mut hashes = Vec::with_capacity(LEN / PIECE);
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..(LEN / PIECE) as u32 {
            let block = pattern(PIECE, i);
            hashes.push(<[u8; 20]>::from(Sha1::digest(&block)));
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    let layout = Layout::new(PIECE as u64, [(vec!["big.bin".to_string()], LEN as u64)]).unwrap();
    let disk = FileStorage::new(&dir.0, &layout, options(Mode::ReadOnly, false, 8)).unwrap();
    let mib = LEN as f64 / 1048576.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Best of a few runs: other work on the machine only ever slows a run down.
    let best = |run: &mut dyn FnMut()| {
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    // GNU dd's nocache flag drops this file's pages from the page cache.
    let drop_cache = || {
        std::process::Command::new("dd")
            .args(["iflag=nocache", "count=0", "status=none"])
            .arg(format!("if={}", path.display()))
            .status()
            .is_ok_and(|s| s.success())
    };
    let report = |what: &str, secs: f64| {
        println!(
            "{what:<28} {mib:.0} MiB in {secs:.3} s = {:>5.0} MiB/s",
            mib / secs
        );
    };
    let bytes = std::fs::read(&path).unwrap(); // warms the page cache too
    let secs = best(&mut || {
        let ok = bytes
            .chunks(PIECE)
            .zip(&hashes)
            .all(|(c, h)| <[u8; 20]>::from(Sha1::digest(c)) == *h);
        assert!(ok);
    });
    drop(bytes);
    report("SHA-1 of memory, 1 thread:", secs);
    for threads in [1, cores] {
        let secs = best(&mut || {
            let have = recheck(&disk, &layout, &hashes, threads, |_| {}).unwrap();
            assert!(have.iter().all(|h| *h));
        });
        report(&format!("recheck, {threads} thread(s), warm:"), secs);
    }
    let mut sha1sum_ok = true;
    let secs = best(&mut || {
        sha1sum_ok &= std::process::Command::new("sha1sum")
            .arg(&path)
            .output()
            .is_ok_and(|o| o.status.success());
    });
    if sha1sum_ok {
        report("sha1sum, warm:", secs);
    }
    if drop_cache() {
        let secs = best(&mut || {
            drop_cache();
            recheck(&disk, &layout, &hashes, cores, |_| {}).unwrap();
        });
        report(&format!("recheck, {cores} thread(s), cold:"), secs);
        let secs = best(&mut || {
            drop_cache();
            std::process::Command::new("sha1sum")
                .arg(&path)
                .output()
                .unwrap();
        });
        report("sha1sum, cold:", secs);
    }
}
