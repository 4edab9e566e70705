//! Fuzzes the metainfo parser (`.torrent` files) and the bencode decoder under it with arbitrary
//! bytes: whatever parses must be self-consistent (piece count matches the total length, file
//! lengths sum to the total, every path component and symlink target component is a plain name,
//! BEP 47 symlinks hold no bytes) and its magnet link must re-parse equal; any decoded bencode
//! value must re-encode to bytes that decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmd_client_core::{Magnet, Metainfo};
use swarmd_proto::bencode::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Value::decode(data) {
        let bytes = v.to_bytes();
        assert_eq!(Value::decode(&bytes).expect("re-encoded value decodes"), v);
    }
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    assert!(m.piece_length() > 0);
    assert_eq!(
        m.piece_count() as u64,
        m.total_length().div_ceil(m.piece_length())
    );
    assert_eq!(
        m.files().iter().map(|f| f.length).sum::<u64>(),
        m.total_length()
    );
    for f in m.files() {
        assert!(!f.path.is_empty());
        // BEP 47: a symbolic link holds no bytes, and only a symbolic link has a target.
        assert!(!f.attr.symlink || f.length == 0);
        assert!(f.symlink_path.is_none() || f.attr.symlink);
        for c in f.path.iter().chain(f.symlink_path.iter().flatten()) {
            assert!(!c.is_empty() && c != "." && c != "..");
            assert!(!c.contains(['/', '\\', '\0']));
        }
    }
    let magnet = m.magnet();
    assert_eq!(
        Magnet::parse(&magnet.to_string()).expect("own magnet parses"),
        magnet
    );
});
