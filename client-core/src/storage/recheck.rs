//! Resume: which pieces are already stored correctly, hashed on every core when a torrent starts.
//!
//! Missing and short files are not errors: their pieces are absent. Before reading anything,
//! [`Storage::stored_len`] tells which files are missing or short, and every piece touching bytes
//! that are not there is marked absent without a read (a fresh download checks in no time).
//! The remaining pieces are handed out one at a time from a shared counter, so threads stay busy
//! whatever the pieces cost, and neighbouring pieces are read at about the same time (the kernel
//! sees one sequential stream per file and reads ahead).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::{hash_piece, Layout, Storage, StorageError};

/// How far a [`recheck()`] got; passed to its progress callback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecheckProgress {
    /// Pieces decided so far (hashed, or skipped because their bytes are missing).
    pub checked: u32,
    /// Pieces in the torrent.
    pub total: u32,
    /// Pieces found good so far.
    pub have: u32,
    /// Bytes read and hashed so far.
    pub bytes_hashed: u64,
}

/// Which pieces of `layout` are stored correctly: `result[i]` is whether piece `i` hashes to
/// `hashes[i]`. Hashes on `threads` threads (at least 1; pass the core count). `progress` is
/// called on the calling thread: once after the missing-file scan, then after every piece hashed.
///
/// Missing or short files make pieces absent, not errors; any other I/O error stops the recheck.
pub fn recheck(
    storage: &dyn Storage,
    layout: &Layout,
    hashes: &[[u8; 20]],
    threads: usize,
    mut progress: impl FnMut(RecheckProgress),
) -> Result<Vec<bool>, StorageError> {
    let total = layout.piece_count();
    if hashes.len() != total as usize {
        return Err(StorageError::HashCount {
            expected: total as usize,
            got: hashes.len(),
        });
    }
    let todo = present_pieces(storage, layout)?;
    let mut have = vec![false; total as usize];
    let mut state = RecheckProgress {
        checked: total - todo.len() as u32,
        total,
        have: 0,
        bytes_hashed: 0,
    };
    progress(state);
    if todo.is_empty() {
        return Ok(have);
    }
    let threads = threads.clamp(1, todo.len());
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Result<(u32, bool), StorageError>>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, next, todo) = (tx.clone(), &next, &todo);
            s.spawn(move || {
                let mut buf = Vec::new();
                while let Some(&piece) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = match hash_piece(storage, layout, piece, &mut buf) {
                        Ok(h) => Ok((piece, h == hashes[piece as usize])),
                        // Deleted or truncated while we read: absent.
                        Err(e) if e.is_absent() => Ok((piece, false)),
                        Err(e) => Err(e),
                    };
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut first_err = None;
        for r in rx {
            match r {
                Ok((piece, ok)) => {
                    have[piece as usize] = ok;
                    state.checked += 1;
                    state.have += u32::from(ok);
                    state.bytes_hashed += layout.piece_size(piece);
                    progress(state);
                }
                Err(e) => {
                    // Stop the other workers at their next piece.
                    next.store(todo.len(), Ordering::Relaxed);
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    })?;
    Ok(have)
}

/// The pieces whose every byte is stored, as far as [`Storage::stored_len`] can tell.
fn present_pieces(storage: &dyn Storage, layout: &Layout) -> Result<Vec<u32>, StorageError> {
    let stored = (0..layout.files().len())
        .map(|i| storage.stored_len(i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut absent = vec![false; layout.piece_count() as usize];
    for (i, stored) in stored.iter().enumerate() {
        let Some(stored) = *stored else { continue };
        let f = &layout.files()[i];
        if stored >= f.length {
            continue;
        }
        // Pieces holding a byte at or past `stored` in this file (all of them if it is missing).
        let first_missing = (f.offset + stored) / layout.piece_length();
        for piece in layout.file_pieces(i) {
            if u64::from(piece) >= first_missing {
                absent[piece as usize] = true;
            }
        }
    }
    Ok((0..layout.piece_count())
        .filter(|p| !absent[*p as usize])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use sha1::{Digest, Sha1};

    /// Memory storage that claims file 1 holds only `n` bytes, to drive the fast path.
    struct Short(MemoryStorage, u64);

    impl Storage for Short {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
            self.0.read_at(offset, buf)
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
            self.0.write_at(offset, data)
        }
        fn sync(&self) -> Result<(), StorageError> {
            Ok(())
        }
        fn stored_len(&self, file: usize) -> Result<Option<u64>, StorageError> {
            Ok((file == 1).then_some(self.1))
        }
    }

    fn hashes(data: &[u8], piece: usize) -> Vec<[u8; 20]> {
        data.chunks(piece).map(|c| Sha1::digest(c).into()).collect()
    }

    #[test]
    fn finds_good_pieces_and_reports_progress() {
        let data: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
        let layout = Layout::new(16, [(vec!["a".into()], 30), (vec!["b".into()], 70)]).unwrap();
        let mut h = hashes(&data, 16);
        h[3] = [0; 20];
        let s = MemoryStorage::from_vec(data);
        let mut calls = Vec::new();
        let have = recheck(&s, &layout, &h, 3, |p| calls.push(p)).unwrap();
        assert_eq!(have, [true, true, true, false, true, true, true]);
        assert_eq!(calls.len(), 8);
        let last = calls.last().unwrap();
        assert_eq!(
            (last.checked, last.total, last.have, last.bytes_hashed),
            (7, 7, 6, 100)
        );
        assert!(matches!(
            recheck(&s, &layout, &h[1..], 1, |_| {}),
            Err(StorageError::HashCount {
                expected: 7,
                got: 6
            })
        ));
    }

    #[test]
    fn short_file_skips_pieces_without_reading() {
        let data: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
        let layout = Layout::new(16, [(vec!["a".into()], 30), (vec!["b".into()], 70)]).unwrap();
        let h = hashes(&data, 16);
        // File b (bytes 30..100) holds 20 bytes: bytes up to 50 are there, piece 3 (48..64) not.
        let s = Short(MemoryStorage::from_vec(data), 20);
        let mut first = None;
        let have = recheck(&s, &layout, &h, 2, |p| {
            first.get_or_insert(p);
        })
        .unwrap();
        assert_eq!(have, [true, true, true, false, false, false, false]);
        assert_eq!(first.unwrap().checked, 4);
    }
}
