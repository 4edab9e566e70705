//! The torrent's piece data once the metadata is known ([`Data`]): the picker, what we hold,
//! the buffers of pieces in progress, and what happens to a block and then to a finished piece.
//!
//! Blocks are copied into a per-piece buffer (buffers are reused from piece to piece). A full
//! piece goes to the [`Verifier`], which writes it only if its SHA-1 matches: corrupt data
//! never reaches storage. A piece that fails is downloaded again; who sent it is found out
//! like this:
//! - if one peer sent every block, that peer gets a strike;
//! - otherwise the SHA-1 of each block is kept with its sender, and once the piece passes, each
//!   peer whose block differs from the good one gets a strike ("smart ban").
//!
//! A peer with [`ConnectionLimits::ban_after_failures`](super::ConnectionLimits) strikes is
//! banned and disconnected.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use sha1::{Digest, Sha1};
use tokio::time::Instant;

use super::metadata::Meta;
use super::shared::{Cmd, PeerKey, Shared, State};
use super::stats::TorrentState;
use crate::picker::{BlockRequest, Picker, PieceSet, Received, BLOCK_LEN};
use crate::storage::{Storage, Verifier};

/// A piece being received: its bytes, and who sent each block (by ban address).
#[derive(Debug)]
pub(crate) struct PieceBuf {
    data: Vec<u8>,
    senders: Vec<Option<SocketAddr>>,
}

/// A block's SHA-1 from a piece that failed, with its sender.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    sender: SocketAddr,
    block: usize,
    hash: [u8; 20],
}

/// What the torrent holds and is fetching.
pub(crate) struct Data {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) meta: Arc<Meta>,
    pub(crate) picker: Picker<PeerKey>,
    /// Verified pieces, as a wire bitfield.
    pub(crate) have: Vec<u8>,
    pub(crate) have_bytes: u64,
    /// The last piece verified during this session (so `completed` is announced).
    pub(crate) completed_here: bool,
    bufs: HashMap<u32, PieceBuf>,
    spare: Vec<Vec<u8>>,
    suspects: HashMap<u32, Vec<Suspect>>,
}

impl Data {
    /// The data of a torrent with the pieces flagged in `have` already stored and verified.
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        verifier: Arc<Verifier>,
        meta: Arc<Meta>,
        have: &[bool],
    ) -> Self {
        let layout = &meta.layout;
        let mut picker = Picker::new(
            layout.piece_count(),
            layout.piece_length(),
            layout.total_length(),
        );
        let mut have_bytes = 0;
        for (p, _) in (0..).zip(have).filter(|(_, h)| **h) {
            picker.mark_have(p);
            have_bytes += layout.piece_size(p);
        }
        Self {
            storage,
            verifier,
            have: crate::storage::bitfield(have),
            have_bytes,
            completed_here: false,
            meta,
            picker,
            bufs: HashMap::new(),
            spare: Vec::new(),
            suspects: HashMap::new(),
        }
    }

    /// How many pieces of `pieces` we lack.
    pub(crate) fn wanted_in(&self, pieces: &(impl PieceSet + ?Sized)) -> u32 {
        (0..self.picker.piece_count())
            .filter(|p| pieces.has_piece(*p) && !self.picker.have(*p))
            .count() as u32
    }
}

/// `key` sent a block. Stores it if we need it; returns the piece if that completed it (the
/// caller hands it to [`verify`]).
pub(crate) fn on_block(
    st: &mut State,
    key: PeerKey,
    block: BlockRequest,
    bytes: &[u8],
    now: Instant,
) -> Option<(u32, PieceBuf)> {
    let len = u64::from(block.length);
    let State {
        data,
        peers,
        totals,
        ..
    } = st;
    totals.downloaded += len;
    let entry = peers.get_mut(&key)?;
    entry.downloaded += len;
    entry.last_block = now;
    let sender = entry.ban_key;
    let Some(d) = data else {
        totals.wasted += len;
        return None;
    };
    let (piece_done, cancel) = match d.picker.block_received(key, block) {
        Received::New { piece_done, cancel } => (piece_done, cancel),
        Received::Duplicate | Received::Unrequested => {
            totals.wasted += len;
            return None;
        }
    };
    let piece = block.piece;
    let size = d.picker.piece_size(piece) as usize;
    let blocks = d.picker.blocks_in(piece) as usize;
    let spare = &mut d.spare;
    let buf = d.bufs.entry(piece).or_insert_with(|| {
        let mut data = spare.pop().unwrap_or_default();
        data.resize(size, 0);
        PieceBuf {
            data,
            senders: vec![None; blocks],
        }
    });
    // The picker accepted it, so it is exactly one block of this piece.
    let at = block.begin as usize;
    buf.data[at..at + bytes.len()].copy_from_slice(bytes);
    buf.senders[(block.begin / BLOCK_LEN) as usize] = Some(sender);
    for p in &cancel {
        if let Some(e) = peers.get(p) {
            e.send(Cmd::Cancel(block));
        }
    }
    if piece_done {
        return d.bufs.remove(&piece).map(|b| (piece, b));
    }
    None
}

/// Hashes a finished piece on the verifier's threads, writes it if good, then records the
/// outcome.
pub(crate) async fn verify(shared: Arc<Shared>, piece: u32, buf: PieceBuf) {
    let (verifier, expected, suspected) = {
        let st = shared.lock();
        let Some(d) = &st.data else { return };
        (
            Arc::clone(&d.verifier),
            d.meta.metainfo.pieces()[piece as usize],
            d.suspects.contains_key(&piece),
        )
    };
    let PieceBuf { data, senders } = buf;
    let checked = match verifier.check_and_write(piece, data, expected).await {
        Ok(c) => c,
        Err(e) => {
            let mut st = shared.lock();
            let msg = format!("storage: {e}");
            shared.set_state(&mut st, TorrentState::Failed(msg));
            drop(st);
            shared.shut_down();
            return;
        }
    };
    let (ok, data) = (checked.ok, checked.data);
    // Block hashes are needed only to find who sent what (rare): off the runtime.
    let (data, hashes) = if !ok || suspected {
        let joined = tokio::task::spawn_blocking(move || {
            let h: Vec<[u8; 20]> = data
                .chunks(BLOCK_LEN as usize)
                .map(|b| Sha1::digest(b).into())
                .collect();
            (data, h)
        })
        .await;
        match joined {
            Ok((data, h)) => (data, Some(h)),
            Err(_) => return,
        }
    } else {
        (data, None)
    };
    finish(&shared, piece, ok, data, &senders, hashes.as_deref());
}

/// Records a verified (or failed) piece: picker, bitfield, `have` to every peer, strikes.
fn finish(
    shared: &Shared,
    piece: u32,
    ok: bool,
    data: Vec<u8>,
    senders: &[Option<SocketAddr>],
    hashes: Option<&[[u8; 20]]>,
) {
    let mut st = shared.lock();
    let st = &mut *st;
    let Some(d) = &mut st.data else { return };
    let size = d.picker.piece_size(piece);
    if !d.picker.piece_verified(piece, ok) {
        return;
    }
    d.spare.push(data);
    let mut culprits: Vec<SocketAddr> = Vec::new();
    if ok {
        d.have[(piece / 8) as usize] |= 0x80 >> (piece % 8);
        d.have_bytes += u64::from(size);
        if let (Some(found), Some(good)) = (d.suspects.remove(&piece), hashes) {
            culprits = blame_passed(&found, good);
        }
        for e in st.peers.values_mut() {
            if e.pieces.has_piece(piece) {
                e.wanted = e.wanted.saturating_sub(1);
            }
            e.send(Cmd::Have(piece));
        }
    } else {
        st.totals.hash_failures += 1;
        st.totals.wasted += u64::from(size);
        let mut found = d.suspects.remove(&piece).unwrap_or_default();
        culprits.extend(blame_failed(senders, hashes, &mut found));
        if !found.is_empty() {
            d.suspects.insert(piece, found);
        }
    }
    let complete = ok && d.picker.is_complete();
    if complete {
        d.completed_here = true;
        let storage = Arc::clone(&d.storage);
        // Flush what was written; the result only matters at stop, which syncs again.
        tokio::task::spawn_blocking(move || storage.sync());
    }
    let ban_after = shared.config.limits.ban_after_failures;
    for c in culprits {
        if st.swarm.strike(c, ban_after) {
            ban(st, c);
        }
    }
    if complete {
        shared.set_state(st, TorrentState::Seeding);
    }
    if !ok {
        st.refill_all();
    }
}

/// A piece failed: the one peer that sent all of it is to blame. With several senders nobody
/// is yet: each block's hash and sender are added to `found`, for [`blame_passed`].
fn blame_failed(
    senders: &[Option<SocketAddr>],
    hashes: Option<&[[u8; 20]]>,
    found: &mut Vec<Suspect>,
) -> Option<SocketAddr> {
    let mut who: Vec<SocketAddr> = senders.iter().flatten().copied().collect();
    who.sort_unstable();
    who.dedup();
    if let [only] = who[..] {
        return Some(only);
    }
    let hashes = hashes?;
    for (block, (sender, hash)) in senders.iter().zip(hashes).enumerate() {
        if let Some(sender) = sender {
            found.push(Suspect {
                sender: *sender,
                block,
                hash: *hash,
            });
        }
    }
    None
}

/// A piece that failed before passed: whoever sent a block that differs from the good one.
fn blame_passed(found: &[Suspect], good: &[[u8; 20]]) -> Vec<SocketAddr> {
    let mut culprits = Vec::new();
    for s in found {
        if good.get(s.block) != Some(&s.hash) && !culprits.contains(&s.sender) {
            culprits.push(s.sender);
        }
    }
    culprits
}

/// Bans the peer listening at `addr`, and closes every connection to it.
pub(crate) fn ban(st: &mut State, addr: SocketAddr) {
    let ids: Vec<_> = st
        .peers
        .values()
        .filter(|e| e.ban_key == addr)
        .map(|e| e.peer_id)
        .collect();
    st.swarm.ban(addr, None);
    for id in ids {
        st.swarm.ban(addr, Some(id));
    }
    for e in st.peers.values() {
        if e.ban_key == addr {
            e.send(Cmd::Close);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_lone_sender_is_blamed_at_once() {
        let mut found = Vec::new();
        let senders = [Some(addr(1)), Some(addr(1)), None];
        assert_eq!(blame_failed(&senders, None, &mut found), Some(addr(1)));
        assert!(found.is_empty());
    }

    #[test]
    fn mixed_senders_are_sorted_out_when_the_piece_passes() {
        let (good, bad) = ([1u8; 20], [2u8; 20]);
        let mut found = Vec::new();
        let senders = [Some(addr(1)), Some(addr(2)), Some(addr(3))];
        // Block 1 (from peer 2) was corrupt.
        assert_eq!(
            blame_failed(&senders, Some(&[good, bad, good]), &mut found),
            None
        );
        // A second failure: this time peer 3 sent block 2, corrupt too.
        let senders = [Some(addr(2)), Some(addr(1)), Some(addr(3))];
        let h = [good, good, bad];
        assert_eq!(blame_failed(&senders, Some(&h), &mut found), None);
        assert_eq!(found.len(), 6);
        let mut blamed = blame_passed(&found, &[good, good, good]);
        blamed.sort_unstable();
        assert_eq!(blamed, [addr(2), addr(3)]);
        assert!(blame_passed(&found[..1], &[good, good, good]).is_empty());
    }
}
