//! Interop: info-hash and piece-count parity of `swarmd torrent` with `mktorrent`,
//! `transmission-create`/`transmission-show` (Debian's transmission-cli) and python3-libtorrent
//! (run with `/usr/bin/python3`, through `metainfo_lt.py`). `scripts/install-deps.sh` installs
//! the tools; a missing tool fails the test with a message naming it.
//!
//! The folder has nested dirs, an empty file and a hidden file. `transmission-create` drops empty
//! and hidden files (so it gets a folder without them); mktorrent and libtorrent keep them.

use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const TRACKER: &str = "http://127.0.0.1:6969/announce";
/// 32 KiB pieces: several pieces, some spanning file boundaries.
const PIECE_LOG2: u32 = 15;

fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/metainfo_lt.py")
}

/// Runs a command, failing the test with a clear message if it is missing or fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): scripts/install-deps.sh installs the interop tools"
            )
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn swarmd(args: &[&str]) -> String {
    run(env!("CARGO_BIN_EXE_swarmd"), args)
}

/// (info hash, piece count) as printed by `swarmd torrent show`.
fn swarmd_show(torrent: &Path) -> (String, usize) {
    let out = swarmd(&["torrent", "show", torrent.to_str().unwrap()]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in swarmd output:\n{out}"))
            .trim()
            .to_owned()
    };
    (field("info hash:"), field("piece count:").parse().unwrap())
}

/// (info hash, piece count, file count) as libtorrent reads the torrent.
fn lt_show(torrent: &Path) -> (String, usize, usize) {
    let script = lt_script();
    let out = run(
        PYTHON,
        &[script.to_str().unwrap(), "show", torrent.to_str().unwrap()],
    );
    let mut it = out.split_whitespace();
    let hash = it.next().expect("libtorrent hash").to_owned();
    let pieces = it.next().expect("piece count").parse().unwrap();
    let files = it.next().expect("file count").parse().unwrap();
    (hash, pieces, files)
}

/// (info hash, piece count) as `transmission-show` prints them.
fn transmission_show(torrent: &Path) -> (String, usize) {
    let out = run("transmission-show", &[torrent.to_str().unwrap()]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in transmission-show output:\n{out}"))
            .trim()
            .to_owned()
    };
    (field("Hash:"), field("Piece Count:").parse().unwrap())
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A scratch dir with `full/` (nested dirs, an empty file, a hidden file) and `plain/` (only
/// non-empty, non-hidden files, for transmission-create).
fn fixture(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("swarmd-interop-mi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for base in ["full", "plain"] {
        let d = root.join(base);
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(d.join("z")).unwrap();
        std::fs::write(d.join("a.bin"), bytes(100_000, 1)).unwrap();
        std::fs::write(d.join("sub/deeper/b.bin"), bytes(70_000, 2)).unwrap();
        std::fs::write(d.join("sub/c.txt"), bytes(12_345, 3)).unwrap();
        std::fs::write(d.join("z/last"), bytes(40_000, 4)).unwrap();
    }
    std::fs::write(root.join("full/sub/empty"), b"").unwrap();
    std::fs::write(root.join("full/.hidden"), bytes(5, 5)).unwrap();
    root
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn swarmd_reads_torrents_of_mktorrent_transmission_and_libtorrent() {
    let root = fixture("read");
    let (full, plain) = (root.join("full"), root.join("plain"));
    let log2 = PIECE_LOG2.to_string();
    let piece_len = (1u32 << PIECE_LOG2).to_string();

    let mk = root.join("mk.torrent");
    run(
        "mktorrent",
        &["-l", &log2, "-a", TRACKER, "-o", s(&mk), s(&full)],
    );
    let tr = root.join("tr.torrent");
    run(
        "transmission-create",
        &["-s", "32", "-t", TRACKER, "-o", s(&tr), s(&plain)],
    );
    let lt = root.join("lt.torrent");
    let script = lt_script();
    run(
        PYTHON,
        &[s(&script), "create", s(&full), s(&lt), &piece_len, TRACKER],
    );

    for (tool, torrent, files) in [
        ("mktorrent", &mk, 6),
        ("transmission-create", &tr, 4),
        ("libtorrent", &lt, 6),
    ] {
        let (hash, pieces) = swarmd_show(torrent);
        let (lt_hash, lt_pieces, lt_files) = lt_show(torrent);
        assert_eq!(hash, lt_hash, "{tool}: info hash differs from libtorrent's");
        assert_eq!(
            pieces, lt_pieces,
            "{tool}: piece count differs from libtorrent's"
        );
        assert_eq!(lt_files, files, "{tool}: unexpected file count");
        let (tr_hash, tr_pieces) = transmission_show(torrent);
        assert_eq!(
            hash, tr_hash,
            "{tool}: info hash differs from transmission-show's"
        );
        assert_eq!(
            pieces, tr_pieces,
            "{tool}: piece count differs from transmission-show's"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn torrents_by_swarmd_are_accepted_with_the_same_hash() {
    let root = fixture("write");
    let piece_len = (1u32 << PIECE_LOG2).to_string();
    let single = root.join("plain/a.bin");
    for (what, input) in [("folder", root.join("full")), ("file", single)] {
        let out = root.join(format!("sw-{what}.torrent"));
        let printed = swarmd(&[
            "torrent",
            "create",
            s(&input),
            "-t",
            TRACKER,
            "-t",
            "udp://127.0.0.1:6969",
            "--piece-length",
            &piece_len,
            "--no-date",
            "-o",
            s(&out),
        ]);
        let (hash, pieces) = swarmd_show(&out);
        assert_eq!(printed.trim(), hash, "{what}: create and show disagree");
        let (lt_hash, lt_pieces, _) = lt_show(&out);
        assert_eq!(
            (&lt_hash, lt_pieces),
            (&hash, pieces),
            "{what}: libtorrent reads another hash"
        );
        let (tr_hash, tr_pieces) = transmission_show(&out);
        assert_eq!(
            (&tr_hash, tr_pieces),
            (&hash, pieces),
            "{what}: transmission reads another hash"
        );

        // Same file order and keys as mktorrent: the very same info hash.
        let mk = root.join(format!("mk-{what}.torrent"));
        run(
            "mktorrent",
            &[
                "-l",
                &PIECE_LOG2.to_string(),
                "-a",
                TRACKER,
                "-o",
                s(&mk),
                s(&input),
            ],
        );
        assert_eq!(
            swarmd_show(&mk).0,
            hash,
            "{what}: mktorrent gives another hash"
        );

        // Deterministic: a second run writes the same bytes.
        let again = root.join(format!("sw-{what}-2.torrent"));
        swarmd(&[
            "torrent",
            "create",
            s(&input),
            "-t",
            TRACKER,
            "-t",
            "udp://127.0.0.1:6969",
            "--piece-length",
            &piece_len,
            "--no-date",
            "-o",
            s(&again),
        ]);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());

        let magnet = swarmd(&["torrent", "magnet", s(&out)]);
        assert!(
            magnet.starts_with(&format!("magnet:?xt=urn:btih:{hash}&dn=")),
            "{magnet}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
