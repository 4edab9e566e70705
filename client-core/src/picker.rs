//! The piece picker: which blocks to request from which peer, sans-IO. It tracks how many
//! connected peers have each piece, which pieces we have, and the 16 KiB blocks of the pieces
//! in progress, and applies BitTorrent's rules (Legout et al. 2006, §2.1):
//!
//! - strict priority: free blocks of pieces already started are requested before a new piece
//!   is started, so pieces complete (and can be shared) as soon as possible;
//! - random first: until [`RANDOM_FIRST`] pieces are complete, a new piece is chosen at random
//!   among those the peer has, to get something to share quickly;
//! - rarest first: after that, the new piece is one the fewest connected peers have, chosen at
//!   random among equally rare ones;
//! - endgame: once every missing block has been requested, the remaining ones are requested
//!   from every peer that has them too, and [`Picker::block_received`] names the duplicate
//!   requests to cancel.
//!
//! Outside endgame a block is requested from one peer at a time. Peers are the caller's
//! handles (`P`); randomness comes from the `rng` passed in, so tests are deterministic.
//!
//! Picking and receiving blocks allocate nothing in steady state (see [`Picker`]); the cost that
//! remains is the scan of the missing pieces when a new piece is started (once per piece).
//! `benches/picker.rs` measures it.

use rand::Rng;

/// Size of a block, the unit of requests: 16 KiB (the last block of the last piece may be
/// shorter).
pub const BLOCK_LEN: u32 = 16 * 1024;
/// How many pieces are picked at random before rarest first takes over.
pub const RANDOM_FIRST: u32 = 4;

/// A block: `length` bytes at offset `begin` of piece `piece`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    /// The piece index.
    pub piece: u32,
    /// Byte offset within the piece, a multiple of [`BLOCK_LEN`].
    pub begin: u32,
    /// Length in bytes: [`BLOCK_LEN`], or less for the last block of the torrent.
    pub length: u32,
}

/// Which pieces a peer has, as the picker asks it.
pub trait PieceSet {
    /// Whether piece `piece` is in the set.
    fn has_piece(&self, piece: u32) -> bool;
}

/// A wire bitfield (BEP 3): high bit of the first byte is piece 0; bits past the end are unset.
impl PieceSet for [u8] {
    fn has_piece(&self, piece: u32) -> bool {
        let Ok(byte) = usize::try_from(piece / 8) else {
            return false;
        };
        self.get(byte)
            .is_some_and(|b| b & (0x80 >> (piece % 8)) != 0)
    }
}

impl PieceSet for Vec<u8> {
    fn has_piece(&self, piece: u32) -> bool {
        self[..].has_piece(piece)
    }
}

/// Every piece: a seed, or a peer that sent `have all` (BEP 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllPieces;

impl PieceSet for AllPieces {
    fn has_piece(&self, _: u32) -> bool {
        true
    }
}

/// What to do with a block that arrived ([`Picker::block_received`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<P> {
    /// A block we were missing: store it.
    New {
        /// Every block of the piece is now in: verify it, then call
        /// [`Picker::piece_verified`].
        piece_done: bool,
        /// Other peers this block was also requested from (endgame): send them `cancel`.
        cancel: Vec<P>,
    },
    /// We already have it (an endgame race): drop it.
    Duplicate,
    /// Not a block of a piece in progress, or not a valid block: drop it.
    Unrequested,
}

/// A block of a piece in progress. `Copy` and small: a piece's blocks live in one vector that is
/// reused from piece to piece, so requesting a block allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block<P> {
    Free,
    /// Requested from `first`, and in endgame also from `extra` more peers, listed in
    /// [`Picker::extra`].
    Requested {
        first: P,
        extra: u32,
    },
    Received,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Missing,
    /// In progress, in this slot of [`Picker::slots`].
    Active(u32),
    Have,
}

/// A piece in progress, or a spare slot whose vector waits to be reused.
#[derive(Debug, Clone)]
struct Active<P> {
    piece: u32,
    blocks: Vec<Block<P>>,
    received: u32,
    /// Blocks in [`Block::Free`].
    free: u32,
}

impl<P> Active<P> {
    fn done(&self) -> bool {
        self.received as usize == self.blocks.len()
    }
}

/// An endgame requester beyond a block's first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extra<P> {
    piece: u32,
    block: u32,
    peer: P,
}

/// The piece picker of one torrent.
///
/// Nothing is allocated per block in steady state: pieces in progress live in slots whose block
/// vectors are reused (a finished piece's slot goes on a free list), a requested block records
/// its one requester inline, and only endgame's additional requesters go in a shared list
/// (which keeps its capacity).
#[derive(Debug, Clone)]
pub struct Picker<P> {
    piece_len: u64,
    total_len: u64,
    state: Vec<State>,
    availability: Vec<u32>,
    have_count: u32,
    /// Slots of pieces in progress and spare slots ([`Self::spare`]).
    slots: Vec<Active<P>>,
    /// Slots in use, oldest piece first.
    order: Vec<u32>,
    /// Slots free for reuse.
    spare: Vec<u32>,
    /// Endgame requesters beyond each block's first, in the order they were added.
    extra: Vec<Extra<P>>,
    /// Scratch list of endgame candidates: (requesters, slot, block).
    candidates: Vec<(u32, u32, u32)>,
    /// Blocks of missing pieces neither requested nor received; endgame starts at 0.
    unrequested: u64,
    /// The pieces in [`State::Missing`] (neither started nor ours), in no particular order:
    /// a new piece is chosen among these, so the scan shrinks as the download goes on.
    missing: Vec<u32>,
    /// Where each missing piece sits in [`Self::missing`] (stale for other pieces).
    missing_pos: Vec<u32>,
}

impl<P: Copy + Eq> Picker<P> {
    /// A picker for a torrent of `num_pieces` pieces of `piece_len` bytes (the last one
    /// shorter), `total_len` bytes in all, none of which we have yet.
    ///
    /// # Panics
    ///
    /// If the three do not agree (`num_pieces != ceil(total_len / piece_len)`), or a piece is
    /// above 4 GiB.
    pub fn new(num_pieces: u32, piece_len: u64, total_len: u64) -> Self {
        assert!(
            piece_len > 0
                && piece_len <= u64::from(u32::MAX)
                && total_len.div_ceil(piece_len) == u64::from(num_pieces),
            "{num_pieces} pieces of {piece_len} bytes do not make {total_len} bytes"
        );
        let n = num_pieces as usize;
        let mut picker = Self {
            piece_len,
            total_len,
            state: vec![State::Missing; n],
            availability: vec![0; n],
            have_count: 0,
            slots: Vec::new(),
            order: Vec::new(),
            spare: Vec::new(),
            extra: Vec::new(),
            candidates: Vec::new(),
            unrequested: 0,
            missing: (0..num_pieces).collect(),
            missing_pos: (0..num_pieces).collect(),
        };
        picker.unrequested = (0..num_pieces)
            .map(|p| u64::from(picker.blocks_in(p)))
            .sum();
        picker
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.state.len() as u32
    }

    /// The size of piece `piece` in bytes (0 past the end).
    pub fn piece_size(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * self.piece_len;
        // At most `piece_len`, which `new` checked fits a u32.
        self.total_len.saturating_sub(start).min(self.piece_len) as u32
    }

    /// How many blocks piece `piece` has.
    pub fn blocks_in(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_LEN)
    }

    /// Block `index` of piece `piece`.
    pub fn block(&self, piece: u32, index: u32) -> BlockRequest {
        let begin = index * BLOCK_LEN;
        BlockRequest {
            piece,
            begin,
            length: self.piece_size(piece).saturating_sub(begin).min(BLOCK_LEN),
        }
    }

    /// Whether we have (verified) piece `piece`.
    pub fn have(&self, piece: u32) -> bool {
        self.state.get(piece as usize) == Some(&State::Have)
    }

    /// How many pieces we have.
    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    /// Whether we have every piece.
    pub fn is_complete(&self) -> bool {
        self.have_count as usize == self.state.len()
    }

    /// Whether endgame is on: every missing block is requested or received.
    pub fn in_endgame(&self) -> bool {
        self.unrequested == 0 && !self.is_complete()
    }

    /// How many connected peers have piece `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Whether a peer with `peer_has` has a piece we lack (whether we are interested in it).
    pub fn wants_from(&self, peer_has: &(impl PieceSet + ?Sized)) -> bool {
        (0..self.piece_count()).any(|p| !self.have(p) && peer_has.has_piece(p))
    }

    /// Marks piece `piece` as ours without downloading it (resume: it was on disk and
    /// verified). A piece in progress is dropped; requests for it are the caller's to cancel.
    pub fn mark_have(&mut self, piece: u32) {
        match self.state.get(piece as usize) {
            Some(State::Missing) => {
                self.unrequested -= u64::from(self.blocks_in(piece));
                self.left_missing(piece);
            }
            Some(&State::Active(slot)) => {
                self.unrequested -= u64::from(self.slots[slot as usize].free);
                self.extra.retain(|e| e.piece != piece);
                self.retire(slot);
            }
            Some(State::Have) | None => return,
        }
        self.state[piece as usize] = State::Have;
        self.have_count += 1;
    }

    /// A connected peer announced piece `piece` (`have`). Indices past the end are ignored.
    pub fn peer_has(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// A peer connected with these pieces (`bitfield`, or [`AllPieces`] for `have all`).
    pub fn peer_bitfield(&mut self, bits: &(impl PieceSet + ?Sized)) {
        for (p, a) in (0..).zip(self.availability.iter_mut()) {
            if bits.has_piece(p) {
                *a += 1;
            }
        }
    }

    /// A peer with these pieces left: its availability is withdrawn. Its requests are
    /// released by [`peer_dropped`](Self::peer_dropped).
    pub fn peer_gone(&mut self, bits: &(impl PieceSet + ?Sized)) {
        for (p, a) in (0..).zip(self.availability.iter_mut()) {
            if bits.has_piece(p) {
                *a = a.saturating_sub(1);
            }
        }
    }

    /// Appends to `out` up to `max` blocks to request from `peer`, which has `peer_has`, and
    /// records them as requested from it. Returns how many were appended.
    pub fn pick_blocks<R: Rng + ?Sized>(
        &mut self,
        peer: P,
        peer_has: &(impl PieceSet + ?Sized),
        max: usize,
        rng: &mut R,
        out: &mut Vec<BlockRequest>,
    ) -> usize {
        let start = out.len();
        // Strict priority: pieces in progress, oldest first.
        for k in 0..self.order.len() {
            if out.len() - start >= max {
                return max;
            }
            let slot = self.order[k];
            let a = &self.slots[slot as usize];
            if a.free > 0 && peer_has.has_piece(a.piece) {
                self.request_free(slot, peer, max - (out.len() - start), out);
            }
        }
        // Then new pieces, random first or rarest first.
        while out.len() - start < max {
            let Some(piece) = self.choose_new(peer_has, rng) else {
                break;
            };
            let slot = self.activate(piece);
            self.request_free(slot, peer, max - (out.len() - start), out);
        }
        if self.in_endgame() && out.len() - start < max {
            self.endgame(peer, peer_has, max - (out.len() - start), out);
        }
        out.len() - start
    }

    /// Puts `piece` in progress, in a spare slot if there is one (its vector reused).
    fn activate(&mut self, piece: u32) -> u32 {
        let n = self.blocks_in(piece);
        let slot = match self.spare.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Active {
                    piece,
                    blocks: Vec::new(),
                    received: 0,
                    free: 0,
                });
                // At most one slot per piece, and pieces are counted in a u32.
                (self.slots.len() - 1) as u32
            }
        };
        let a = &mut self.slots[slot as usize];
        a.piece = piece;
        a.blocks.clear();
        a.blocks.resize(n as usize, Block::Free);
        a.received = 0;
        a.free = n;
        self.left_missing(piece);
        self.state[piece as usize] = State::Active(slot);
        self.order.push(slot);
        slot
    }

    /// Takes missing piece `piece` out of [`Self::missing`] (it is being started, or marked
    /// ours); pieces never go back to [`State::Missing`].
    fn left_missing(&mut self, piece: u32) {
        let pos = self.missing_pos[piece as usize] as usize;
        self.missing.swap_remove(pos);
        if let Some(&moved) = self.missing.get(pos) {
            self.missing_pos[moved as usize] = pos as u32;
        }
    }

    /// Takes `slot` out of the pieces in progress and keeps it for reuse. The caller sets the
    /// piece's new state.
    fn retire(&mut self, slot: u32) {
        if let Some(k) = self.order.iter().position(|s| *s == slot) {
            self.order.remove(k);
        }
        self.spare.push(slot);
    }

    /// Requests up to `max` free blocks of the piece in `slot` from `peer`.
    fn request_free(&mut self, slot: u32, peer: P, max: usize, out: &mut Vec<BlockRequest>) {
        let piece = self.slots[slot as usize].piece;
        let size = self.piece_size(piece);
        let a = &mut self.slots[slot as usize];
        let mut n = 0u32;
        for (index, b) in (0u32..).zip(a.blocks.iter_mut()) {
            if n as usize == max || a.free == 0 {
                break;
            }
            if *b == Block::Free {
                *b = Block::Requested {
                    first: peer,
                    extra: 0,
                };
                a.free -= 1;
                n += 1;
                let begin = index * BLOCK_LEN;
                out.push(BlockRequest {
                    piece,
                    begin,
                    length: size.saturating_sub(begin).min(BLOCK_LEN),
                });
            }
        }
        self.unrequested -= u64::from(n);
    }

    /// A missing piece not in progress that the peer has: random among all of them while we
    /// have fewer than [`RANDOM_FIRST`] pieces, else random among the rarest.
    fn choose_new<R: Rng + ?Sized>(
        &self,
        peer_has: &(impl PieceSet + ?Sized),
        rng: &mut R,
    ) -> Option<u32> {
        let random_first = self.have_count < RANDOM_FIRST;
        let mut best = None;
        let mut best_key = u32::MAX;
        let mut ties = 0u32;
        for &p in &self.missing {
            if !peer_has.has_piece(p) {
                continue;
            }
            let key = if random_first {
                0
            } else {
                self.availability[p as usize]
            };
            if best.is_none() || key < best_key {
                (best, best_key, ties) = (Some(p), key, 1);
            } else if key == best_key {
                // Reservoir sampling: each of the `ties` equal candidates kept with equal odds.
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(p);
                }
            }
        }
        best
    }

    /// Whether `peer` is among the requesters of block `block` of `piece`, whose state is `b`.
    fn requested_by(&self, piece: u32, block: u32, b: Block<P>, peer: P) -> bool {
        match b {
            Block::Requested { first, extra } => {
                first == peer
                    || (extra > 0
                        && self
                            .extra
                            .iter()
                            .any(|e| e.piece == piece && e.block == block && e.peer == peer))
            }
            Block::Free | Block::Received => false,
        }
    }

    /// Endgame: requests from `peer` blocks already requested from others, those with the
    /// fewest requesters first.
    fn endgame(
        &mut self,
        peer: P,
        peer_has: &(impl PieceSet + ?Sized),
        max: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for &slot in &self.order {
            let a = &self.slots[slot as usize];
            if !peer_has.has_piece(a.piece) {
                continue;
            }
            for (index, &b) in (0u32..).zip(&a.blocks) {
                if let Block::Requested { extra, .. } = b {
                    if !self.requested_by(a.piece, index, b, peer) {
                        candidates.push((extra, slot, index));
                    }
                }
            }
        }
        // Stable: equally covered blocks keep piece order.
        candidates.sort_by_key(|c| c.0);
        for &(_, slot, index) in candidates.iter().take(max) {
            let a = &mut self.slots[slot as usize];
            if let Block::Requested { extra, .. } = &mut a.blocks[index as usize] {
                *extra += 1;
            }
            let piece = a.piece;
            self.extra.push(Extra {
                piece,
                block: index,
                peer,
            });
            out.push(self.block(piece, index));
        }
        self.candidates = candidates;
    }

    /// The slot and block index of `block`, if it is a valid block of a piece in progress.
    fn locate(&self, block: BlockRequest) -> Option<(u32, u32)> {
        let State::Active(slot) = *self.state.get(block.piece as usize)? else {
            return None;
        };
        let b = block.begin / BLOCK_LEN;
        let valid = block.begin % BLOCK_LEN == 0 && self.block(block.piece, b) == block;
        let in_range = (b as usize) < self.slots[slot as usize].blocks.len();
        (valid && in_range).then_some((slot, b))
    }

    /// `peer` sent `block`. Says whether to store it, and which duplicate requests to cancel.
    /// Any valid block of a piece in progress that we lack is accepted, even one `peer` was
    /// not asked for (a late answer to a cancelled request).
    ///
    /// Allocates nothing unless the block had other requesters (endgame).
    pub fn block_received(&mut self, peer: P, block: BlockRequest) -> Received<P> {
        if self.have(block.piece) {
            return Received::Duplicate;
        }
        let Some((slot, b)) = self.locate(block) else {
            return Received::Unrequested;
        };
        let a = &mut self.slots[slot as usize];
        let cancel = match std::mem::replace(&mut a.blocks[b as usize], Block::Received) {
            Block::Received => return Received::Duplicate,
            Block::Free => {
                // Not requested from anyone now (released after a cancel, reject or drop, or
                // not yet requested): a block of a piece in progress is welcome whoever sends
                // it, the piece's hash check vouches for it.
                a.free -= 1;
                self.unrequested -= 1;
                Vec::new()
            }
            Block::Requested { first, extra: 0 } => {
                if first == peer {
                    Vec::new()
                } else {
                    vec![first]
                }
            }
            Block::Requested { first, extra } => {
                let mut cancel = Vec::with_capacity(extra as usize + 1);
                cancel.extend((first != peer).then_some(first));
                let piece = block.piece;
                self.extra.retain(|e| {
                    let this = e.piece == piece && e.block == b;
                    if this && e.peer != peer {
                        cancel.push(e.peer);
                    }
                    !this
                });
                cancel
            }
        };
        let a = &mut self.slots[slot as usize];
        a.received += 1;
        Received::New {
            piece_done: a.done(),
            cancel,
        }
    }

    /// The hash check of a piece whose blocks are all in: `ok` makes it ours; a failure puts
    /// all its blocks back to be requested again (first, by strict priority). Returns false if
    /// the piece was not awaiting verification.
    pub fn piece_verified(&mut self, piece: u32, ok: bool) -> bool {
        let Some(&State::Active(slot)) = self.state.get(piece as usize) else {
            return false;
        };
        if !self.slots[slot as usize].done() {
            return false;
        }
        if ok {
            self.retire(slot);
            self.state[piece as usize] = State::Have;
            self.have_count += 1;
        } else {
            // Every block is received, so no endgame requester is left for this piece.
            let a = &mut self.slots[slot as usize];
            a.blocks.fill(Block::Free);
            a.received = 0;
            a.free = a.blocks.len() as u32;
            self.unrequested += a.blocks.len() as u64;
        }
        true
    }

    /// `peer` will not deliver `block` (we cancelled it, or it sent `reject`): the block is
    /// free to request again unless another peer has it requested. Returns whether `peer` had
    /// it requested.
    pub fn cancel(&mut self, peer: P, block: BlockRequest) -> bool {
        let Some((slot, b)) = self.locate(block) else {
            return false;
        };
        self.release(slot, b, peer)
    }

    /// `peer` disconnected or choked us: every block requested from it is released. Returns
    /// them (the caller may cancel them on the wire, for a choke).
    pub fn peer_dropped(&mut self, peer: P) -> Vec<BlockRequest> {
        let mut released = Vec::new();
        for k in 0..self.order.len() {
            let slot = self.order[k];
            for b in 0..self.slots[slot as usize].blocks.len() as u32 {
                if self.release(slot, b, peer) {
                    released.push(self.block(self.slots[slot as usize].piece, b));
                }
            }
        }
        released
    }

    fn release(&mut self, slot: u32, b: u32, peer: P) -> bool {
        let a = &mut self.slots[slot as usize];
        let piece = a.piece;
        let Block::Requested { first, extra } = a.blocks[b as usize] else {
            return false;
        };
        let next = if extra == 0 {
            if first != peer {
                return false;
            }
            Block::Free
        } else {
            // Another requester stays: drop `peer` from the extras, or promote the oldest
            // extra to first.
            let mine = |e: &Extra<P>| e.piece == piece && e.block == b;
            let pos = if first == peer {
                self.extra.iter().position(mine)
            } else {
                self.extra.iter().position(|e| mine(e) && e.peer == peer)
            };
            let Some(pos) = pos else {
                return false;
            };
            let removed = self.extra.remove(pos);
            Block::Requested {
                first: if first == peer { removed.peer } else { first },
                extra: extra - 1,
            }
        };
        let a = &mut self.slots[slot as usize];
        a.blocks[b as usize] = next;
        if next == Block::Free {
            a.free += 1;
            self.unrequested += 1;
        }
        true
    }
}

#[cfg(test)]
#[path = "picker_tests.rs"]
mod tests;
