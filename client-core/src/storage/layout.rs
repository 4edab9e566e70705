//! The torrent's byte space and its files: piece boundaries, and which file spans any byte range
//! touches. The files are laid end to end in torrent order; pieces ignore file boundaries.
//!
//! BEP 47 pad files (and symbolic links, which hold no bytes) are *virtual*: they take their
//! place in the byte space like any file, but storage never creates them; their bytes are zeros.

use std::ops::Range;

use super::StorageError;
use crate::metainfo::{FileAttr, Metainfo};

/// Why a [`Layout`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A piece length of zero.
    #[error("piece length must not be zero")]
    ZeroPieceLength,
    /// The file lengths add up to more than `u64::MAX` bytes.
    #[error("total length overflows")]
    TooLarge,
    /// More pieces than a `u32` piece index can name.
    #[error("{0} pieces is more than a piece index can name")]
    TooManyPieces(u64),
}

/// One file of a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutFile {
    /// Path components below the storage root. From a [`Metainfo`]: `[name]` for a single-file
    /// torrent, `[name, dir.., file]` for a multi-file one.
    pub path: Vec<String>,
    /// Length in bytes (may be zero).
    pub length: u64,
    /// Torrent-global offset of the file's first byte.
    pub offset: u64,
    /// BEP 47 attributes: a pad file or symbolic link is [virtual](Self::is_virtual).
    pub attr: FileAttr,
}

impl LayoutFile {
    /// Whether the file is never stored: a pad file (its bytes are zeros) or a symbolic link
    /// (which holds no bytes, and which we never create: a torrent must not make us write
    /// outside the storage root).
    pub fn is_virtual(&self) -> bool {
        self.attr.is_virtual()
    }

    /// Torrent-global offset just past the file's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Maps a torrent's byte space onto its files and pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    files: Vec<LayoutFile>,
    piece_length: u64,
    total_length: u64,
    piece_count: u32,
    /// Whether any file is virtual (a pad file).
    has_virtual: bool,
}

/// A part of a byte range that lies in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    /// Index of the file in [`Layout::files`].
    pub file: usize,
    /// Offset of the span within that file.
    pub file_offset: u64,
    /// Length of the span (never zero).
    pub len: u64,
    /// Offset of the span from the start of the range (where it goes in the caller's buffer).
    pub pos: u64,
}

/// Iterator over the [`FileSpan`]s of a byte range, in order; see [`Layout::spans`].
#[derive(Debug, Clone)]
pub struct Spans<'a> {
    files: &'a [LayoutFile],
    next: usize,
    start: u64,
    at: u64,
    end: u64,
}

impl Iterator for Spans<'_> {
    type Item = FileSpan;

    fn next(&mut self) -> Option<FileSpan> {
        while self.at < self.end {
            let index = self.next;
            let f = self.files.get(index)?;
            self.next += 1;
            if f.end() <= self.at {
                // A zero-length file (or one wholly before the range): no bytes to map.
                continue;
            }
            let len = f.end().min(self.end) - self.at;
            let span = FileSpan {
                file: index,
                file_offset: self.at - f.offset,
                len,
                pos: self.at - self.start,
            };
            self.at += len;
            return Some(span);
        }
        None
    }
}

impl Layout {
    /// A layout of `files` (path components below the storage root, length), in torrent order,
    /// cut into pieces of `piece_length` bytes.
    pub fn new(
        piece_length: u64,
        files: impl IntoIterator<Item = (Vec<String>, u64)>,
    ) -> Result<Self, LayoutError> {
        Self::with_attrs(
            piece_length,
            files
                .into_iter()
                .map(|(path, length)| (path, length, FileAttr::default())),
        )
    }

    /// Like [`Self::new`], with each file's BEP 47 attributes (pad files are virtual zeros).
    pub fn with_attrs(
        piece_length: u64,
        files: impl IntoIterator<Item = (Vec<String>, u64, FileAttr)>,
    ) -> Result<Self, LayoutError> {
        if piece_length == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        let mut offset = 0u64;
        let files = files
            .into_iter()
            .map(|(path, length, attr)| {
                let f = LayoutFile {
                    path,
                    length,
                    offset,
                    attr,
                };
                offset = offset.checked_add(length).ok_or(LayoutError::TooLarge)?;
                Ok(f)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pieces = offset.div_ceil(piece_length);
        let piece_count = u32::try_from(pieces).map_err(|_| LayoutError::TooManyPieces(pieces))?;
        Ok(Self {
            has_virtual: files.iter().any(|f| f.is_virtual() && f.length > 0),
            files,
            piece_length,
            total_length: offset,
            piece_count,
        })
    }

    /// The layout of a torrent: a single-file torrent is the file `name`, a multi-file torrent
    /// the folder `name` with its files below.
    pub fn from_metainfo(meta: &Metainfo) -> Result<Self, LayoutError> {
        let files = meta.files().iter().map(|f| {
            let path = if meta.is_multi_file() {
                std::iter::once(meta.name().to_owned())
                    .chain(f.path.iter().cloned())
                    .collect()
            } else {
                vec![meta.name().to_owned()]
            };
            (path, f.length, f.attr)
        });
        Self::with_attrs(meta.piece_length(), files)
    }

    /// Whether some bytes lie in virtual files (pad files), which storage keeps as zeros.
    pub fn has_virtual_bytes(&self) -> bool {
        self.has_virtual
    }

    /// The torrent-global offset of the first non-zero byte of `data` (placed at torrent-global
    /// `offset`) that falls in a virtual file (a pad file, whose bytes BEP 47 says are zeros), or
    /// `None` when there is none. A range outside the torrent gives `None`.
    pub fn first_nonzero_virtual(&self, offset: u64, data: &[u8]) -> Option<u64> {
        if !self.has_virtual {
            return None;
        }
        let spans = self.spans(offset, data.len() as u64).ok()?;
        spans
            .filter(|s| self.files[s.file].is_virtual())
            .find_map(|s| {
                // Spans lie inside `data`, whose length is a usize.
                let bytes = &data[s.pos as usize..(s.pos + s.len) as usize];
                let i = bytes.iter().position(|b| *b != 0)?;
                Some(offset + s.pos + i as u64)
            })
    }

    /// The files, in torrent order.
    pub fn files(&self) -> &[LayoutFile] {
        &self.files
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Sum of the file lengths.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of pieces: `ceil(total / piece_length)`.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The torrent-global byte range of piece `piece` (empty past the last piece).
    pub fn piece_range(&self, piece: u32) -> Range<u64> {
        let start = u64::from(piece)
            .saturating_mul(self.piece_length)
            .min(self.total_length);
        start
            ..start
                .saturating_add(self.piece_length)
                .min(self.total_length)
    }

    /// Size of piece `piece`: the piece length, less for the last piece, 0 past the end.
    pub fn piece_size(&self, piece: u32) -> u64 {
        let r = self.piece_range(piece);
        r.end - r.start
    }

    /// The torrent-global byte range of file `file` (empty past the last file).
    pub fn file_range(&self, file: usize) -> Range<u64> {
        self.files
            .get(file)
            .map_or(self.total_length..self.total_length, |f| f.offset..f.end())
    }

    /// The pieces holding at least one byte of file `file` (empty for a zero-length file).
    pub fn file_pieces(&self, file: usize) -> Range<u32> {
        let r = self.file_range(file);
        if r.is_empty() {
            return 0..0;
        }
        // Both fit in u32: they are at most the piece count.
        let first = (r.start / self.piece_length) as u32;
        let end = r.end.div_ceil(self.piece_length) as u32;
        first..end
    }

    /// The file spans of `len` bytes at torrent-global `offset`, in order. Zero-length files are
    /// skipped; the spans' lengths add up to `len`.
    pub fn spans(&self, offset: u64, len: u64) -> Result<Spans<'_>, StorageError> {
        let out_of_range = || StorageError::OutOfRange {
            offset,
            len,
            total: self.total_length,
        };
        let end = offset.checked_add(len).ok_or_else(out_of_range)?;
        if end > self.total_length {
            return Err(out_of_range());
        }
        Ok(Spans {
            files: &self.files,
            next: self.files.partition_point(|f| f.end() <= offset),
            start: offset,
            at: offset,
            end,
        })
    }

    /// The file spans of piece `piece` (none past the last piece).
    pub fn piece_spans(&self, piece: u32) -> Spans<'_> {
        let r = self.piece_range(piece);
        Spans {
            files: &self.files,
            next: self.files.partition_point(|f| f.end() <= r.start),
            start: r.start,
            at: r.start,
            end: r.end,
        }
    }

    /// Checks that `piece` exists.
    pub(crate) fn check_piece(&self, piece: u32) -> Result<(), StorageError> {
        if piece < self.piece_count {
            Ok(())
        } else {
            Err(StorageError::NoSuchPiece {
                piece,
                count: self.piece_count,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(piece: u64, lens: &[u64]) -> Layout {
        Layout::new(
            piece,
            lens.iter()
                .enumerate()
                .map(|(i, l)| (vec![format!("f{i}")], *l)),
        )
        .unwrap()
    }

    fn spans(l: &Layout, offset: u64, len: u64) -> Vec<(usize, u64, u64, u64)> {
        l.spans(offset, len)
            .unwrap()
            .map(|s| (s.file, s.file_offset, s.len, s.pos))
            .collect()
    }

    #[test]
    fn piece_math_with_short_last_piece() {
        let l = layout(16, &[10, 30]);
        assert_eq!(l.total_length(), 40);
        assert_eq!(l.piece_count(), 3);
        assert_eq!(
            (0..4).map(|p| l.piece_size(p)).collect::<Vec<_>>(),
            [16, 16, 8, 0]
        );
        assert_eq!(l.piece_range(2), 32..40);
        assert!(l.check_piece(2).is_ok());
        assert!(l.check_piece(3).is_err());
        assert_eq!(l.file_pieces(0), 0..1);
        assert_eq!(l.file_pieces(1), 0..3);
    }

    #[test]
    fn exact_multiple_has_no_short_piece() {
        let l = layout(8, &[16]);
        assert_eq!(l.piece_count(), 2);
        assert_eq!(l.piece_size(1), 8);
    }

    #[test]
    fn piece_crossing_files_and_zero_length_files() {
        // Files: a=5, (empty), (empty), b=3, (empty), c=10; pieces of 6.
        let l = layout(6, &[5, 0, 0, 3, 0, 10]);
        assert_eq!(l.piece_count(), 3);
        let p0: Vec<_> = l
            .piece_spans(0)
            .map(|s| (s.file, s.file_offset, s.len))
            .collect();
        assert_eq!(p0, [(0, 0, 5), (3, 0, 1)]);
        let p1: Vec<_> = l
            .piece_spans(1)
            .map(|s| (s.file, s.file_offset, s.len))
            .collect();
        assert_eq!(p1, [(3, 1, 2), (5, 0, 4)]);
        assert_eq!(spans(&l, 4, 5), [(0, 4, 1, 0), (3, 0, 3, 1), (5, 0, 1, 4)]);
        // Starting exactly at a boundary followed by empty files.
        assert_eq!(spans(&l, 5, 1), [(3, 0, 1, 0)]);
        assert_eq!(l.file_pieces(1), 0..0);
        assert_eq!(l.file_pieces(5), 1..3);
    }

    #[test]
    fn out_of_range_and_empty_ranges() {
        let l = layout(4, &[3, 3]);
        assert!(spans(&l, 6, 0).is_empty());
        assert!(l.spans(5, 2).is_err());
        assert!(l.spans(u64::MAX, 2).is_err());
        assert_eq!(l.piece_spans(9).count(), 0);
        let huge = Layout::new(u64::MAX / 2, [(vec!["a".into()], 10)]).unwrap();
        assert_eq!(huge.piece_range(0), 0..10);
        assert_eq!(huge.piece_range(u32::MAX), 10..10);
    }

    #[test]
    fn pad_files_are_virtual_and_must_be_zero() {
        let pad = FileAttr {
            pad: true,
            ..FileAttr::default()
        };
        let link = FileAttr {
            symlink: true,
            ..FileAttr::default()
        };
        // a=5, pad=3, link=0, b=8; pieces of 4: piece 1 is a[4], pad[0..3].
        let l = Layout::with_attrs(
            4,
            [
                (vec!["a".into()], 5, FileAttr::default()),
                (vec![".pad".into(), "3".into()], 3, pad),
                (vec!["l".into()], 0, link),
                (vec!["b".into()], 8, FileAttr::default()),
            ],
        )
        .unwrap();
        assert!(l.has_virtual_bytes());
        let virt: Vec<bool> = l.files().iter().map(LayoutFile::is_virtual).collect();
        assert_eq!(virt, [false, true, true, false]);
        assert_eq!(
            l.first_nonzero_virtual(0, &[1, 1, 1, 1, 1, 0, 0, 0, 1]),
            None
        );
        assert_eq!(l.first_nonzero_virtual(4, &[1, 0, 9, 0, 1]), Some(6));
        assert_eq!(l.first_nonzero_virtual(7, &[7]), Some(7));
        assert_eq!(
            l.first_nonzero_virtual(15, &[7, 7]),
            None,
            "outside the torrent"
        );
        // A zero-length link alone holds no virtual bytes; `new` makes no file virtual.
        let only_link = Layout::with_attrs(4, [(vec!["l".into()], 0, link)]).unwrap();
        assert!(!only_link.has_virtual_bytes());
        assert!(!layout(4, &[3, 3]).has_virtual_bytes());
        assert_eq!(layout(4, &[3, 3]).first_nonzero_virtual(0, &[1; 6]), None);
    }

    #[test]
    fn bad_layouts() {
        assert_eq!(
            Layout::new(0, [(vec!["a".into()], 1)]),
            Err(LayoutError::ZeroPieceLength)
        );
        assert_eq!(
            Layout::new(1, [(vec!["a".into()], u64::MAX), (vec!["b".into()], 1)]),
            Err(LayoutError::TooLarge)
        );
        assert!(matches!(
            Layout::new(1, [(vec!["a".into()], 1 << 40)]),
            Err(LayoutError::TooManyPieces(_))
        ));
        let empty = Layout::new(16, []).unwrap();
        assert_eq!((empty.piece_count(), empty.total_length()), (0, 0));
    }
}
