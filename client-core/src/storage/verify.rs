//! Piece verification: SHA-1 of a stored piece read in chunks ([`verify_piece`]), and a
//! [`Verifier`] that hashes off the async runtime.
//!
//! Why a dedicated pool and not `tokio::task::spawn_blocking`: hashing is CPU-bound and each job
//! may carry a whole piece (up to 16 MiB). `spawn_blocking` would start up to 512 threads with an
//! unbounded queue, so a burst of finished pieces would oversubscribe the cores and hold every
//! piece buffer in memory at once. The [`Verifier`] runs a fixed number of threads (by default
//! one per core) fed by a bounded queue: callers wait (asynchronously) for a free slot, so memory
//! stays at `queue + threads` pieces and the runtime's own threads are never starved.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use sha1::{Digest, Sha1};
use tokio::sync::{mpsc, oneshot};

use super::{Layout, Storage, StorageError};

/// Bytes read per step when hashing a stored piece: small enough to stay in the CPU cache
/// between the copy and the hash, large enough that system calls cost nothing.
pub const HASH_CHUNK: usize = 256 << 10;

/// SHA-1 of piece `piece` as stored, read `HASH_CHUNK` bytes at a time into `buf` (reused
/// across calls; it grows to at most [`HASH_CHUNK`]).
pub fn hash_piece(
    storage: &dyn Storage,
    layout: &Layout,
    piece: u32,
    buf: &mut Vec<u8>,
) -> Result<[u8; 20], StorageError> {
    layout.check_piece(piece)?;
    let range = layout.piece_range(piece);
    let chunk = HASH_CHUNK.min(usize::try_from(range.end - range.start).unwrap_or(HASH_CHUNK));
    if buf.len() < chunk {
        buf.resize(chunk, 0);
    }
    let mut hasher = Sha1::new();
    let mut at = range.start;
    while at < range.end {
        let n = chunk.min(usize::try_from(range.end - at).unwrap_or(chunk));
        storage.read_at(at, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize().into())
}

thread_local! {
    static CHUNK_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether stored piece `piece` hashes to `expected`. Reads in chunks into a per-thread buffer
/// that is reused from call to call. A piece whose bytes are missing (a missing or short file)
/// is an error here ([`StorageError::is_absent`]); [`recheck()`](super::recheck()) counts it
/// as absent.
pub fn verify_piece(
    storage: &dyn Storage,
    layout: &Layout,
    piece: u32,
    expected: &[u8; 20],
) -> Result<bool, StorageError> {
    CHUNK_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        Ok(hash_piece(storage, layout, piece, &mut buf)? == *expected)
    })
}

/// What [`Verifier::check_and_write`] found, with the piece buffer handed back for reuse.
#[derive(Debug)]
pub struct Checked {
    /// The data hashed to the expected value (and was written).
    pub ok: bool,
    /// The buffer that was passed in.
    pub data: Vec<u8>,
}

enum Job {
    Stored {
        piece: u32,
        expected: [u8; 20],
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
    Buffer {
        piece: u32,
        data: Vec<u8>,
        expected: [u8; 20],
        reply: oneshot::Sender<Result<Checked, StorageError>>,
    },
}

/// Hashes pieces on its own threads, so async tasks can `await` a verification without blocking
/// the runtime. Dropping it lets the workers finish queued jobs and exit.
///
/// A future dropped before it completes does not cancel its job: the hash (and for
/// [`Self::check_and_write`], the write) still happens, the answer is discarded.
#[derive(Debug)]
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl Verifier {
    /// A verifier with `threads` workers (at least 1) and room for `queue` waiting jobs (at
    /// least 1), over `storage` laid out as `layout`.
    pub fn new(
        storage: Arc<dyn Storage>,
        layout: Arc<Layout>,
        threads: usize,
        queue: usize,
    ) -> Result<Self, StorageError> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let (rx, storage, layout) =
                (Arc::clone(&rx), Arc::clone(&storage), Arc::clone(&layout));
            std::thread::Builder::new()
                .name(format!("swarmd-verify-{i}"))
                .spawn(move || worker(&rx, &*storage, &layout))
                .map_err(StorageError::Spawn)?;
        }
        Ok(Self { jobs: tx, threads })
    }

    /// A verifier with one worker per core and a queue twice that long.
    pub fn with_defaults(
        storage: Arc<dyn Storage>,
        layout: Arc<Layout>,
    ) -> Result<Self, StorageError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(storage, layout, threads, 2 * threads)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether stored piece `piece` hashes to `expected` (see [`verify_piece`]).
    pub async fn verify(&self, piece: u32, expected: [u8; 20]) -> Result<bool, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Stored {
            piece,
            expected,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::VerifierGone)?
    }

    /// Hashes `data`, the whole of piece `piece` as received, and writes it to storage only if
    /// it matches `expected` and its bytes in pad files (BEP 47) are zeros: corrupt data never
    /// reaches the disk. The buffer comes back in the
    /// answer for reuse.
    pub async fn check_and_write(
        &self,
        piece: u32,
        data: Vec<u8>,
        expected: [u8; 20],
    ) -> Result<Checked, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Buffer {
            piece,
            data,
            expected,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::VerifierGone)?
    }

    async fn submit(&self, job: Job) -> Result<(), StorageError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| StorageError::VerifierGone)
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, storage: &dyn Storage, layout: &Layout) {
    let mut buf = Vec::new();
    loop {
        // One idle worker waits on the queue, the others on the lock.
        let job = jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        match job {
            None => return,
            Some(Job::Stored {
                piece,
                expected,
                reply,
            }) => {
                let r = hash_piece(storage, layout, piece, &mut buf).map(|h| h == expected);
                let _ = reply.send(r);
            }
            Some(Job::Buffer {
                piece,
                data,
                expected,
                reply,
            }) => {
                let _ = reply.send(check_and_write(storage, layout, piece, data, &expected));
            }
        }
    }
}

fn check_and_write(
    storage: &dyn Storage,
    layout: &Layout,
    piece: u32,
    data: Vec<u8>,
    expected: &[u8; 20],
) -> Result<Checked, StorageError> {
    layout.check_piece(piece)?;
    let start = layout.piece_range(piece).start;
    // Non-zero bytes in a pad file are corrupt whatever the hash says (a torrent hashed over
    // them is broken): the piece fails like a bad hash and nothing reaches the disk.
    let ok = data.len() as u64 == layout.piece_size(piece)
        && <[u8; 20]>::from(Sha1::digest(&data)) == *expected
        && layout.first_nonzero_virtual(start, &data).is_none();
    if ok {
        storage.write_at(start, &data)?;
    }
    Ok(Checked { ok, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn hashes_across_chunks_and_files() {
        let len = 2 * HASH_CHUNK + 123;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let layout = Layout::new(
            len as u64,
            [
                (vec!["a".into()], 1000),
                (vec!["b".into()], 0),
                (vec!["c".into()], len as u64 - 1000),
            ],
        )
        .unwrap();
        let s = MemoryStorage::from_vec(data.clone());
        let want: [u8; 20] = Sha1::digest(&data).into();
        assert!(verify_piece(&s, &layout, 0, &want).unwrap());
        assert!(!verify_piece(&s, &layout, 0, &[0; 20]).unwrap());
        assert!(matches!(
            verify_piece(&s, &layout, 1, &want),
            Err(StorageError::NoSuchPiece { piece: 1, count: 1 })
        ));
        let mut buf = Vec::new();
        assert_eq!(hash_piece(&s, &layout, 0, &mut buf).unwrap(), want);
        assert_eq!(buf.len(), HASH_CHUNK);
    }

    #[test]
    fn check_and_write_refuses_bad_data() {
        let layout = Layout::new(4, [(vec!["a".into()], 6)]).unwrap();
        let s = MemoryStorage::new(6);
        let good: [u8; 20] = Sha1::digest(b"wxyz").into();
        let c = check_and_write(&s, &layout, 0, b"wxyq".to_vec(), &good).unwrap();
        assert!(!c.ok);
        assert_eq!(s.to_vec(), [0; 6]);
        // Right hash, wrong length for the piece.
        let short: [u8; 20] = Sha1::digest(b"wx").into();
        assert!(
            !check_and_write(&s, &layout, 0, b"wx".to_vec(), &short)
                .unwrap()
                .ok
        );
        let c = check_and_write(&s, &layout, 0, b"wxyz".to_vec(), &good).unwrap();
        assert!(c.ok);
        assert_eq!(c.data, b"wxyz");
        assert_eq!(s.to_vec(), b"wxyz\0\0");
    }
}
