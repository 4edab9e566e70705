//! Piece storage: where a torrent's bytes live, addressed by torrent-global offsets.
//!
//! - [`Layout`] maps the torrent's byte space onto its files: piece sizes, and for any range the
//!   [`FileSpan`]s it touches (pieces and blocks cross file boundaries, zero-length files too).
//! - [`Storage`] is the positional byte store every peer task shares (`&self`, `Send + Sync`):
//!   [`FileStorage`] keeps the bytes in the torrent's files under a root folder, with an LRU
//!   cache of open handles; [`MemoryStorage`] keeps them in one buffer.
//! - [`verify_piece`] checks a stored piece against its SHA-1; [`Verifier`] does that (and
//!   "hash, then write only if good") on a small pool of threads off the async runtime;
//!   [`recheck()`] finds which pieces are already on disk, on every core, when a torrent starts.
//!
//! BEP 47 pad files (file attribute `p`) are virtual: [`FileStorage`] never creates, opens or
//! preallocates them, reads of their bytes give zeros, and a write must carry zeros there (which
//! are then dropped): a non-zero byte is corrupt data, so [`Verifier::check_and_write`] treats the
//! piece as failing its hash check and writes nothing, and a bare [`Storage::write_at`] of such
//! bytes fails with [`StorageError::PadNotZero`] before writing anything. Symbolic links
//! (attribute `l`) hold no bytes (the parser refuses one with a length) and are never created:
//! a torrent cannot make us write outside the storage root, nor even create a link there.
//! [`MemoryStorage`] has no layout: it keeps pad bytes in its buffer like any others (zeros, as
//! the verifier lets only zeros through).

mod cache;
mod file;
mod layout;
mod memory;
mod recheck;
mod verify;

use std::fmt;
use std::path::PathBuf;

pub use cache::CacheStats;
pub use file::{FileStorage, Mode, StorageOptions, DEFAULT_OPEN_FILES};
pub use layout::{FileSpan, Layout, LayoutError, LayoutFile, Spans};
pub use memory::MemoryStorage;
pub use recheck::{recheck, RecheckProgress};
pub use verify::{hash_piece, verify_piece, Checked, Verifier, HASH_CHUNK};

/// A positional byte store for one torrent. Offsets are torrent-global (byte 0 is the first byte
/// of the first file); the backend maps them onto its files.
///
/// Methods take `&self` so every peer task can share one store behind an `Arc<dyn Storage>`.
/// They block: call them from a blocking context (a [`Verifier`] worker,
/// `tokio::task::spawn_blocking`), not straight from an async task.
pub trait Storage: Send + Sync {
    /// Fills `buf` with the bytes at `offset`.
    ///
    /// Bytes never written read as zeros where the backend stores them sparsely (a preallocated
    /// file, [`MemoryStorage`]); past the end of a file on disk, or in a file that does not exist,
    /// the read fails with [`StorageError::Missing`] or [`StorageError::Truncated`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError>;

    /// Writes `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError>;

    /// Flushes written data to stable storage.
    fn sync(&self) -> Result<(), StorageError>;

    /// How many leading bytes of file `file` (an index into [`Layout::files`]) are stored:
    /// `Some(0)` when the file does not exist, `Some(n)` when only its first `n` bytes do, and
    /// `None` when the backend cannot tell cheaply (then everything is assumed present and
    /// read to find out). [`recheck()`] uses it to skip pieces that cannot be complete.
    fn stored_len(&self, file: usize) -> Result<Option<u64>, StorageError> {
        let _ = file;
        Ok(None)
    }
}

/// The file operation that failed, for [`StorageError::Io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Creating a folder.
    CreateDir,
    /// Opening (or creating) a file.
    Open,
    /// Reading file metadata.
    Metadata,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// Setting a file's length (preallocation).
    SetLen,
    /// Flushing to stable storage.
    Sync,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateDir => "create folder",
            Self::Open => "open",
            Self::Metadata => "stat",
            Self::Read => "read",
            Self::Write => "write",
            Self::SetLen => "set length",
            Self::Sync => "sync",
        })
    }
}

/// Why a storage operation failed. Every file error names the file and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The range is not inside the torrent.
    #[error("bytes {offset}..+{len} are outside the torrent's {total} bytes")]
    OutOfRange {
        /// First byte asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// The torrent's length.
        total: u64,
    },
    /// A file to read from does not exist.
    #[error("{path}: read: file does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file ends before the bytes asked for.
    #[error("{path}: read: file ends at byte {len}, wanted bytes up to {wanted}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length on disk.
        len: u64,
        /// The end of the bytes asked for.
        wanted: u64,
    },
    /// A system call on a file failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        op: Op,
        /// The error.
        source: std::io::Error,
    },
    /// A path that would leave the storage root (`..`, an absolute path, a separator or NUL
    /// inside a component).
    #[error("{path}: refused: path escapes the storage root")]
    PathEscape {
        /// The offending path, as far as it was built.
        path: PathBuf,
    },
    /// A write of non-zero bytes into a BEP 47 pad file, whose bytes are zeros by definition:
    /// corrupt data. Nothing of the write was stored.
    #[error("byte {offset} lies in a pad file but is not zero")]
    PadNotZero {
        /// Torrent-global offset of the first offending byte.
        offset: u64,
    },
    /// A write to storage opened in [`Mode::ReadOnly`].
    #[error("{path}: write: storage is read-only (seeding)")]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },
    /// The number of piece hashes does not match the layout.
    #[error("{got} piece hashes for a layout of {expected} pieces")]
    HashCount {
        /// Pieces in the layout.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// A piece index past the end.
    #[error("piece {piece} does not exist (the torrent has {count})")]
    NoSuchPiece {
        /// The index asked for.
        piece: u32,
        /// Pieces in the torrent.
        count: u32,
    },
    /// The [`Verifier`]'s worker threads could not be started.
    #[error("cannot start verifier thread: {0}")]
    Spawn(std::io::Error),
    /// The [`Verifier`]'s workers are gone (one panicked).
    #[error("verifier workers stopped")]
    VerifierGone,
}

impl StorageError {
    /// Whether the error only means "these bytes are not there" (a missing or short file), which
    /// [`recheck()`] counts as an absent piece rather than a failure.
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::Truncated { .. })
    }
}

/// Packs per-piece flags into a wire bitfield (BEP 3): piece 0 is the high bit of byte 0, and
/// spare bits at the end are zero.
pub fn bitfield(have: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; have.len().div_ceil(8)];
    for (i, _) in have.iter().enumerate().filter(|(_, h)| **h) {
        out[i / 8] |= 0x80 >> (i % 8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_packs_high_bit_first() {
        assert_eq!(bitfield(&[]), Vec::<u8>::new());
        assert_eq!(bitfield(&[true]), vec![0x80]);
        let mut v = vec![false; 10];
        v[1] = true;
        v[9] = true;
        assert_eq!(bitfield(&v), vec![0x40, 0x40]);
    }

    #[test]
    fn errors_name_file_and_operation() {
        let e = StorageError::Io {
            path: "/x/a.bin".into(),
            op: Op::Write,
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(e.to_string(), "/x/a.bin: write: disk full");
        assert!(!e.is_absent());
        assert!(StorageError::Missing { path: "a".into() }.is_absent());
    }
}
