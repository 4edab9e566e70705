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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block<P> {
    Free,
    /// Requested from these peers (more than one only in endgame).
    Requested(Vec<P>),
    Received,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Missing,
    Active,
    Have,
}

/// A piece in progress.
#[derive(Debug, Clone)]
struct Active<P> {
    piece: u32,
    blocks: Vec<Block<P>>,
    received: u32,
}

impl<P> Active<P> {
    fn done(&self) -> bool {
        self.received as usize == self.blocks.len()
    }
}

/// The piece picker of one torrent.
#[derive(Debug, Clone)]
pub struct Picker<P> {
    piece_len: u64,
    total_len: u64,
    state: Vec<State>,
    availability: Vec<u32>,
    have_count: u32,
    /// Pieces in progress, oldest first.
    active: Vec<Active<P>>,
    /// Blocks of missing pieces neither requested nor received; endgame starts at 0.
    unrequested: u64,
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
            active: Vec::new(),
            unrequested: 0,
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
            }
            Some(State::Active) => {
                let i = self.active_index(piece).unwrap_or_default();
                let a = self.active.remove(i);
                let free = a.blocks.iter().filter(|b| **b == Block::Free).count();
                self.unrequested -= free as u64;
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
        for i in 0..self.active.len() {
            if out.len() - start >= max {
                return max;
            }
            if peer_has.has_piece(self.active[i].piece) {
                self.request_free(i, peer, max - (out.len() - start), out);
            }
        }
        // Then new pieces, random first or rarest first.
        while out.len() - start < max {
            let Some(piece) = self.choose_new(peer_has, rng) else {
                break;
            };
            let blocks = vec![Block::Free; self.blocks_in(piece) as usize];
            self.state[piece as usize] = State::Active;
            self.active.push(Active {
                piece,
                blocks,
                received: 0,
            });
            let i = self.active.len() - 1;
            self.request_free(i, peer, max - (out.len() - start), out);
        }
        if self.in_endgame() && out.len() - start < max {
            self.endgame(peer, peer_has, max - (out.len() - start), out);
        }
        out.len() - start
    }

    /// Requests up to `max` free blocks of `self.active[i]` from `peer`.
    fn request_free(&mut self, i: usize, peer: P, max: usize, out: &mut Vec<BlockRequest>) {
        let piece = self.active[i].piece;
        let mut n = 0;
        for b in 0..self.active[i].blocks.len() {
            if n == max {
                break;
            }
            if self.active[i].blocks[b] == Block::Free {
                self.active[i].blocks[b] = Block::Requested(vec![peer]);
                self.unrequested -= 1;
                out.push(self.block(piece, b as u32));
                n += 1;
            }
        }
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
        for (p, state) in (0..).zip(&self.state) {
            if *state != State::Missing || !peer_has.has_piece(p) {
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

    /// Endgame: requests from `peer` blocks already requested from others, those with the
    /// fewest requesters first.
    fn endgame(
        &mut self,
        peer: P,
        peer_has: &(impl PieceSet + ?Sized),
        max: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let mut candidates = Vec::new();
        for (i, a) in self.active.iter().enumerate() {
            if !peer_has.has_piece(a.piece) {
                continue;
            }
            for (b, block) in a.blocks.iter().enumerate() {
                if let Block::Requested(by) = block {
                    if !by.contains(&peer) {
                        candidates.push((by.len(), i, b));
                    }
                }
            }
        }
        candidates.sort_by_key(|c| c.0);
        for &(_, i, b) in candidates.iter().take(max) {
            if let Block::Requested(by) = &mut self.active[i].blocks[b] {
                by.push(peer);
            }
            out.push(self.block(self.active[i].piece, b as u32));
        }
    }

    /// The active piece and block index of `block`, if it is a valid block of a piece in
    /// progress.
    fn locate(&self, block: BlockRequest) -> Option<(usize, usize)> {
        let i = self.active_index(block.piece)?;
        let b = block.begin / BLOCK_LEN;
        let valid = block.begin % BLOCK_LEN == 0 && self.block(block.piece, b) == block;
        let in_range = (b as usize) < self.active[i].blocks.len();
        (valid && in_range).then_some((i, b as usize))
    }

    fn active_index(&self, piece: u32) -> Option<usize> {
        self.active.iter().position(|a| a.piece == piece)
    }

    /// `peer` sent `block`. Says whether to store it, and which duplicate requests to cancel.
    /// Any valid block of a piece in progress that we lack is accepted, even one `peer` was
    /// not asked for (a late answer to a cancelled request).
    pub fn block_received(&mut self, peer: P, block: BlockRequest) -> Received<P> {
        if self.have(block.piece) {
            return Received::Duplicate;
        }
        let Some((i, b)) = self.locate(block) else {
            return Received::Unrequested;
        };
        let a = &mut self.active[i];
        let cancel = match std::mem::replace(&mut a.blocks[b], Block::Received) {
            Block::Received => return Received::Duplicate,
            Block::Free => {
                // Not requested from anyone now (released after a cancel, reject or drop, or
                // not yet requested): a block of a piece in progress is welcome whoever sends
                // it, the piece's hash check vouches for it.
                self.unrequested -= 1;
                Vec::new()
            }
            Block::Requested(mut by) => {
                by.retain(|p| *p != peer);
                by
            }
        };
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
        let Some(i) = self.active_index(piece).filter(|i| self.active[*i].done()) else {
            return false;
        };
        if ok {
            self.active.remove(i);
            self.state[piece as usize] = State::Have;
            self.have_count += 1;
        } else {
            let a = &mut self.active[i];
            a.blocks.fill(Block::Free);
            a.received = 0;
            self.unrequested += a.blocks.len() as u64;
        }
        true
    }

    /// `peer` will not deliver `block` (we cancelled it, or it sent `reject`): the block is
    /// free to request again unless another peer has it requested. Returns whether `peer` had
    /// it requested.
    pub fn cancel(&mut self, peer: P, block: BlockRequest) -> bool {
        let Some((i, b)) = self.locate(block) else {
            return false;
        };
        self.release(i, b, peer)
    }

    /// `peer` disconnected or choked us: every block requested from it is released. Returns
    /// them (the caller may cancel them on the wire, for a choke).
    pub fn peer_dropped(&mut self, peer: P) -> Vec<BlockRequest> {
        let mut released = Vec::new();
        for i in 0..self.active.len() {
            for b in 0..self.active[i].blocks.len() {
                if self.release(i, b, peer) {
                    released.push(self.block(self.active[i].piece, b as u32));
                }
            }
        }
        released
    }

    fn release(&mut self, i: usize, b: usize, peer: P) -> bool {
        let block = &mut self.active[i].blocks[b];
        let Block::Requested(by) = block else {
            return false;
        };
        let before = by.len();
        by.retain(|p| *p != peer);
        if by.len() == before {
            return false;
        }
        if by.is_empty() {
            *block = Block::Free;
            self.unrequested += 1;
        }
        true
    }
}

#[cfg(test)]
#[path = "picker_tests.rs"]
mod tests;
