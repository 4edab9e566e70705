//! The inline part of a record: up to [`INLINE_PEERS`] IPv4 peers of 12 bytes, and the 24-byte
//! body that holds them or a big swarm's number and figures.

use crate::clock::Secs;
use crate::peers::{Peer, Role};
use crate::registry::SelectedPeers;
use crate::swarm::RoleCounts;

use super::INLINE_PEERS;

/// An IPv4 peer held in its record: 12 bytes. Its `role` and `completed` bytes come first, so
/// [`Body`] can keep its variant in their spare values and lay any other variant out after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Inline {
    pub(super) role: Role,
    /// Counted in `downloaded`.
    pub(super) completed: bool,
    pub(super) addr: [u8; 6],
    pub(super) last_seen: Secs,
}

impl Inline {
    /// A big swarm's IPv4 peer, moving back into its record.
    pub(super) fn from_entry((p, role): (&Peer<6>, Role)) -> Self {
        Self {
            addr: p.addr,
            role,
            completed: p.completed(),
            last_seen: p.last_seen,
        }
    }
}

/// A record's peers: 24 bytes, the variant kept in a niche of the first inline peer.
#[derive(Debug, Default)]
pub(super) enum Body {
    /// A vacant record.
    #[default]
    Vacant,
    /// No peers: a live record only within a single operation.
    Empty,
    One(Inline),
    Two([Inline; INLINE_PEERS]),
    /// A swarm in the shard's [`Bigs`], with its scrape figures as of its last change.
    Big {
        slot: u32,
        complete: u32,
        incomplete: u32,
        downloaders: u32,
    },
}

impl Body {
    /// The inline peers (none if the swarm is big).
    #[inline]
    pub(super) fn inline(&self) -> &[Inline] {
        match self {
            Body::One(p) => std::slice::from_ref(p),
            Body::Two(ps) => ps,
            Body::Vacant | Body::Empty | Body::Big { .. } => &[],
        }
    }

    pub(super) fn inline_mut(&mut self) -> &mut [Inline] {
        match self {
            Body::One(p) => std::slice::from_mut(p),
            Body::Two(ps) => ps,
            Body::Vacant | Body::Empty | Body::Big { .. } => &mut [],
        }
    }

    /// The big swarm's number, if the swarm is big.
    #[inline]
    pub(super) fn slot(&self) -> Option<u32> {
        match self {
            Body::Big { slot, .. } => Some(*slot),
            _ => None,
        }
    }

    /// Inline peers from an iterator of at most [`INLINE_PEERS`] (more are dropped).
    pub(super) fn from_inline(mut peers: impl Iterator<Item = Inline>) -> Self {
        match (peers.next(), peers.next()) {
            (Some(a), Some(b)) => Body::Two([a, b]),
            (Some(a), None) => Body::One(a),
            _ => Body::Empty,
        }
    }

    /// Adds an inline peer; the caller ensures there is room.
    pub(super) fn push(&mut self, p: Inline) {
        *self = match std::mem::take(self) {
            Body::Vacant | Body::Empty => Body::One(p),
            Body::One(a) => Body::Two([a, p]),
            full => {
                debug_assert!(false, "no room inline");
                full
            }
        };
    }

    /// Removes inline peer `i`.
    pub(super) fn remove(&mut self, i: usize) {
        *self = match std::mem::take(self) {
            Body::Two([a, b]) => Body::One(if i == 0 { b } else { a }),
            Body::One(_) | Body::Empty | Body::Vacant => Body::Empty,
            big @ Body::Big { .. } => big,
        };
    }
}

/// The role counts of inline peers.
#[inline]
pub(super) fn inline_counts(peers: &[Inline]) -> RoleCounts {
    let seeders = peers.iter().filter(|p| p.role == Role::Seeder).count() as u64;
    [seeders, peers.len() as u64 - seeders, 0, 0]
}

/// Writes a random sample of up to `numwant` inline peers into `out`, never peer `requester`;
/// only downloading leechers if `leechers_only`.
pub(super) fn select_inline(
    peers: &[Inline],
    requester: Option<usize>,
    leechers_only: bool,
    numwant: usize,
    out: &mut SelectedPeers,
) {
    let mut candidates = [0; INLINE_PEERS];
    let mut m = 0;
    for (i, p) in peers.iter().enumerate() {
        if Some(i) != requester && (!leechers_only || p.role == Role::Leecher) {
            candidates[m] = i;
            m += 1;
        }
    }
    crate::sample::sample(m, numwant, |j| {
        out.compact.extend_from_slice(&peers[candidates[j]].addr);
    });
}
