//! Uploading to one peer: the requests it queued at us, read from storage off the runtime in
//! batches (one `spawn_blocking` per batch, never a blocking read on an async worker), straight
//! into a buffer of encoded `piece` messages that the connection then writes, or swaps in as
//! its output buffer when that is empty (no copy).

use std::collections::VecDeque;
use std::sync::Arc;

use swarmd_proto::wire::encode_piece_header;
use tokio::task::JoinHandle;

use crate::picker::BlockRequest;
use crate::storage::{Storage, StorageError};

/// Bytes of blocks read per batch.
const BATCH_BYTES: u32 = 512 << 10;
/// No new batch starts while this much output is waiting to be written.
pub(super) const HIGH_WATER: usize = 1 << 20;
/// Spare batch buffers kept per connection.
const POOL: usize = 2;

/// A batch read: encoded `piece` messages, and what they hold.
pub(super) struct Job {
    pub(super) buf: Vec<u8>,
    batch: Vec<BlockRequest>,
    /// Payload bytes read.
    pub(super) bytes: u64,
    /// The first read that failed, if one did (the batch stops there).
    pub(super) result: Result<(), StorageError>,
}

/// The upload queue of one connection.
#[derive(Default)]
pub(super) struct Serve {
    queue: VecDeque<BlockRequest>,
    pool: Vec<Vec<u8>>,
    batch: Vec<BlockRequest>,
}

impl Serve {
    /// Requests waiting.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a request (the caller checked it).
    pub(super) fn push(&mut self, r: BlockRequest) {
        self.queue.push_back(r);
    }

    /// Withdraws a queued request; false if it is not queued (already read, or never asked).
    pub(super) fn cancel(&mut self, r: BlockRequest) -> bool {
        match self.queue.iter().position(|q| *q == r) {
            Some(i) => {
                self.queue.remove(i);
                true
            }
            None => false,
        }
    }

    /// We choke the peer: drops every queued request except those for `allowed` pieces
    /// (allowed fast), appending the dropped ones to `dropped` (to reject under BEP 6).
    pub(super) fn choke(&mut self, allowed: &[u32], dropped: &mut Vec<BlockRequest>) {
        self.queue.retain(|r| {
            let keep = allowed.contains(&r.piece);
            if !keep {
                dropped.push(*r);
            }
            keep
        });
    }

    /// Starts reading the next batch, unless the queue is empty or `pending_out` bytes are
    /// still waiting to be written.
    pub(super) fn start(
        &mut self,
        storage: &Arc<dyn Storage>,
        piece_len: u64,
        pending_out: usize,
    ) -> Option<JoinHandle<Job>> {
        if self.queue.is_empty() || pending_out >= HIGH_WATER {
            return None;
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let mut total = 0u32;
        while let Some(r) = self.queue.front().copied() {
            if total > 0 && total + r.length > BATCH_BYTES {
                break;
            }
            total += r.length;
            batch.push(r);
            self.queue.pop_front();
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        let storage = Arc::clone(storage);
        Some(tokio::task::spawn_blocking(move || {
            let mut bytes = 0;
            let mut result = Ok(());
            for r in &batch {
                let at = buf.len();
                encode_piece_header(&mut buf, r.piece, r.begin, r.length as usize);
                let start = buf.len();
                buf.resize(start + r.length as usize, 0);
                let offset = u64::from(r.piece) * piece_len + u64::from(r.begin);
                if let Err(e) = storage.read_at(offset, &mut buf[start..]) {
                    buf.truncate(at);
                    result = Err(e);
                    break;
                }
                bytes += u64::from(r.length);
            }
            Job {
                buf,
                batch,
                bytes,
                result,
            }
        }))
    }

    /// Takes back a finished job's bookkeeping; returns its buffer to write.
    pub(super) fn finish(&mut self, job: Job) -> (Vec<u8>, u64, Result<(), StorageError>) {
        self.batch = job.batch;
        (job.buf, job.bytes, job.result)
    }

    /// Keeps a written buffer for a later batch.
    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use swarmd_proto::wire::{decode, Limits, Message};

    fn req(piece: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            piece,
            begin,
            length,
        }
    }

    #[tokio::test]
    async fn batches_read_into_encoded_messages() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::from_vec(data.clone()));
        let mut s = Serve::default();
        assert!(s.start(&storage, 32768, 0).is_none());
        s.push(req(1, 16384, 16384));
        s.push(req(3, 0, 1696));
        s.push(req(0, 0, 16384));
        assert!(s.cancel(req(0, 0, 16384)));
        assert!(!s.cancel(req(0, 0, 16384)));
        assert!(s.start(&storage, 32768, HIGH_WATER).is_none());
        let job = s.start(&storage, 32768, 0).unwrap().await.unwrap();
        let (buf, bytes, result) = s.finish(job);
        assert!(result.is_ok());
        assert_eq!(bytes, 16384 + 1696);
        let limits = Limits::default();
        let (m, used) = decode(&buf, &limits).unwrap().unwrap();
        assert_eq!(
            m,
            Message::Piece {
                index: 1,
                begin: 16384,
                block: &data[49152..65536]
            }
        );
        let (m, _) = decode(&buf[used..], &limits).unwrap().unwrap();
        assert_eq!(
            m,
            Message::Piece {
                index: 3,
                begin: 0,
                block: &data[98304..]
            }
        );
        s.recycle(buf);
        // A read past the end fails and stops the batch.
        s.push(req(4, 0, 16384));
        let job = s.start(&storage, 32768, 0).unwrap().await.unwrap();
        let (buf, bytes, result) = s.finish(job);
        assert!(result.is_err() && buf.is_empty() && bytes == 0);
    }

    #[test]
    fn choke_keeps_allowed_fast_requests() {
        let mut s = Serve::default();
        for p in 0..4 {
            s.push(req(p, 0, 16384));
        }
        let mut dropped = Vec::new();
        s.choke(&[2], &mut dropped);
        assert_eq!(s.len(), 1);
        assert_eq!(
            dropped.iter().map(|r| r.piece).collect::<Vec<_>>(),
            [0, 1, 3]
        );
    }
}
