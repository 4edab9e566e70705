//! The choker: which peers we upload to, as Legout et al., "Rarest First and Choke Algorithms
//! Are Enough" (2006), §2.2 describe BitTorrent's, written as a pure function of the peers'
//! state, a round counter and a random number generator.
//!
//! The caller runs [`rechoke`] once per round ([`ROUND`], 10 s), numbering rounds from 0, sends
//! `unchoke` to the peers in [`Decision::unchoke`] and `choke` to every other unchoked peer, and
//! passes [`Decision::optimistic`] back in the next round. Nothing changes between rounds.
//!
//! Leecher state (we still download):
//! - the 3 interested peers with the best download rate to us are unchoked (equal rates in
//!   random order), except snubbed ones (anti-snubbing: see [`is_snubbed`]);
//! - every 3rd round (30 s: rounds 0, 3, 6...) one more interested peer outside those 3 is
//!   picked at random, the optimistic unchoke; in the other rounds it is kept, unless it left,
//!   lost interest or joined the regular 3, in which case another is picked. A snubbed peer
//!   may be the optimistic unchoke.
//!
//! Seed state (we only upload): the unchoked interested peers are ranked by the time of their
//! last unchoke, most recent first (equal times by upload rate, highest first). In 2 rounds out
//! of 3 the first 3 are kept and one choked interested peer is unchoked at random; in the 3rd
//! round (rounds 2, 5, 8...) the first 4 are kept. Slots left free because fewer peers are
//! ranked are filled at random from the choked interested peers, so a new seed uses its 4
//! slots from the first round.

use std::cmp::Reverse;
use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

/// How often the choker runs.
pub const ROUND: Duration = Duration::from_secs(10);
/// Peers unchoked for their rate (leecher) or their recent unchoke (seed).
pub const REGULAR_SLOTS: usize = 3;
/// Most peers unchoked at once: the regular slots and one optimistic or random slot.
pub const MAX_UNCHOKED: usize = REGULAR_SLOTS + 1;
/// Rounds per optimistic unchoke period (30 s).
pub const OPTIMISTIC_ROUNDS: u64 = 3;
/// A peer that sent us no block for this long while we are interested in it is snubbed.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(60);

/// What the choker knows of one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState<Id> {
    /// The caller's handle for the peer.
    pub id: Id,
    /// The peer is interested in what we have.
    pub interested: bool,
    /// We currently choke the peer.
    pub choked: bool,
    /// Its recent download rate to us, bytes per second.
    pub download_rate: u64,
    /// Our recent upload rate to it, bytes per second.
    pub upload_rate: u64,
    /// When we last unchoked it, on any monotonic clock (larger is more recent); `None` if
    /// never.
    pub last_unchoked: Option<u64>,
    /// Anti-snubbing: see [`is_snubbed`].
    pub snubbed: bool,
}

/// Anti-snubbing: whether a peer counts as snubbing us. It does when we are interested in it
/// and it sent no block for [`SNUB_TIMEOUT`] (`since_last_block` counts from when we became
/// interested if it never sent one).
pub fn is_snubbed(am_interested: bool, since_last_block: Duration) -> bool {
    am_interested && since_last_block >= SNUB_TIMEOUT
}

/// Whether we download (leecher) or only upload (seed): the two choke algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We miss pieces: reciprocate to the peers that upload to us fastest.
    Leecher,
    /// We have every piece: spread uploads over peers in turn.
    Seed,
}

/// The outcome of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<Id> {
    /// The peers to unchoke (at most [`MAX_UNCHOKED`], all interested); all others are choked.
    pub unchoke: Vec<Id>,
    /// The optimistic unchoke (leecher) or this round's random unchoke (seed), also in
    /// `unchoke`. Pass it to the next round.
    pub optimistic: Option<Id>,
}

/// Runs one choke round. `round` counts rounds from 0; `optimistic` is the previous round's
/// [`Decision::optimistic`]. Deterministic for a given `rng` state.
pub fn rechoke<Id: Copy + Eq, R: Rng + ?Sized>(
    peers: &[PeerState<Id>],
    role: Role,
    round: u64,
    optimistic: Option<Id>,
    rng: &mut R,
) -> Decision<Id> {
    match role {
        Role::Leecher => leecher(peers, round, optimistic, rng),
        Role::Seed => seed(peers, round, rng),
    }
}

fn leecher<Id: Copy + Eq, R: Rng + ?Sized>(
    peers: &[PeerState<Id>],
    round: u64,
    optimistic: Option<Id>,
    rng: &mut R,
) -> Decision<Id> {
    let mut ranked: Vec<&PeerState<Id>> = peers
        .iter()
        .filter(|p| p.interested && !p.snubbed)
        .collect();
    // Shuffle, then a stable sort: equal rates end up in random order.
    ranked.shuffle(rng);
    ranked.sort_by_key(|p| Reverse(p.download_rate));
    let mut unchoke: Vec<Id> = ranked.iter().take(REGULAR_SLOTS).map(|p| p.id).collect();

    let candidates: Vec<Id> = peers
        .iter()
        .filter(|p| p.interested && !unchoke.contains(&p.id))
        .map(|p| p.id)
        .collect();
    let kept = optimistic.filter(|id| round % OPTIMISTIC_ROUNDS != 0 && candidates.contains(id));
    let optimistic = kept.or_else(|| candidates.choose(rng).copied());
    unchoke.extend(optimistic);
    Decision {
        unchoke,
        optimistic,
    }
}

fn seed<Id: Copy + Eq, R: Rng + ?Sized>(
    peers: &[PeerState<Id>],
    round: u64,
    rng: &mut R,
) -> Decision<Id> {
    let mut ranked: Vec<&PeerState<Id>> =
        peers.iter().filter(|p| p.interested && !p.choked).collect();
    // Most recent unchoke first (never-unchoked last), then highest upload rate.
    ranked.sort_by_key(|p| Reverse((p.last_unchoked, p.upload_rate)));
    let keep = if round % OPTIMISTIC_ROUNDS == OPTIMISTIC_ROUNDS - 1 {
        MAX_UNCHOKED
    } else {
        REGULAR_SLOTS
    };
    let mut unchoke: Vec<Id> = ranked.iter().take(keep).map(|p| p.id).collect();

    let mut candidates: Vec<Id> = peers
        .iter()
        .filter(|p| p.interested && p.choked)
        .map(|p| p.id)
        .collect();
    let free = MAX_UNCHOKED - unchoke.len();
    let (picked, _) = candidates.partial_shuffle(rng, free);
    let optimistic = picked.first().copied();
    unchoke.extend_from_slice(picked);
    Decision {
        unchoke,
        optimistic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn peer(id: u32, interested: bool, download_rate: u64) -> PeerState<u32> {
        PeerState {
            id,
            interested,
            choked: true,
            download_rate,
            upload_rate: 0,
            last_unchoked: None,
            snubbed: false,
        }
    }

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    fn sorted(mut ids: Vec<u32>) -> Vec<u32> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn leecher_unchokes_the_three_fastest_interested() {
        let peers = [
            peer(1, true, 100),
            peer(2, true, 500),
            peer(3, false, 9000), // fastest, but not interested
            peer(4, true, 300),
            peer(5, true, 200),
        ];
        let d = rechoke(&peers, Role::Leecher, 0, None, &mut rng(1));
        assert_eq!(d.unchoke[..3], [2, 4, 5]);
        // The optimistic slot goes to the only other interested peer.
        assert_eq!(d.optimistic, Some(1));
        assert_eq!(d.unchoke.len(), 4);
    }

    #[test]
    fn leecher_breaks_rate_ties_at_random() {
        let peers: Vec<_> = (0..8).map(|i| peer(i, true, 0)).collect();
        let picks: std::collections::HashSet<Vec<u32>> = (0..20)
            .map(|s| rechoke(&peers, Role::Leecher, 0, None, &mut rng(s)).unchoke[..3].to_vec())
            .collect();
        assert!(picks.len() > 1, "equal rates always gave {picks:?}");
    }

    #[test]
    fn anti_snubbing_keeps_snubbed_peers_out_of_the_regular_slots() {
        let mut fast = peer(1, true, 10_000);
        fast.snubbed = true;
        let peers = [
            fast,
            peer(2, true, 10),
            peer(3, true, 20),
            peer(4, true, 30),
        ];
        let d = rechoke(&peers, Role::Leecher, 0, None, &mut rng(7));
        assert_eq!(d.unchoke[..3], [4, 3, 2]);
        // It is still eligible for the optimistic unchoke: here the only candidate.
        assert_eq!(d.optimistic, Some(1));

        assert!(is_snubbed(true, SNUB_TIMEOUT));
        assert!(!is_snubbed(true, SNUB_TIMEOUT - Duration::from_secs(1)));
        assert!(!is_snubbed(false, SNUB_TIMEOUT * 10));
    }

    #[test]
    fn optimistic_is_picked_at_random_among_the_other_interested() {
        let mut peers: Vec<_> = (0..3).map(|i| peer(i, true, 1000 + u64::from(i))).collect();
        peers.extend((10..16).map(|i| peer(i, true, 0)));
        peers.push(peer(99, false, 0));
        let mut seen = std::collections::HashSet::new();
        for s in 0..64 {
            let d = rechoke(&peers, Role::Leecher, 0, None, &mut rng(s));
            assert_eq!(sorted(d.unchoke[..3].to_vec()), [0, 1, 2]);
            let o = d.optimistic.expect("an optimistic unchoke");
            assert!((10..16).contains(&o) || (3..10).contains(&o), "{o}");
            seen.insert(o);
        }
        // Regular slots are filled by the 3 rated peers, the rest compete at random.
        assert!(seen.len() >= 4, "{seen:?}");
    }

    #[test]
    fn optimistic_rotates_every_third_round_and_is_kept_between() {
        let peers: Vec<_> = (0..10).map(|i| peer(i, true, 0)).collect();
        let mut r = rng(3);
        let mut optimistic = None;
        let mut per_period = Vec::new();
        for round in 0..30 {
            let d = rechoke(&peers, Role::Leecher, round, optimistic, &mut r);
            if round % 3 != 0 {
                // The rate ranking may move it into the regular slots; otherwise it is kept.
                if !d.unchoke[..3].contains(&optimistic.unwrap_or(u32::MAX)) {
                    assert_eq!(d.optimistic, optimistic, "round {round}");
                }
            } else {
                per_period.push(d.optimistic);
            }
            optimistic = d.optimistic;
        }
        let distinct: std::collections::HashSet<_> = per_period.iter().collect();
        assert!(distinct.len() > 1, "never rotated: {per_period:?}");
    }

    #[test]
    fn optimistic_is_replaced_when_it_leaves_or_loses_interest() {
        let peers = [
            peer(1, true, 9),
            peer(2, true, 8),
            peer(3, true, 7),
            peer(4, true, 0),
        ];
        let d = rechoke(&peers, Role::Leecher, 1, Some(42), &mut rng(0));
        assert_eq!(d.optimistic, Some(4));
        let mut bored = peers;
        bored[3].interested = false;
        let d = rechoke(&bored, Role::Leecher, 1, Some(4), &mut rng(0));
        assert_eq!(d.optimistic, None);
        assert_eq!(d.unchoke, [1, 2, 3]);
    }

    fn unchoked(id: u32, last: u64, upload_rate: u64) -> PeerState<u32> {
        PeerState {
            choked: false,
            last_unchoked: Some(last),
            upload_rate,
            ..peer(id, true, 0)
        }
    }

    #[test]
    fn seed_keeps_the_most_recently_unchoked_plus_a_random_one() {
        let peers = [
            unchoked(1, 100, 0),
            unchoked(2, 300, 0),
            unchoked(3, 200, 5),
            unchoked(4, 200, 50), // same time as 3, uploads faster: ranked first
            unchoked(5, 50, 0),
            peer(6, true, 0),
            peer(7, true, 0),
            peer(8, false, 0),
        ];
        for round in [0, 1, 3, 4] {
            let d = rechoke(&peers, Role::Seed, round, None, &mut rng(round));
            assert_eq!(d.unchoke[..3], [2, 4, 3], "round {round}");
            let r = d.optimistic.expect("a random unchoke");
            assert!(
                r == 6 || r == 7,
                "random pick {r} must be choked and interested"
            );
            assert_eq!(d.unchoke[3], r);
        }
        let mut picks = std::collections::HashSet::new();
        for s in 0..32 {
            picks.insert(rechoke(&peers, Role::Seed, 0, None, &mut rng(s)).optimistic);
        }
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn seed_keeps_the_first_four_every_third_round() {
        let peers = [
            unchoked(1, 100, 0),
            unchoked(2, 300, 0),
            unchoked(3, 200, 0),
            unchoked(4, 150, 0),
            unchoked(5, 50, 0),
            peer(6, true, 0),
        ];
        for round in [2, 5, 8] {
            let d = rechoke(&peers, Role::Seed, round, None, &mut rng(round));
            assert_eq!(d.unchoke, [2, 3, 4, 1]);
            assert_eq!(d.optimistic, None);
        }
    }

    #[test]
    fn seed_fills_free_slots_at_random() {
        let peers = [
            unchoked(1, 10, 0),
            peer(2, true, 0),
            peer(3, true, 0),
            peer(4, true, 0),
        ];
        let d = rechoke(&peers, Role::Seed, 0, None, &mut rng(5));
        assert_eq!(d.unchoke[0], 1);
        assert_eq!(sorted(d.unchoke.clone()), [1, 2, 3, 4]);
        let fresh: Vec<_> = (0..10).map(|i| peer(i, i % 2 == 0, 0)).collect();
        let d = rechoke(&fresh, Role::Seed, 2, None, &mut rng(5));
        assert_eq!(d.unchoke.len(), 4);
        assert!(d.unchoke.iter().all(|id| id % 2 == 0));
    }

    fn arb_peer() -> impl Strategy<Value = PeerState<u8>> {
        (
            any::<bool>(),
            any::<bool>(),
            0u64..5,
            0u64..5,
            proptest::option::of(0u64..5),
            any::<bool>(),
        )
            .prop_map(|(interested, choked, dl, ul, last, snubbed)| PeerState {
                id: 0,
                interested,
                choked,
                download_rate: dl,
                upload_rate: ul,
                last_unchoked: last,
                snubbed,
            })
    }

    proptest! {
        #[test]
        fn unchokes_at_most_four_interested_peers_deterministically(
            peers in proptest::collection::vec(arb_peer(), 0..20),
            seed in any::<u64>(),
            round in 0u64..10,
            previous in proptest::option::of(any::<u8>()),
            is_seed in any::<bool>(),
        ) {
            let peers: Vec<_> = peers
                .into_iter()
                .enumerate()
                .map(|(i, p)| PeerState { id: i as u8, ..p })
                .collect();
            let role = if is_seed { Role::Seed } else { Role::Leecher };
            let d = rechoke(&peers, role, round, previous, &mut rng(seed));
            prop_assert!(d.unchoke.len() <= MAX_UNCHOKED);
            for id in &d.unchoke {
                prop_assert!(peers[usize::from(*id)].interested);
            }
            let distinct: std::collections::HashSet<_> = d.unchoke.iter().collect();
            prop_assert_eq!(distinct.len(), d.unchoke.len());
            if let Some(o) = d.optimistic {
                prop_assert!(d.unchoke.contains(&o));
            }
            if role == Role::Leecher {
                // Regular slots for unsnubbed peers, then one optimistic slot if anyone is left.
                let interested = peers.iter().filter(|p| p.interested).count();
                let regular = peers
                    .iter()
                    .filter(|p| p.interested && !p.snubbed)
                    .count()
                    .min(REGULAR_SLOTS);
                prop_assert_eq!(d.unchoke.len(), regular + usize::from(interested > regular));
            }
            prop_assert_eq!(rechoke(&peers, role, round, previous, &mut rng(seed)), d);
        }
    }
}
