//! Unit tests of the piece picker, one per rule, and a property test that drives random swarms
//! to completion.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A bitfield of `n` pieces holding those in `pieces`.
fn bits(n: u32, pieces: impl IntoIterator<Item = u32>) -> Vec<u8> {
    let mut b = vec![0u8; n.div_ceil(8) as usize];
    for p in pieces {
        b[(p / 8) as usize] |= 0x80 >> (p % 8);
    }
    b
}

/// Requests and receives every block of `piece` from peer 0, then verifies it.
fn complete(picker: &mut Picker<u32>, piece: u32) {
    let mut out = Vec::new();
    let only = bits(picker.piece_count(), [piece]);
    picker.pick_blocks(0, &only[..], usize::MAX, &mut rng(0), &mut out);
    for b in out {
        assert!(matches!(picker.block_received(0, b), Received::New { .. }));
    }
    assert!(picker.piece_verified(piece, true));
}

#[test]
fn geometry() {
    // 3 pieces of 40 KiB, 100 KiB in all: 3 + 3 + 2 blocks; the last block is 4 KiB.
    let p: Picker<u32> = Picker::new(3, 40 * 1024, 100 * 1024);
    assert_eq!(p.piece_size(0), 40 * 1024);
    assert_eq!(p.piece_size(2), 20 * 1024);
    assert_eq!((p.blocks_in(0), p.blocks_in(2)), (3, 2));
    assert_eq!(
        p.block(0, 2),
        BlockRequest {
            piece: 0,
            begin: 32 * 1024,
            length: 8 * 1024
        }
    );
    assert_eq!(p.block(2, 1).length, 4 * 1024);
    assert!(!p.in_endgame() && !p.is_complete());
    assert!([0xa0u8][..].has_piece(0) && [0xa0u8][..].has_piece(2));
    assert!(![0xa0u8][..].has_piece(1) && ![0xa0u8][..].has_piece(9));
}

#[test]
#[should_panic(expected = "do not make")]
fn inconsistent_sizes_panic() {
    let _: Picker<u32> = Picker::new(4, 1024, 3000);
}

#[test]
fn availability_follows_peers() {
    let mut p: Picker<u32> = Picker::new(10, BLOCK_LEN.into(), 10 * u64::from(BLOCK_LEN));
    let a = bits(10, [0, 1, 9]);
    p.peer_bitfield(&a);
    p.peer_bitfield(&AllPieces);
    p.peer_has(1);
    p.peer_has(99); // ignored
    assert_eq!(
        (0..10).map(|i| p.availability(i)).collect::<Vec<_>>(),
        [2, 3, 1, 1, 1, 1, 1, 1, 1, 2]
    );
    p.peer_gone(&AllPieces);
    p.peer_gone(&a[..]);
    assert_eq!(p.availability(1), 1);
    assert_eq!(p.availability(9), 0);
    assert!(p.wants_from(&a[..]));
    complete(&mut p, 0);
    assert!(p.have(0) && !p.wants_from(&bits(10, [0])[..]));
}

#[test]
fn only_pieces_the_peer_has_and_we_lack() {
    let mut p: Picker<u32> = Picker::new(8, BLOCK_LEN.into(), 8 * u64::from(BLOCK_LEN));
    p.mark_have(3);
    let peer = bits(8, [3, 5]);
    let mut out = Vec::new();
    assert_eq!(p.pick_blocks(1, &peer[..], 10, &mut rng(1), &mut out), 1);
    assert_eq!(out[0].piece, 5);
    // Nothing left for this peer.
    assert_eq!(p.pick_blocks(1, &peer[..], 10, &mut rng(1), &mut out), 0);
}

#[test]
fn random_first_until_four_pieces() {
    let n = 16;
    let mut picks = HashSet::new();
    for seed in 0..40 {
        let mut p: Picker<u32> = Picker::new(n, BLOCK_LEN.into(), u64::from(n * BLOCK_LEN));
        // Piece 7 is by far the rarest; random first ignores that.
        p.peer_bitfield(&AllPieces);
        for _ in 0..5 {
            p.peer_bitfield(&bits(n, (0..n).filter(|i| *i != 7))[..]);
        }
        let mut out = Vec::new();
        p.pick_blocks(1, &AllPieces, 1, &mut rng(seed), &mut out);
        picks.insert(out[0].piece);
    }
    assert!(picks.len() > 5, "random first picked only {picks:?}");
}

#[test]
fn rarest_first_with_random_tie_break_after_four() {
    let n = 16;
    let mut picks = HashSet::new();
    for seed in 0..40 {
        let mut p: Picker<u32> = Picker::new(n, BLOCK_LEN.into(), u64::from(n * BLOCK_LEN));
        for piece in 0..RANDOM_FIRST {
            complete(&mut p, piece);
        }
        p.peer_bitfield(&AllPieces);
        p.peer_bitfield(&AllPieces);
        // Pieces 9, 11 and 13 are held by one peer fewer than the others.
        p.peer_bitfield(&bits(n, (0..n).filter(|i| ![9, 11, 13].contains(i)))[..]);
        let mut out = Vec::new();
        p.pick_blocks(1, &AllPieces, 1, &mut rng(seed), &mut out);
        assert!([9, 11, 13].contains(&out[0].piece), "{:?}", out[0]);
        picks.insert(out[0].piece);
        // A peer without the rarest pieces gets the rarest of what it has.
        let mut out = Vec::new();
        let partial = bits(n, [5, 6, 9]);
        p.peer_has(6);
        p.pick_blocks(2, &partial[..], 1, &mut rng(seed), &mut out);
        assert!(out[0].piece == 9 || out[0].piece == 5, "{:?}", out[0]);
    }
    assert_eq!(picks.len(), 3, "ties not broken at random: {picks:?}");
}

#[test]
fn strict_priority_for_started_pieces() {
    // Pieces of 4 blocks.
    let plen = 4 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(8, plen, 8 * plen);
    let mut out = Vec::new();
    p.pick_blocks(1, &AllPieces, 1, &mut rng(3), &mut out);
    let started = out[0].piece;
    // Another peer first gets the 3 remaining blocks of the started piece, then a new piece.
    let mut out = Vec::new();
    p.pick_blocks(2, &AllPieces, 5, &mut rng(4), &mut out);
    assert!(out[..3].iter().all(|b| b.piece == started), "{out:?}");
    assert_eq!(
        out[..3]
            .iter()
            .map(|b| b.begin / BLOCK_LEN)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_ne!(out[3].piece, started);
    assert_eq!(out[3].piece, out[4].piece);
    // A peer without the started piece starts another one.
    let mut out = Vec::new();
    let other = bits(8, (0..8).filter(|i| *i != started));
    p.pick_blocks(3, &other[..], 1, &mut rng(5), &mut out);
    assert_ne!(out[0].piece, started);
}

#[test]
fn failed_hash_puts_the_piece_back() {
    let plen = 2 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(4, plen, 4 * plen);
    let mut out = Vec::new();
    p.pick_blocks(1, &AllPieces, 2, &mut rng(0), &mut out);
    let piece = out[0].piece;
    assert!(!p.piece_verified(piece, false), "not all blocks in yet");
    assert_eq!(
        p.block_received(1, out[0]),
        Received::New {
            piece_done: false,
            cancel: vec![]
        }
    );
    assert_eq!(
        p.block_received(1, out[1]),
        Received::New {
            piece_done: true,
            cancel: vec![]
        }
    );
    assert!(p.piece_verified(piece, false));
    assert!(!p.have(piece));
    // The same blocks come first again, from any peer.
    let mut again = Vec::new();
    p.pick_blocks(2, &AllPieces, 2, &mut rng(9), &mut again);
    assert_eq!(again, out);
    for b in &again {
        p.block_received(2, *b);
    }
    assert!(p.piece_verified(piece, true));
    assert!(p.have(piece) && p.have_count() == 1);
    assert_eq!(p.block_received(2, again[0]), Received::Duplicate);
}

#[test]
fn cancel_and_peer_dropped_release_blocks() {
    let plen = 4 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(2, plen, 2 * plen);
    let mut out = Vec::new();
    p.pick_blocks(1, &AllPieces, 3, &mut rng(0), &mut out);
    assert!(p.cancel(1, out[0]));
    assert!(!p.cancel(1, out[0]), "already released");
    assert!(!p.cancel(2, out[1]), "never requested from 2");
    let released = p.peer_dropped(1);
    assert_eq!(released, out[1..]);
    assert!(p.peer_dropped(1).is_empty());
    // All three are requested again, before anything new.
    let mut again = Vec::new();
    p.pick_blocks(2, &AllPieces, 3, &mut rng(0), &mut again);
    assert_eq!(again, out);
    // A released block that arrives late is still welcome.
    p.cancel(2, again[0]);
    assert!(matches!(
        p.block_received(1, again[0]),
        Received::New { .. }
    ));
}

#[test]
fn unrequested_and_invalid_blocks_are_refused() {
    let plen = 2 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(2, plen, 2 * plen);
    let stray = BlockRequest {
        piece: 1,
        begin: 0,
        length: BLOCK_LEN,
    };
    assert_eq!(p.block_received(1, stray), Received::Unrequested);
    let mut out = Vec::new();
    p.pick_blocks(1, &bits(2, [0])[..], 2, &mut rng(0), &mut out);
    let odd = BlockRequest {
        begin: 100,
        ..out[0]
    };
    assert_eq!(p.block_received(1, odd), Received::Unrequested);
    let short = BlockRequest {
        length: 10,
        ..out[0]
    };
    assert_eq!(p.block_received(1, short), Received::Unrequested);
    let past = BlockRequest {
        begin: 2 * BLOCK_LEN,
        ..out[0]
    };
    assert_eq!(p.block_received(1, past), Received::Unrequested);
}

#[test]
fn endgame_requests_from_every_peer_and_cancels_on_arrival() {
    let plen = 2 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(2, plen, plen + 100);
    let mut a = Vec::new();
    p.pick_blocks(1, &AllPieces, 10, &mut rng(0), &mut a);
    assert_eq!(a.len(), 3);
    assert_eq!(a[2].length, 100);
    assert!(p.in_endgame());
    // Peer 2 gets every block again; peer 3 holds only piece 1.
    let mut b = Vec::new();
    p.pick_blocks(2, &AllPieces, 10, &mut rng(0), &mut b);
    assert_eq!(sorted(b.clone()), sorted(a.clone()));
    let mut c = Vec::new();
    p.pick_blocks(3, &bits(2, [1])[..], 10, &mut rng(0), &mut c);
    assert_eq!(c, [a[2]]);
    // Never the same block twice to the same peer.
    assert_eq!(p.pick_blocks(2, &AllPieces, 10, &mut rng(0), &mut b), 0);

    assert_eq!(
        p.block_received(3, a[2]),
        Received::New {
            piece_done: true,
            cancel: vec![1, 2]
        }
    );
    assert_eq!(p.block_received(1, a[2]), Received::Duplicate);
    // Dropping a peer in endgame releases nothing others still cover.
    let dropped = p.peer_dropped(2);
    assert_eq!(dropped.len(), 2);
    assert!(p.in_endgame());
    p.peer_dropped(1);
    assert!(!p.in_endgame(), "blocks free again");
}

fn sorted(mut v: Vec<BlockRequest>) -> Vec<BlockRequest> {
    v.sort();
    v
}

#[test]
fn mark_have_resumes() {
    let plen = 2 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(3, plen, 3 * plen);
    p.mark_have(0);
    p.mark_have(0);
    p.mark_have(2);
    assert_eq!(p.have_count(), 2);
    let mut out = Vec::new();
    p.pick_blocks(1, &AllPieces, 10, &mut rng(0), &mut out);
    assert!(out.iter().all(|b| b.piece == 1));
    assert!(p.in_endgame());
    p.mark_have(1);
    assert!(p.is_complete() && !p.in_endgame());
}

#[test]
fn finished_pieces_give_their_slot_to_the_next() {
    let plen = 4 * u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(50, plen, 50 * plen);
    let mut out = Vec::with_capacity(8);
    for _ in 0..50 {
        out.clear();
        p.pick_blocks(1, &AllPieces, 4, &mut rng(1), &mut out);
        for b in &out {
            assert!(matches!(
                p.block_received(1, *b),
                Received::New { ref cancel, .. } if cancel.is_empty()
            ));
        }
        assert!(p.piece_verified(out[0].piece, true));
    }
    assert!(p.is_complete());
    // One piece at a time in progress: one slot, reused 50 times.
    assert_eq!(p.slots.len(), 1);
    assert!(p.order.is_empty() && p.extra.is_empty());
}

#[test]
fn endgame_requesters_survive_cancels_and_drops() {
    let plen = u64::from(BLOCK_LEN);
    let mut p: Picker<u32> = Picker::new(1, plen, plen);
    let mut a = Vec::new();
    p.pick_blocks(1, &AllPieces, 4, &mut rng(0), &mut a);
    let block = a[0];
    let mut b = Vec::new();
    p.pick_blocks(2, &AllPieces, 4, &mut rng(0), &mut b);
    p.pick_blocks(3, &AllPieces, 4, &mut rng(0), &mut b);
    assert_eq!(b, [block, block]);
    // The first requester leaves: the oldest extra (2) takes its place, the block stays taken.
    assert!(p.cancel(1, block));
    assert!(!p.cancel(1, block));
    assert!(p.in_endgame());
    assert_eq!(p.peer_dropped(3), [block]);
    assert!(p.in_endgame());
    // Peer 1 asks again: only 2 holds it, so 1 gets it back as an extra.
    let mut c = Vec::new();
    p.pick_blocks(1, &AllPieces, 4, &mut rng(0), &mut c);
    assert_eq!(c, [block]);
    assert_eq!(
        p.block_received(1, block),
        Received::New {
            piece_done: true,
            cancel: vec![2]
        }
    );
    assert!(p.extra.is_empty());
    // A failed check frees the piece; mark_have drops endgame extras with it.
    assert!(p.piece_verified(0, false));
    p.pick_blocks(1, &AllPieces, 4, &mut rng(0), &mut c);
    p.pick_blocks(2, &AllPieces, 4, &mut rng(0), &mut c);
    assert_eq!(p.extra.len(), 1);
    p.mark_have(0);
    assert!(p.extra.is_empty() && p.is_complete());
    assert_eq!(p.block_received(2, block), Received::Duplicate);
}

// ---------------------------------------------------------------------------------------------
// A random swarm, driven to completion

/// The picker's internal lists agree with its per-piece states.
fn check_bookkeeping<P: Copy + Eq>(p: &Picker<P>) -> Result<(), TestCaseError> {
    let mut missing = p.missing.clone();
    missing.sort_unstable();
    let want: Vec<u32> = (0..p.piece_count())
        .filter(|i| p.state[*i as usize] == State::Missing)
        .collect();
    prop_assert_eq!(missing, want);
    for (i, piece) in p.missing.iter().enumerate() {
        prop_assert_eq!(p.missing_pos[*piece as usize] as usize, i);
    }
    for &slot in &p.order {
        let a = &p.slots[slot as usize];
        prop_assert_eq!(p.state[a.piece as usize], State::Active(slot));
        let free = a.blocks.iter().filter(|b| **b == Block::Free).count();
        prop_assert_eq!(a.free as usize, free);
        let extra: u32 = a
            .blocks
            .iter()
            .map(|b| match b {
                Block::Requested { extra, .. } => *extra,
                _ => 0,
            })
            .sum();
        let listed = p.extra.iter().filter(|e| e.piece == a.piece).count();
        prop_assert_eq!(extra as usize, listed);
    }
    prop_assert_eq!(p.order.len() + p.spare.len(), p.slots.len());
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    /// A peer asks for up to n blocks.
    Pick(usize, usize),
    /// The k-th outstanding request arrives (or is rejected when the flag is false).
    Arrive(usize, bool),
    /// A peer leaves (its requests released) and comes back.
    Reconnect(usize),
}

fn op(peers: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..peers, 1usize..6).prop_map(|(p, n)| Op::Pick(p, n)),
        (any::<usize>(), prop::bool::weighted(0.9)).prop_map(|(k, d)| Op::Arrive(k, d)),
        (1..peers).prop_map(Op::Reconnect),
    ]
}

/// A swarm around one picker: what each peer has, which requests are on the wire, how often
/// each piece was verified good, and which pieces fail their first hash check.
struct Swarm {
    picker: Picker<usize>,
    have: Vec<Vec<u8>>,
    outstanding: Vec<(usize, BlockRequest)>,
    verified: HashMap<u32, u32>,
    corrupt: Vec<bool>,
    rng: StdRng,
}

impl Swarm {
    fn pick(&mut self, peer: usize, n: usize) -> Result<(), TestCaseError> {
        let mut got = Vec::new();
        let has = &self.have[peer][..];
        self.picker
            .pick_blocks(peer, has, n, &mut self.rng, &mut got);
        prop_assert!(got.len() <= n);
        for b in got {
            prop_assert!(has.has_piece(b.piece) && !self.picker.have(b.piece));
            prop_assert!(
                !self.outstanding.contains(&(peer, b)),
                "{b:?} twice to {peer}"
            );
            let elsewhere = self.outstanding.iter().any(|(_, o)| *o == b);
            prop_assert!(
                !elsewhere || self.picker.in_endgame(),
                "{b:?} requested twice outside endgame"
            );
            self.outstanding.push((peer, b));
        }
        Ok(())
    }

    fn arrive(&mut self, k: usize, deliver: bool) -> Result<(), TestCaseError> {
        if self.outstanding.is_empty() {
            return Ok(());
        }
        let (peer, b) = self.outstanding.remove(k % self.outstanding.len());
        if !deliver {
            self.picker.cancel(peer, b);
            return Ok(());
        }
        match self.picker.block_received(peer, b) {
            Received::New { piece_done, cancel } => {
                for c in cancel {
                    prop_assert!(self.outstanding.contains(&(c, b)));
                    self.outstanding.retain(|o| *o != (c, b));
                }
                if piece_done {
                    let bad = std::mem::take(&mut self.corrupt[b.piece as usize]);
                    prop_assert!(self.picker.piece_verified(b.piece, !bad));
                    if !bad {
                        *self.verified.entry(b.piece).or_default() += 1;
                    }
                }
            }
            Received::Duplicate => {}
            Received::Unrequested => prop_assert!(false, "{b:?} was requested"),
        }
        Ok(())
    }

    fn reconnect(&mut self, peer: usize) -> Result<(), TestCaseError> {
        let released = self.picker.peer_dropped(peer);
        let mut mine: Vec<_> = self
            .outstanding
            .iter()
            .filter(|(q, _)| *q == peer)
            .map(|o| o.1)
            .collect();
        mine.sort();
        prop_assert_eq!(sorted(released), mine);
        self.outstanding.retain(|(q, _)| *q != peer);
        self.picker.peer_gone(&self.have[peer][..]);
        self.picker.peer_bitfield(&self.have[peer][..]);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_random_swarm_completes_every_piece_once(
        num_pieces in 1u32..12,
        blocks_per_piece in 1u32..4,
        tail in 1u64..=u64::from(BLOCK_LEN),
        holdings in prop::collection::vec(prop::collection::vec(any::<bool>(), 12), 2..5),
        ops in prop::collection::vec(op(5), 0..120),
        corrupt in prop::collection::vec(any::<bool>(), 12),
        seed in any::<u64>(),
    ) {
        let plen = u64::from(blocks_per_piece * BLOCK_LEN);
        let total = plen * u64::from(num_pieces - 1) + tail;
        // Peer 0 is a seed that never leaves; the others hold random pieces.
        let mut have = vec![bits(num_pieces, 0..num_pieces)];
        for h in &holdings {
            have.push(bits(num_pieces, (0..num_pieces).filter(|i| h[*i as usize])));
        }
        let mut s = Swarm {
            picker: Picker::new(num_pieces, plen, total),
            have,
            outstanding: Vec::new(),
            verified: HashMap::new(),
            corrupt,
            rng: rng(seed),
        };
        for h in &s.have {
            s.picker.peer_bitfield(&h[..]);
        }
        let npeers = s.have.len();
        for o in ops {
            match o {
                Op::Pick(peer, n) => s.pick(peer % npeers, n)?,
                Op::Arrive(k, deliver) => s.arrive(k, deliver)?,
                Op::Reconnect(peer) => s.reconnect(peer % npeers)?,
            }
            check_bookkeeping(&s.picker)?;
        }
        // Drain: every peer asks, everything arrives, until done.
        for _ in 0..10_000 {
            if s.picker.is_complete() {
                break;
            }
            for peer in 0..npeers {
                s.pick(peer, 4)?;
            }
            while !s.outstanding.is_empty() {
                s.arrive(0, true)?;
            }
        }
        prop_assert!(s.picker.is_complete() && !s.picker.in_endgame());
        check_bookkeeping(&s.picker)?;
        prop_assert!(s.picker.order.is_empty() && s.picker.extra.is_empty());
        for piece in 0..num_pieces {
            prop_assert_eq!(s.verified.get(&piece), Some(&1), "piece {}", piece);
        }
    }
}
