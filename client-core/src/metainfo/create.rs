//! Creating a metainfo file from a file or a folder, hashing pieces in parallel.
//!
//! Files of a folder are walked recursively and sorted byte-wise by path component, so the same
//! input and options always give the same bytes. Like `mktorrent`, empty and hidden files are
//! included; symbolic links to files are followed, links to folders are skipped (no loops).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use sha1::{Digest, Sha1};
use swarmd_proto::bencode::Value;

use super::parse::sanitize_component;

/// Smallest automatic piece length (16 KiB).
const MIN_AUTO_PIECE: u64 = 16 << 10;
/// Largest automatic piece length (16 MiB).
const MAX_AUTO_PIECE: u64 = 16 << 20;
/// The automatic piece length gives at most this many pieces (unless capped at 16 MiB).
const TARGET_PIECES: u64 = 2000;

/// Options of [`create()`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker tiers. The first URL becomes `announce`; `announce-list` is written when there is
    /// more than one URL in all.
    pub trackers: Vec<Vec<String>>,
    /// Sets the BEP 27 `private` flag.
    pub private: bool,
    /// Bytes per piece: a power of two from 16 KiB to 1 GiB; automatic when `None`.
    pub piece_length: Option<u32>,
    /// `comment`.
    pub comment: Option<String>,
    /// Info dictionary `source` (changes the info hash).
    pub source: Option<String>,
    /// `creation date` (Unix seconds); omitted when `None`.
    pub creation_date: Option<i64>,
    /// `created by`.
    pub created_by: Option<String>,
}

/// Why a torrent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Reading the input failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file name that cannot be stored safely in a torrent.
    #[error("{path}: cannot be stored in a torrent: {reason}")]
    BadName {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The given piece length is not a power of two in 16 KiB ..= 1 GiB.
    #[error("piece length {0} must be a power of two from 16 KiB to 1 GiB")]
    BadPieceLength(u32),
    /// A file changed size while it was hashed.
    #[error("{0}: changed while hashing")]
    Changed(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CreateError + '_ {
    move |source| CreateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The automatic piece length for `total` bytes: the smallest power of two from 16 KiB to 16 MiB
/// that gives at most 2000 pieces (so 1000 to 2000 pieces between the bounds).
pub fn auto_piece_length(total: u64) -> u64 {
    let mut pl = MIN_AUTO_PIECE;
    while pl < MAX_AUTO_PIECE && total.div_ceil(pl) > TARGET_PIECES {
        pl *= 2;
    }
    pl
}

struct InputFile {
    /// Components below the torrent root (empty for a single-file torrent).
    components: Vec<String>,
    disk: PathBuf,
    length: u64,
}

fn component(path: &Path) -> Result<String, CreateError> {
    let name = path.file_name().ok_or_else(|| CreateError::BadName {
        path: path.to_owned(),
        reason: "no file name".into(),
    })?;
    let s = name.to_str().ok_or_else(|| CreateError::BadName {
        path: path.to_owned(),
        reason: "not valid UTF-8".into(),
    })?;
    sanitize_component(s.as_bytes()).map_err(|e| CreateError::BadName {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn walk(dir: &Path, prefix: &[String], out: &mut Vec<InputFile>) -> Result<(), CreateError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let link = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        let mut components = prefix.to_vec();
        components.push(component(&path)?);
        if meta.is_dir() {
            if !link.file_type().is_symlink() {
                walk(&path, &components, out)?;
            }
        } else if meta.is_file() {
            out.push(InputFile {
                components,
                disk: path,
                length: meta.len(),
            });
        }
    }
    Ok(())
}

/// Creates the bytes of a `.torrent` for the file or folder at `path`.
///
/// `progress` is called on the calling thread with the number of bytes hashed so far.
pub fn create(
    path: &Path,
    opts: &CreateOptions,
    progress: impl Fn(u64),
) -> Result<Vec<u8>, CreateError> {
    let name = component(&std::fs::canonicalize(path).map_err(io_err(path))?)?;
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let multi = meta.is_dir();
    let mut files = Vec::new();
    if multi {
        walk(path, &[], &mut files)?;
        files.sort_by(|a, b| a.components.cmp(&b.components));
    } else {
        files.push(InputFile {
            components: Vec::new(),
            disk: path.to_owned(),
            length: meta.len(),
        });
    }
    let total: u64 = files.iter().map(|f| f.length).sum();
    let piece_length = match opts.piece_length {
        Some(pl) if pl.is_power_of_two() && (16 << 10..=1 << 30).contains(&pl) => u64::from(pl),
        Some(pl) => return Err(CreateError::BadPieceLength(pl)),
        None => auto_piece_length(total),
    };
    let pieces = hash_pieces(&files, piece_length, total, progress)?;

    let lengths: Vec<i64> = files
        .iter()
        .map(|f| i64::try_from(f.length).unwrap_or(i64::MAX))
        .collect();
    let mut info: Vec<(&[u8], Value<'_>)> = vec![
        (b"name", Value::Bytes(name.as_bytes())),
        (b"piece length", Value::Int(piece_length as i64)),
        (b"pieces", Value::Bytes(&pieces)),
    ];
    if multi {
        let list = files
            .iter()
            .zip(&lengths)
            .map(|(f, len)| {
                Value::Dict(vec![
                    (b"length", Value::Int(*len)),
                    (
                        b"path",
                        Value::List(
                            f.components
                                .iter()
                                .map(|c| Value::Bytes(c.as_bytes()))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        info.push((b"files", Value::List(list)));
    } else {
        info.push((b"length", Value::Int(lengths[0])));
    }
    if opts.private {
        info.push((b"private", Value::Int(1)));
    }
    if let Some(s) = &opts.source {
        info.push((b"source", Value::Bytes(s.as_bytes())));
    }

    let mut top: Vec<(&[u8], Value<'_>)> = vec![(b"info", Value::Dict(info))];
    let urls: Vec<&String> = opts.trackers.iter().flatten().collect();
    if let Some(first) = urls.first() {
        top.push((b"announce", Value::Bytes(first.as_bytes())));
    }
    if urls.len() > 1 {
        let tiers = opts
            .trackers
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| Value::List(t.iter().map(|u| Value::Bytes(u.as_bytes())).collect()))
            .collect();
        top.push((b"announce-list", Value::List(tiers)));
    }
    if let Some(c) = &opts.comment {
        top.push((b"comment", Value::Bytes(c.as_bytes())));
    }
    if let Some(c) = &opts.created_by {
        top.push((b"created by", Value::Bytes(c.as_bytes())));
    }
    if let Some(d) = opts.creation_date {
        top.push((b"creation date", Value::Int(d)));
    }
    Ok(Value::Dict(top).to_bytes())
}

/// Hashes every piece, in parallel over the available cores; each worker takes whole pieces and
/// reads them with positioned reads. Returns the concatenated 20-byte hashes.
fn hash_pieces(
    files: &[InputFile],
    piece_length: u64,
    total: u64,
    progress: impl Fn(u64),
) -> Result<Vec<u8>, CreateError> {
    let count = usize::try_from(total.div_ceil(piece_length)).unwrap_or(usize::MAX);
    // Start offset of each file in the torrent's byte stream.
    let mut starts = Vec::with_capacity(files.len());
    let mut at = 0u64;
    for f in files {
        starts.push(at);
        at += f.length;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count.max(1));
    let next = AtomicUsize::new(0);
    let mut out = vec![0u8; count * 20];
    let (tx, rx) = mpsc::channel::<Result<(usize, [u8; 20], u64), CreateError>>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, starts) = (&next, &starts);
            s.spawn(move || {
                let mut buf = vec![0u8; piece_length as usize];
                let mut open: Option<(usize, File)> = None;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let r = hash_one(
                        files,
                        starts,
                        piece_length,
                        total,
                        index,
                        &mut buf,
                        &mut open,
                    );
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done = 0u64;
        let mut first_err = None;
        for r in rx {
            match r {
                Ok((index, hash, len)) => {
                    out[index * 20..index * 20 + 20].copy_from_slice(&hash);
                    done += len;
                    progress(done);
                }
                Err(e) => {
                    // Stop the other workers quickly.
                    next.store(count, Ordering::Relaxed);
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    })?;
    Ok(out)
}

fn hash_one(
    files: &[InputFile],
    starts: &[u64],
    piece_length: u64,
    total: u64,
    index: usize,
    buf: &mut [u8],
    open: &mut Option<(usize, File)>,
) -> Result<(usize, [u8; 20], u64), CreateError> {
    let begin = index as u64 * piece_length;
    let end = (begin + piece_length).min(total);
    let len = (end - begin) as usize;
    let buf = &mut buf[..len];
    // First file whose range ends after `begin`.
    let mut fi = starts.partition_point(|s| *s <= begin).saturating_sub(1);
    let mut filled = 0usize;
    while filled < len {
        let f = &files[fi];
        let offset = begin + filled as u64 - starts[fi];
        if offset >= f.length {
            fi += 1;
            continue;
        }
        let n = ((f.length - offset) as usize).min(len - filled);
        if open.as_ref().map(|(i, _)| *i) != Some(fi) {
            *open = Some((fi, File::open(&f.disk).map_err(io_err(&f.disk))?));
        }
        if let Some((_, file)) = open.as_ref() {
            file.read_exact_at(&mut buf[filled..filled + n], offset)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        CreateError::Changed(f.disk.clone())
                    } else {
                        io_err(&f.disk)(e)
                    }
                })?;
        }
        filled += n;
        fi += 1;
    }
    Ok((index, Sha1::digest(buf).into(), len as u64))
}
