//! Metainfo (`.torrent`) files: parsing (BEP 3, 12, 19, 27, and BEP 47 file attributes) with the
//! checks a hostile file needs, and creation from a file or folder ([`create()`]).
//!
//! The info hash is the SHA-1 of the info dictionary's bytes exactly as they appear in the file,
//! so torrents with unknown or oddly ordered keys keep their real hash.

mod create;
mod parse;
#[cfg(test)]
mod tests;

pub use create::{auto_piece_length, create, CreateError, CreateOptions};
pub use parse::MetainfoError;

use swarmd_proto::InfoHash;

/// BEP 47 attributes of a file (the `attr` string; letters we do not know are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FileAttr {
    /// `p`: a pad file. Its bytes are all zeros and it is never stored on disk; it only aligns
    /// the next file to a piece boundary.
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden (informational: on Unix a hidden file is one whose name starts with `.`).
    pub hidden: bool,
    /// `l`: a symbolic link (to [`FileEntry::symlink_path`]). It holds no bytes (the parser
    /// refuses a symlink with a non-zero length) and storage never creates it.
    pub symlink: bool,
}

impl FileAttr {
    /// Parses a BEP 47 `attr` string; unknown letters are ignored.
    pub fn from_bytes(attr: &[u8]) -> Self {
        let mut a = Self::default();
        for c in attr {
            match c {
                b'p' => a.pad = true,
                b'x' => a.executable = true,
                b'h' => a.hidden = true,
                b'l' => a.symlink = true,
                _ => {}
            }
        }
        a
    }

    /// Whether the file has no bytes of its own on disk: a pad file (virtual zeros) or a
    /// symbolic link (never created).
    pub fn is_virtual(&self) -> bool {
        self.pad || self.symlink
    }
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileEntry {
    /// Path components below the torrent's folder (for a single-file torrent: just the name).
    /// Each is non-empty, not `.` or `..`, and holds no `/`, `\` or NUL. Pad files may share a
    /// path (libtorrent names them `.pad/<length>`).
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 attributes (all unset when the torrent has no `attr`).
    pub attr: FileAttr,
    /// BEP 47 `symlink path` of a symbolic link (`attr` has `l`): path components relative to
    /// the torrent's folder, each checked like [`Self::path`]'s. `None` for other files.
    pub symlink_path: Option<Vec<String>>,
}

impl FileEntry {
    /// Whether this is a BEP 47 pad file (all zeros, never stored).
    pub fn is_pad(&self) -> bool {
        self.attr.pad
    }
}

/// A parsed, validated metainfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    pub(crate) name: String,
    pub(crate) info_hash: InfoHash,
    pub(crate) piece_length: u64,
    pub(crate) pieces: Vec<[u8; 20]>,
    pub(crate) files: Vec<FileEntry>,
    pub(crate) multi_file: bool,
    pub(crate) total_length: u64,
    pub(crate) trackers: Vec<Vec<String>>,
    pub(crate) private: bool,
    pub(crate) comment: Option<String>,
    pub(crate) created_by: Option<String>,
    pub(crate) creation_date: Option<i64>,
    pub(crate) source: Option<String>,
    pub(crate) url_list: Vec<String>,
}

impl Metainfo {
    /// Parses and validates a metainfo file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        parse::parse(bytes)
    }

    /// The suggested name: the file name (single file) or the folder name (multi-file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-1 of the raw info dictionary.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// SHA-1 of each piece, in order.
    pub fn pieces(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// The files, in the torrent's order.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Whether the torrent has a `files` list (content goes in a folder named [`Self::name`]).
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// Sum of the file lengths.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Tracker tiers (BEP 12): `announce-list` when present, else `announce` as one tier.
    pub fn trackers(&self) -> &[Vec<String>] {
        &self.trackers
    }

    /// BEP 27 private flag: peers only from the trackers, never from the DHT or PEX.
    pub fn private(&self) -> bool {
        self.private
    }

    /// The `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The `created by`, if any.
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// The `creation date` (Unix seconds), if any.
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }

    /// The info dictionary's `source`, if any (private trackers use it to change the hash).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// BEP 19 web seeds (`url-list`).
    pub fn url_list(&self) -> &[String] {
        &self.url_list
    }

    /// The BEP 9 magnet link: info hash, name and every tracker in tier order.
    pub fn magnet(&self) -> crate::magnet::Magnet {
        crate::magnet::Magnet {
            info_hash: self.info_hash,
            name: Some(self.name.clone()),
            trackers: self.trackers.iter().flatten().cloned().collect(),
        }
    }
}
