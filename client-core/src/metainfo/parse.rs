//! Parsing and validation of metainfo bytes into a [`Metainfo`].

use sha1::{Digest, Sha1};
use swarmd_proto::bencode::{raw_dict_entries, DecodeError, Value};
use swarmd_proto::InfoHash;

use super::{FileAttr, FileEntry, Metainfo};

/// Largest accepted piece length (1 GiB); real torrents stay far below.
pub(crate) const MAX_PIECE_LENGTH: u64 = 1 << 30;

/// Why a metainfo file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// Not valid bencode (includes trailing bytes after the top dictionary).
    #[error("invalid bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// A required key is absent.
    #[error("missing key `{0}`")]
    MissingKey(&'static str),
    /// A key holds the wrong type or an invalid value.
    #[error("invalid value for `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file path or name that could escape the torrent's folder or is not a plain name.
    #[error("unsafe path component {component:?}: {reason}")]
    UnsafePath {
        /// The offending component (lossily decoded).
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two files with the same path.
    #[error("duplicate file path {0:?}")]
    DuplicatePath(String),
    /// Both `length` and `files`, or neither.
    #[error("info must have exactly one of `length` and `files`")]
    LengthAndFiles,
    /// The file lengths sum to more than 2^63 - 1 bytes.
    #[error("total length overflows")]
    TotalTooLarge,
    /// `pieces` is not a multiple of 20 bytes.
    #[error("`pieces` length {0} is not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of piece hashes does not match the total length.
    #[error(
        "{got} piece hashes for {total} bytes in pieces of {piece_length} (expected {expected})"
    )]
    PieceCountMismatch {
        /// Hashes present.
        got: usize,
        /// Hashes expected: ceil(total / piece_length).
        expected: u64,
        /// Total length.
        total: u64,
        /// Piece length.
        piece_length: u64,
    },
}

fn invalid(key: &'static str, reason: &'static str) -> MetainfoError {
    MetainfoError::InvalidValue { key, reason }
}

fn text(v: &Value<'_>, key: &'static str) -> Result<String, MetainfoError> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| invalid(key, "not a byte string"))
}

fn opt_text(dict: &Value<'_>, key: &'static str) -> Result<Option<String>, MetainfoError> {
    dict.get(key.as_bytes()).map(|v| text(v, key)).transpose()
}

fn length(v: &Value<'_>, key: &'static str) -> Result<u64, MetainfoError> {
    let n = v.as_int().ok_or_else(|| invalid(key, "not an integer"))?;
    u64::try_from(n).map_err(|_| invalid(key, "negative"))
}

/// Checks one path component: no traversal, nothing absolute, no separators, no NUL.
pub(crate) fn sanitize_component(raw: &[u8]) -> Result<String, MetainfoError> {
    let s = String::from_utf8_lossy(raw).into_owned();
    let reason = if s.is_empty() {
        Some("empty")
    } else if s == "." || s == ".." {
        Some("relative directory")
    } else if s.contains('/') || s.contains('\\') {
        Some("contains a path separator")
    } else if s.contains('\0') {
        Some("contains NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MetainfoError::UnsafePath {
            component: s,
            reason,
        }),
        None => Ok(s),
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    let entries = raw_dict_entries(bytes)?;
    let raw_info = entries
        .iter()
        .find(|(k, _)| *k == b"info")
        .map(|(_, v)| *v)
        .ok_or(MetainfoError::MissingKey("info"))?;
    let top = Value::decode(bytes)?;
    let info = Value::decode(raw_info)?;
    if info.as_dict().is_none() {
        return Err(invalid("info", "not a dictionary"));
    }
    let info_hash = InfoHash(Sha1::digest(raw_info).into());

    let name_raw = info
        .get(b"name")
        .ok_or(MetainfoError::MissingKey("name"))?
        .as_bytes()
        .ok_or_else(|| invalid("name", "not a byte string"))?;
    let name = sanitize_component(name_raw)?;

    let piece_length = length(
        info.get(b"piece length")
            .ok_or(MetainfoError::MissingKey("piece length"))?,
        "piece length",
    )?;
    if piece_length == 0 || piece_length > MAX_PIECE_LENGTH {
        return Err(invalid("piece length", "not in 1 ..= 2^30"));
    }
    let pieces_raw = info
        .get(b"pieces")
        .ok_or(MetainfoError::MissingKey("pieces"))?
        .as_bytes()
        .ok_or_else(|| invalid("pieces", "not a byte string"))?;
    if pieces_raw.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(pieces_raw.len()));
    }

    let (files, multi_file) = match (info.get(b"length"), info.get(b"files")) {
        (Some(len), None) => (
            vec![file_entry(
                &info,
                vec![name.clone()],
                length(len, "length")?,
            )?],
            false,
        ),
        (None, Some(files)) => (parse_files(files)?, true),
        _ => return Err(MetainfoError::LengthAndFiles),
    };
    let total_length = files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.length))
        .filter(|t| i64::try_from(*t).is_ok())
        .ok_or(MetainfoError::TotalTooLarge)?;
    let expected = total_length.div_ceil(piece_length);
    let got = pieces_raw.len() / 20;
    if u64::try_from(got).ok() != Some(expected) {
        return Err(MetainfoError::PieceCountMismatch {
            got,
            expected,
            total: total_length,
            piece_length,
        });
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    let private = match info.get(b"private") {
        None => false,
        Some(v) => {
            v.as_int()
                .ok_or_else(|| invalid("private", "not an integer"))?
                == 1
        }
    };

    Ok(Metainfo {
        name,
        info_hash,
        piece_length,
        pieces,
        files,
        multi_file,
        total_length,
        trackers: parse_trackers(&top)?,
        private,
        comment: opt_text(&top, "comment")?,
        created_by: opt_text(&top, "created by")?,
        creation_date: top.get(b"creation date").and_then(Value::as_int),
        source: opt_text(&info, "source")?,
        url_list: parse_url_list(&top),
    })
}

fn parse_files(files: &Value<'_>) -> Result<Vec<FileEntry>, MetainfoError> {
    let list = files
        .as_list()
        .ok_or_else(|| invalid("files", "not a list"))?;
    if list.is_empty() {
        return Err(invalid("files", "empty list"));
    }
    let mut out = Vec::with_capacity(list.len());
    for f in list {
        if f.as_dict().is_none() {
            return Err(invalid("files", "entry is not a dictionary"));
        }
        let length = length(
            f.get(b"length")
                .ok_or(MetainfoError::MissingKey("length"))?,
            "length",
        )?;
        let comps = f
            .get(b"path")
            .ok_or(MetainfoError::MissingKey("path"))?
            .as_list()
            .ok_or_else(|| invalid("path", "not a list"))?;
        if comps.is_empty() {
            return Err(invalid("path", "empty list"));
        }
        let path = comps
            .iter()
            .map(|c| {
                c.as_bytes()
                    .ok_or_else(|| invalid("path", "component is not a byte string"))
                    .and_then(sanitize_component)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(file_entry(f, path, length)?);
    }
    // Pad files hold no bytes on disk, so their paths may repeat (libtorrent names them
    // `.pad/<length>`); every other path must be unique.
    let mut paths: Vec<&[String]> = out
        .iter()
        .filter(|f| !f.attr.pad)
        .map(|f| &f.path[..])
        .collect();
    paths.sort_unstable();
    for w in paths.windows(2) {
        // Equal paths, or a file that is also a folder of another file.
        if w[1].starts_with(w[0]) {
            return Err(MetainfoError::DuplicatePath(w[0].join("/")));
        }
    }
    Ok(out)
}

/// A file entry with its BEP 47 `attr` and `symlink path` read from `dict` (the info dictionary
/// of a single-file torrent, or one entry of `files`).
fn file_entry(
    dict: &Value<'_>,
    path: Vec<String>,
    length: u64,
) -> Result<FileEntry, MetainfoError> {
    let attr = match dict.get(b"attr") {
        None => FileAttr::default(),
        Some(v) => FileAttr::from_bytes(
            v.as_bytes()
                .ok_or_else(|| invalid("attr", "not a byte string"))?,
        ),
    };
    let mut symlink_path = None;
    if attr.symlink {
        if length != 0 {
            return Err(invalid("attr", "a symbolic link with a non-zero length"));
        }
        if let Some(v) = dict.get(b"symlink path") {
            let comps = v
                .as_list()
                .ok_or_else(|| invalid("symlink path", "not a list"))?;
            let target = comps
                .iter()
                .map(|c| {
                    c.as_bytes()
                        .ok_or_else(|| invalid("symlink path", "component is not a byte string"))
                        .and_then(sanitize_component)
                })
                .collect::<Result<Vec<_>, _>>()?;
            symlink_path = Some(target);
        }
    }
    Ok(FileEntry {
        path,
        length,
        attr,
        symlink_path,
    })
}

fn parse_trackers(top: &Value<'_>) -> Result<Vec<Vec<String>>, MetainfoError> {
    if let Some(list) = top.get(b"announce-list") {
        let tiers = list
            .as_list()
            .ok_or_else(|| invalid("announce-list", "not a list"))?;
        let mut out = Vec::new();
        for tier in tiers {
            let urls = tier
                .as_list()
                .ok_or_else(|| invalid("announce-list", "tier is not a list"))?;
            let tier: Vec<String> = urls
                .iter()
                .map(|u| text(u, "announce-list"))
                .collect::<Result<_, _>>()?;
            let tier: Vec<String> = tier.into_iter().filter(|u| !u.is_empty()).collect();
            if !tier.is_empty() {
                out.push(tier);
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    Ok(match opt_text(top, "announce")? {
        Some(url) if !url.is_empty() => vec![vec![url]],
        _ => Vec::new(),
    })
}

/// BEP 19 `url-list`: a string or a list of strings; anything else is ignored.
fn parse_url_list(top: &Value<'_>) -> Vec<String> {
    match top.get(b"url-list") {
        Some(Value::Bytes(b)) if !b.is_empty() => vec![String::from_utf8_lossy(b).into_owned()],
        Some(Value::List(l)) => l
            .iter()
            .filter_map(Value::as_bytes)
            .filter(|b| !b.is_empty())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}
