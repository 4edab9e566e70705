//! Unit tests: valid torrents, hostile torrents (each refused with a clear error), creation.

use swarmd_proto::bencode::{DecodeErrorKind, Value};

use super::*;

fn pieces(n: usize) -> Vec<u8> {
    vec![7u8; n * 20]
}

/// A multi-file info dict with the given files (path components, length) and piece settings.
fn multi(files: &[(&[&[u8]], i64)], piece_length: i64, pieces: &[u8]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(path, len)| {
            Value::Dict(vec![
                (b"length", Value::Int(*len)),
                (
                    b"path",
                    Value::List(path.iter().map(|c| Value::Bytes(c)).collect()),
                ),
            ])
        })
        .collect();
    torrent(Value::Dict(vec![
        (b"files", Value::List(files)),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(piece_length)),
        (b"pieces", Value::Bytes(pieces)),
    ]))
}

fn torrent(info: Value<'_>) -> Vec<u8> {
    Value::Dict(vec![
        (b"announce", Value::Bytes(b"http://t/announce")),
        (b"info", info),
    ])
    .to_bytes()
}

fn err(bytes: &[u8]) -> MetainfoError {
    Metainfo::from_bytes(bytes).unwrap_err()
}

#[test]
fn parses_single_file_with_all_fields() {
    let p = pieces(3);
    let info = Value::Dict(vec![
        (b"length", Value::Int(40_000)),
        (b"name", Value::Bytes(b"a.bin")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&p)),
        (b"private", Value::Int(1)),
        (b"source", Value::Bytes(b"SRC")),
    ]);
    let info_bytes = info.to_bytes();
    let bytes = Value::Dict(vec![
        (b"announce", Value::Bytes(b"http://a")),
        (
            b"announce-list",
            Value::List(vec![
                Value::List(vec![Value::Bytes(b"http://a"), Value::Bytes(b"http://b")]),
                Value::List(vec![]),
                Value::List(vec![Value::Bytes(b"udp://c:1")]),
            ]),
        ),
        (b"comment", Value::Bytes(b"hi")),
        (b"created by", Value::Bytes(b"me")),
        (b"creation date", Value::Int(1_700_000_000)),
        (b"info", info),
        (b"url-list", Value::Bytes(b"http://seed/")),
    ])
    .to_bytes();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.name(), "a.bin");
    assert!(!m.is_multi_file());
    assert_eq!(m.total_length(), 40_000);
    assert_eq!(m.piece_count(), 3);
    assert_eq!(m.piece_length(), 16384);
    assert!(m.private());
    assert_eq!(m.source(), Some("SRC"));
    assert_eq!(m.comment(), Some("hi"));
    assert_eq!(m.created_by(), Some("me"));
    assert_eq!(m.creation_date(), Some(1_700_000_000));
    assert_eq!(m.url_list(), ["http://seed/"]);
    assert_eq!(
        m.trackers(),
        [vec!["http://a", "http://b"], vec!["udp://c:1"]]
    );
    use sha1::Digest;
    assert_eq!(
        m.info_hash().0,
        <[u8; 20]>::from(sha1::Sha1::digest(&info_bytes))
    );
    assert_eq!(
        m.files(),
        [FileEntry {
            path: vec!["a.bin".into()],
            length: 40_000,
            ..FileEntry::default()
        }]
    );
}

#[test]
fn info_hash_uses_raw_bytes_of_unsorted_info() {
    // Keys out of order and an unknown key: a re-encoding would change the hash.
    let info =
        b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa1:zi0e1:ai0ee";
    let bytes = [&b"d4:info"[..], info, b"e"].concat();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    use sha1::Digest;
    assert_eq!(m.info_hash().0, <[u8; 20]>::from(sha1::Sha1::digest(info)));
    assert!(m.trackers().is_empty());
}

#[test]
fn parses_multi_file() {
    let bytes = multi(
        &[(&[b"sub", b"x"], 10), (&[b"empty"], 0), (&[b"y"], 20_000)],
        16384,
        &pieces(2),
    );
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(m.is_multi_file());
    assert_eq!(m.total_length(), 20_010);
    assert_eq!(m.files()[0].path, ["sub", "x"]);
    assert_eq!(m.files()[1].length, 0);
}

#[test]
fn refuses_path_traversal_and_odd_components() {
    for (comp, reason) in [
        (&b".."[..], "relative directory"),
        (b".", "relative directory"),
        (b"", "empty"),
        (b"/etc", "contains a path separator"),
        (b"a/b", "contains a path separator"),
        (b"a\\b", "contains a path separator"),
        (b"a\0b", "contains NUL"),
    ] {
        let bytes = multi(&[(&[b"ok", comp], 1)], 16384, &pieces(1));
        match err(&bytes) {
            MetainfoError::UnsafePath { reason: r, .. } => assert_eq!(r, reason),
            e => panic!("{comp:?}: unexpected {e}"),
        }
    }
    let bytes = multi(&[(&[], 1)], 16384, &pieces(1));
    assert!(matches!(
        err(&bytes),
        MetainfoError::InvalidValue { key: "path", .. }
    ));
    // The name too: it becomes the folder or file name.
    let info = Value::Dict(vec![
        (b"length", Value::Int(1)),
        (b"name", Value::Bytes(b"..")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&[0; 20])),
    ]);
    assert!(matches!(
        err(&torrent(info)),
        MetainfoError::UnsafePath { .. }
    ));
}

#[test]
fn refuses_duplicate_and_conflicting_paths() {
    let bytes = multi(&[(&[b"a"], 1), (&[b"a"], 1)], 16384, &pieces(1));
    assert_eq!(err(&bytes), MetainfoError::DuplicatePath("a".into()));
    let bytes = multi(&[(&[b"a"], 1), (&[b"a", b"b"], 1)], 16384, &pieces(1));
    assert_eq!(err(&bytes), MetainfoError::DuplicatePath("a".into()));
}

/// Path components as raw bytes.
type RawPath<'a> = &'a [&'a [u8]];

/// A multi-file info dict whose files carry BEP 47 keys: (path, length, attr, symlink path).
fn multi_attr(files: &[(RawPath<'_>, i64, &[u8], Option<RawPath<'_>>)], pieces: &[u8]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(path, len, attr, target)| {
            let mut d = Vec::new();
            if !attr.is_empty() {
                d.push((&b"attr"[..], Value::Bytes(attr)));
            }
            d.push((b"length", Value::Int(*len)));
            d.push((
                b"path",
                Value::List(path.iter().map(|c| Value::Bytes(c)).collect()),
            ));
            if let Some(t) = target {
                d.push((
                    b"symlink path",
                    Value::List(t.iter().map(|c| Value::Bytes(c)).collect()),
                ));
            }
            Value::Dict(d)
        })
        .collect();
    torrent(Value::Dict(vec![
        (b"files", Value::List(files)),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(pieces)),
    ]))
}

#[test]
fn parses_bep47_attributes_and_repeated_pad_paths() {
    // libtorrent 2.0 style: every file but the last padded to a piece boundary with `.pad/N`.
    let bytes = multi_attr(
        &[
            (&[b"a"], 10_000, b"x", None),
            (&[b".pad", b"6384"], 6384, b"p", None),
            (&[b"b"], 10_000, b"hZ", None),
            (&[b".pad", b"6384"], 6384, b"p", None),
            (&[b"link"], 0, b"l", Some(&[b"sub", b"a"])),
            (&[b"c"], 5, b"", None),
        ],
        &pieces(3),
    );
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let f = m.files();
    assert_eq!(m.total_length(), 32_773);
    assert!(f[0].attr.executable && !f[0].is_pad());
    assert!(f[1].is_pad() && f[3].is_pad() && f[1].attr.is_virtual());
    assert_eq!(f[1].path, f[3].path);
    assert!(
        f[2].attr.hidden && !f[2].attr.executable,
        "unknown `Z` ignored"
    );
    assert!(f[4].attr.symlink && f[4].attr.is_virtual());
    assert_eq!(
        f[4].symlink_path.as_deref(),
        Some(&["sub".to_string(), "a".to_string()][..])
    );
    assert_eq!(f[5].attr, FileAttr::default());
    assert_eq!(f[5].symlink_path, None);
    assert_eq!(FileAttr::from_bytes(b"plxh?"), {
        FileAttr {
            pad: true,
            executable: true,
            hidden: true,
            symlink: true,
        }
    });
}

#[test]
fn bep47_single_file_attr() {
    let p = pieces(1);
    let info = Value::Dict(vec![
        (b"attr", Value::Bytes(b"x")),
        (b"length", Value::Int(3)),
        (b"name", Value::Bytes(b"run.sh")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&p)),
    ]);
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert!(m.files()[0].attr.executable);
}

#[test]
fn refuses_bad_bep47_entries() {
    // Real files may not share a path; a pad may share one with anything (it is never stored).
    let bytes = multi_attr(
        &[
            (&[b"a"], 1, b"x", None),
            (&[b"a"], 1, b"h", None),
            (&[b"a"], 1, b"p", None),
        ],
        &pieces(1),
    );
    assert_eq!(err(&bytes), MetainfoError::DuplicatePath("a".into()));
    let bytes = multi_attr(
        &[(&[b"a"], 1, b"", None), (&[b"a"], 1, b"p", None)],
        &pieces(1),
    );
    assert!(Metainfo::from_bytes(&bytes).is_ok());
    // A symlink holding bytes.
    let bytes = multi_attr(&[(&[b"l"], 5, b"l", Some(&[b"a"]))], &pieces(1));
    assert!(matches!(
        err(&bytes),
        MetainfoError::InvalidValue { key: "attr", .. }
    ));
    // A symlink pointing out of the folder.
    let bytes = multi_attr(
        &[
            (&[b"a"], 1, b"", None),
            (&[b"l"], 0, b"l", Some(&[b"..", b"etc"])),
        ],
        &pieces(1),
    );
    assert!(matches!(err(&bytes), MetainfoError::UnsafePath { .. }));
    // `attr` of the wrong type.
    let files = Value::List(vec![Value::Dict(vec![
        (b"attr", Value::Int(1)),
        (b"length", Value::Int(1)),
        (b"path", Value::List(vec![Value::Bytes(b"a")])),
    ])]);
    let p = pieces(1);
    let info = Value::Dict(vec![
        (b"files", files),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&p)),
    ]);
    assert!(matches!(
        err(&torrent(info)),
        MetainfoError::InvalidValue { key: "attr", .. }
    ));
}

#[test]
fn refuses_huge_and_negative_sizes() {
    let bytes = multi(
        &[(&[b"a"], i64::MAX), (&[b"b"], i64::MAX)],
        16384,
        &pieces(1),
    );
    assert_eq!(err(&bytes), MetainfoError::TotalTooLarge);
    let bytes = multi(&[(&[b"a"], -1)], 16384, &pieces(1));
    assert_eq!(
        err(&bytes),
        MetainfoError::InvalidValue {
            key: "length",
            reason: "negative"
        }
    );
    // A huge declared size without the matching piece hashes.
    let bytes = multi(&[(&[b"a"], 1 << 50)], 16384, &pieces(1));
    assert!(matches!(
        err(&bytes),
        MetainfoError::PieceCountMismatch { got: 1, .. }
    ));
}

#[test]
fn refuses_bad_pieces() {
    let bytes = multi(&[(&[b"a"], 1)], 16384, &[0; 19]);
    assert_eq!(err(&bytes), MetainfoError::PiecesNotMultipleOf20(19));
    let bytes = multi(&[(&[b"a"], 16385)], 16384, &pieces(1));
    assert_eq!(
        err(&bytes),
        MetainfoError::PieceCountMismatch {
            got: 1,
            expected: 2,
            total: 16385,
            piece_length: 16384
        }
    );
    for pl in [0, -5, 1 << 31] {
        let bytes = multi(&[(&[b"a"], 1)], pl, &pieces(1));
        assert!(matches!(
            err(&bytes),
            MetainfoError::InvalidValue {
                key: "piece length",
                ..
            }
        ));
    }
}

#[test]
fn refuses_missing_keys_and_structure() {
    assert_eq!(err(b"d8:announce1:xe"), MetainfoError::MissingKey("info"));
    for (key, missing) in [
        (&b"name"[..], "name"),
        (b"piece length", "piece length"),
        (b"pieces", "pieces"),
    ] {
        let mut info = vec![
            (&b"length"[..], Value::Int(1)),
            (b"name", Value::Bytes(b"x")),
            (b"piece length", Value::Int(16384)),
            (b"pieces", Value::Bytes(&[0; 20])),
        ];
        info.retain(|(k, _)| *k != key);
        assert_eq!(
            err(&torrent(Value::Dict(info))),
            MetainfoError::MissingKey(missing)
        );
    }
    let info = Value::Dict(vec![
        (b"name", Value::Bytes(b"x")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&[0; 20])),
    ]);
    assert_eq!(err(&torrent(info)), MetainfoError::LengthAndFiles);
    assert!(matches!(
        err(&torrent(Value::Int(3))),
        MetainfoError::InvalidValue { key: "info", .. }
    ));
    assert!(matches!(err(b"li1ee"), MetainfoError::Bencode(_)));
}

#[test]
fn refuses_trailing_garbage() {
    let mut bytes = multi(&[(&[b"a"], 1)], 16384, &pieces(1));
    bytes.extend_from_slice(b"junk");
    match err(&bytes) {
        MetainfoError::Bencode(e) => assert_eq!(e.kind, DecodeErrorKind::TrailingData),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn auto_piece_length_bounds() {
    assert_eq!(auto_piece_length(0), 16 << 10);
    assert_eq!(auto_piece_length(1 << 20), 16 << 10);
    assert_eq!(auto_piece_length(1 << 30), 1 << 20); // 1024 pieces
    assert_eq!(auto_piece_length(1 << 40), 16 << 20);
    for total in [100u64 << 20, 3 << 30, 700 << 20] {
        let n = total.div_ceil(auto_piece_length(total));
        assert!((1000..=2000).contains(&n), "{total}: {n}");
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("swarmd-mi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn create_folder_round_trips_and_is_deterministic() {
    let root = tempdir("create").join("content");
    std::fs::create_dir_all(root.join("b/c")).unwrap();
    std::fs::write(root.join("a.txt"), vec![1u8; 50_000]).unwrap();
    std::fs::write(root.join("b/c/deep"), vec![2u8; 20_000]).unwrap();
    std::fs::write(root.join("b/empty"), b"").unwrap();
    std::fs::write(root.join(".hidden"), b"h").unwrap();
    let opts = CreateOptions {
        trackers: vec![vec!["http://a/announce".into()], vec!["udp://b:1".into()]],
        private: true,
        piece_length: Some(16384),
        comment: Some("c".into()),
        source: Some("s".into()),
        creation_date: Some(5),
        created_by: Some("swarmd".into()),
    };
    let last = std::cell::Cell::new(0);
    let bytes = create(&root, &opts, |n| last.set(n)).unwrap();
    assert_eq!(last.get(), 70_001);
    assert_eq!(create(&root, &opts, |_| {}).unwrap(), bytes);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.name(), "content");
    let paths: Vec<String> = m.files().iter().map(|f| f.path.join("/")).collect();
    assert_eq!(paths, [".hidden", "a.txt", "b/c/deep", "b/empty"]);
    assert_eq!(m.piece_count(), 5);
    assert!(m.private());
    assert_eq!(m.trackers(), opts.trackers);
    // Check every piece hash against a sequential hash of the concatenated content.
    let mut all = b"h".to_vec();
    all.extend(vec![1u8; 50_000]);
    all.extend(vec![2u8; 20_000]);
    use sha1::Digest;
    for (i, chunk) in all.chunks(16384).enumerate() {
        assert_eq!(m.pieces()[i], <[u8; 20]>::from(sha1::Sha1::digest(chunk)));
    }
    // Same bytes as the canonical encoding: keys sorted.
    assert_eq!(Value::decode(&bytes).unwrap().to_bytes(), bytes);
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

#[test]
fn create_single_file_and_bad_piece_length() {
    let dir = tempdir("single");
    let file = dir.join("one.bin");
    std::fs::write(&file, vec![9u8; 100]).unwrap();
    let bytes = create(&file, &CreateOptions::default(), |_| {}).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(!m.is_multi_file());
    assert_eq!(
        (m.name(), m.total_length(), m.piece_count()),
        ("one.bin", 100, 1)
    );
    assert!(m.trackers().is_empty());
    let opts = CreateOptions {
        piece_length: Some(1000),
        ..CreateOptions::default()
    };
    assert!(matches!(
        create(&file, &opts, |_| {}),
        Err(CreateError::BadPieceLength(1000))
    ));
    assert!(matches!(
        create(&dir.join("missing"), &CreateOptions::default(), |_| {}),
        Err(CreateError::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn magnet_from_metainfo() {
    let bytes = multi(&[(&[b"a"], 1)], 16384, &pieces(1));
    let m = Metainfo::from_bytes(&bytes).unwrap();
    let link = m.magnet().to_string();
    assert_eq!(
        link,
        format!(
            "magnet:?xt=urn:btih:{}&dn=dir&tr=http%3A%2F%2Ft%2Fannounce",
            m.info_hash()
        )
    );
    assert_eq!(crate::Magnet::parse(&link).unwrap(), m.magnet());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Metainfo::from_bytes(&bytes);
        }

        #[test]
        fn mutated_torrents_never_panic(pos in any::<proptest::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = multi(&[(&[b"a", b"b"], 20_000), (&[b"c"], 0)], 16384, &pieces(2));
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            let _ = Metainfo::from_bytes(&bytes);
        }

        #[test]
        fn any_attr_string_parses_its_known_letters(
            attr in proptest::collection::vec(any::<u8>(), 0..8),
            target in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..3),
        ) {
            let t: Vec<&[u8]> = target.iter().map(Vec::as_slice).collect();
            let bytes = multi_attr(
                &[(&[b"a"], 20_000, b"", None), (&[b"b"], 0, &attr, Some(&t))],
                &pieces(2),
            );
            match Metainfo::from_bytes(&bytes) {
                Ok(m) => {
                    let a = m.files()[1].attr;
                    prop_assert_eq!(a.pad, attr.contains(&b'p'));
                    prop_assert_eq!(a.executable, attr.contains(&b'x'));
                    prop_assert_eq!(a.hidden, attr.contains(&b'h'));
                    prop_assert_eq!(a.symlink, attr.contains(&b'l'));
                    prop_assert_eq!(m.files()[1].symlink_path.is_some(), a.symlink);
                }
                // Only a symlink target can be refused: an unsafe component.
                Err(e) => prop_assert!(
                    attr.contains(&b'l') && matches!(e, MetainfoError::UnsafePath { .. }),
                    "{e:?}"
                ),
            }
        }

        #[test]
        fn mutated_padded_torrents_never_panic(
            pos in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = multi_attr(
                &[
                    (&[b"a"], 100, b"x", None),
                    (&[b".pad", b"16284"], 16_284, b"p", None),
                    (&[b"l"], 0, b"l", Some(&[b"a"])),
                    (&[b"b"], 7, b"", None),
                ],
                &pieces(2),
            );
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            let _ = Metainfo::from_bytes(&bytes);
        }
    }
}
