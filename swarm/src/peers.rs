//! One address family's peers in one swarm: a compact vector partitioned by role, with an
//! optional index for big swarms, peer ids in a parallel vector, and allocation-free sampling.
//!
//! Layout of `peers`: `[downloading leechers | partial seeds | seeders]`, with the two
//! boundaries kept as `u32`s. Role changes, inserts and removals move peers between regions
//! by swapping with a boundary element, so every operation is O(1) (plus the lookup) and keeps
//! the index and the peer-id vector aligned with the peer vector.

use ahash::RandomState;

use crate::clock::Secs;
use crate::index::Index;
use crate::registry::SelectedPeers;

/// Families this small are searched linearly; above it they get an [`Index`].
pub(crate) const INDEX_ABOVE: usize = 32;
/// An index is dropped once its family falls below this size (hysteresis).
pub(crate) const INDEX_BELOW: usize = 16;
/// Vectors grow one element at a time up to this capacity, then double.
const EXACT_GROWTH_UP_TO: usize = 8;

/// Flag bit: this peer has been counted in `downloaded`.
const COMPLETED: u8 = 1;

/// A peer's role in its swarm. The discriminant is the region of the peer vector it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Downloading (left > 0, not paused).
    Leecher = 0,
    /// BEP 21 partial seed: left > 0 but wants nothing more (event=paused).
    Partial = 1,
    /// Complete (left == 0).
    Seeder = 2,
}

impl Role {
    #[cfg(test)]
    fn from_region(r: usize) -> Self {
        match r {
            0 => Role::Leecher,
            1 => Role::Partial,
            _ => Role::Seeder,
        }
    }
}

/// One stored peer: its compact address (`N` = 6 for IPv4, 18 for IPv6: address then port,
/// big endian), when it last announced, and flags. 12 bytes for IPv4, 24 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer<const N: usize> {
    pub(crate) addr: [u8; N],
    flags: u8,
    pub(crate) last_seen: Secs,
}

impl<const N: usize> Peer<N> {
    /// A peer as stored: address, completed flag, last-seen time.
    pub(crate) fn new(addr: [u8; N], completed: bool, last_seen: Secs) -> Self {
        Self {
            addr,
            flags: if completed { COMPLETED } else { 0 },
            last_seen,
        }
    }

    /// True if this peer has been counted in `downloaded`.
    pub(crate) fn completed(&self) -> bool {
        self.flags & COMPLETED != 0
    }
}

/// What the registry lends a family for one operation: the keyed address hasher, and whether
/// peer ids are kept.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) hasher: &'a RandomState,
    pub(crate) store_ids: bool,
}

impl Ctx<'_> {
    fn hash<const N: usize>(&self, addr: &[u8; N]) -> u64 {
        self.hasher.hash_one(addr)
    }
}

/// An announce's effect on its own peer entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerUpdate<'a> {
    pub(crate) role: Role,
    /// The announce carried event=completed.
    pub(crate) completed: bool,
    pub(crate) now: Secs,
    pub(crate) peer_id: &'a [u8; 20],
}

/// The rarely needed parts of a family, boxed so small swarms pay one pointer for them.
#[derive(Debug, Default)]
struct Extra {
    /// Peer ids, aligned with `peers` when ids are kept, else empty.
    ids: Vec<[u8; 20]>,
    /// Present while the family is big.
    index: Option<Index>,
}

/// The peers of one address family in one swarm.
#[derive(Debug, Default)]
pub(crate) struct Family<const N: usize> {
    peers: Vec<Peer<N>>,
    /// End of the downloading-leecher region.
    leech_end: u32,
    /// End of the partial-seed region (start of the seeders).
    partial_end: u32,
    extra: Option<Box<Extra>>,
}

impl<const N: usize> Family<N> {
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Every peer with its role.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Peer<N>, Role)> + '_ {
        let (leech_end, partial_end) = (self.leech_end as usize, self.partial_end as usize);
        self.peers.iter().enumerate().map(move |(pos, p)| {
            let role = if pos < leech_end {
                Role::Leecher
            } else if pos < partial_end {
                Role::Partial
            } else {
                Role::Seeder
            };
            (p, role)
        })
    }

    /// A family of the given peers (in any order, none with a stored id), with room for
    /// exactly `room` more: a swarm spilling out of its record.
    pub(crate) fn from_peers(peers: &[(Peer<N>, Role)], room: usize) -> Self {
        let mut v = Vec::with_capacity(peers.len() + room);
        for role in [Role::Leecher, Role::Partial, Role::Seeder] {
            v.extend(peers.iter().filter(|(_, r)| *r == role).map(|(p, _)| *p));
        }
        let below = |role: Role| peers.iter().filter(|(_, r)| *r <= role).count();
        let bound = |role| u32::try_from(below(role)).unwrap_or(u32::MAX);
        Self {
            peers: v,
            leech_end: bound(Role::Leecher),
            partial_end: bound(Role::Partial),
            extra: None,
        }
    }

    /// Downloading leechers (not partial seeds).
    pub(crate) fn downloaders(&self) -> usize {
        self.leech_end as usize
    }

    /// Everyone not complete: leechers and partial seeds.
    pub(crate) fn incomplete(&self) -> usize {
        self.partial_end as usize
    }

    /// Complete peers.
    pub(crate) fn seeders(&self) -> usize {
        self.peers.len().saturating_sub(self.partial_end as usize)
    }

    /// Boundary `r`: 0 is the end of the leechers, 1 the end of the partial seeds.
    fn bound(&self, r: usize) -> usize {
        if r == 0 {
            self.leech_end as usize
        } else {
            self.partial_end as usize
        }
    }

    fn set_bound(&mut self, r: usize, v: usize) {
        // Families never exceed the registry's peer cap, far below u32::MAX.
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        if r == 0 {
            self.leech_end = v;
        } else {
            self.partial_end = v;
        }
    }

    fn region_of(&self, pos: usize) -> usize {
        if pos < self.leech_end as usize {
            0
        } else if pos < self.partial_end as usize {
            1
        } else {
            2
        }
    }

    fn index(&self) -> Option<&Index> {
        self.extra.as_ref().and_then(|e| e.index.as_ref())
    }

    /// The position of the peer at `addr`, if stored.
    pub(crate) fn find(&self, ctx: Ctx<'_>, addr: &[u8; N]) -> Option<usize> {
        match self.index() {
            Some(index) => {
                let peers = &self.peers;
                let b = index.find(ctx.hash(addr), |s| {
                    peers.get(s).is_some_and(|p| p.addr == *addr)
                })?;
                Some(index.slot(b))
            }
            None => self.peers.iter().position(|p| p.addr == *addr),
        }
    }

    /// Updates or inserts the requester's entry, then samples up to `numwant` peers for it into
    /// `out`. Returns (stored, newly counted as completed).
    pub(crate) fn announce(
        &mut self,
        ctx: Ctx<'_>,
        addr: &[u8; N],
        upd: &PeerUpdate<'_>,
        can_insert: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> (bool, bool) {
        let (pos, newly_completed) = match self.find(ctx, addr) {
            Some(pos) => {
                let mut newly = false;
                if let Some(peer) = self.peers.get_mut(pos) {
                    peer.last_seen = upd.now;
                    newly = upd.completed && peer.flags & COMPLETED == 0;
                    if newly {
                        peer.flags |= COMPLETED;
                    }
                }
                if ctx.store_ids {
                    if let Some(id) = self.extra.as_mut().and_then(|e| e.ids.get_mut(pos)) {
                        *id = *upd.peer_id;
                    }
                }
                (Some(self.set_role(ctx, pos, upd.role)), newly)
            }
            None if can_insert => (Some(self.insert(ctx, addr, upd)), upd.completed),
            None => (None, false),
        };
        if numwant > 0 {
            self.select(pos, upd.role != Role::Leecher, numwant, out);
        }
        (pos.is_some(), newly_completed)
    }

    /// Samples up to `numwant` of this family's peers (anyone, seeders included) into `out`
    /// without touching any entry: a read-only lookup such as a DHT `get_peers`.
    pub(crate) fn sample(&self, numwant: usize, out: &mut SelectedPeers) {
        self.select(None, false, numwant, out);
    }

    /// Removes the peer at `addr`; true if it was there.
    pub(crate) fn remove_addr(&mut self, ctx: Ctx<'_>, addr: &[u8; N]) -> bool {
        match self.find(ctx, addr) {
            Some(pos) => {
                self.remove_at(ctx, pos);
                self.tidy(ctx);
                true
            }
            None => false,
        }
    }

    /// Removes every peer with `last_seen < cutoff`; returns how many.
    pub(crate) fn expire(&mut self, ctx: Ctx<'_>, cutoff: Secs) -> usize {
        let mut removed = 0;
        let mut i = 0;
        // Removal only moves not-yet-visited peers (at positions >= i) into position i or
        // beyond, so one pass visits everyone.
        while i < self.peers.len() {
            if self.peers[i].last_seen < cutoff {
                self.remove_at(ctx, i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        if removed > 0 {
            self.tidy(ctx);
        }
        removed
    }

    /// Appends a new peer and moves it into its role's region; returns its position.
    fn insert(&mut self, ctx: Ctx<'_>, addr: &[u8; N], upd: &PeerUpdate<'_>) -> usize {
        let pos = self.peers.len();
        let flags = if upd.completed { COMPLETED } else { 0 };
        push_small(
            &mut self.peers,
            Peer {
                addr: *addr,
                flags,
                last_seen: upd.now,
            },
        );
        if ctx.store_ids {
            let extra = self.extra.get_or_insert_with(Default::default);
            push_small(&mut extra.ids, *upd.peer_id);
        }
        let len = pos + 1;
        match self.extra.as_mut().and_then(|e| e.index.as_mut()) {
            Some(index) if index.fits(len) => index.insert(ctx.hash(addr), pos),
            Some(_) => self.rebuild_index(ctx),
            None if len > INDEX_ABOVE => self.rebuild_index(ctx),
            None => {}
        }
        // A new peer sits at the end, in the seeder region; move it down as needed.
        self.set_role(ctx, pos, upd.role)
    }

    /// Moves the peer at `pos` into `role`'s region, one boundary at a time; returns its new
    /// position.
    fn set_role(&mut self, ctx: Ctx<'_>, mut pos: usize, role: Role) -> usize {
        let mut r = self.region_of(pos);
        let target = role as usize;
        while r < target {
            // Swap with the last element of region r, then shrink region r by one: the peer is
            // now the first element of region r + 1.
            let last = self.bound(r).saturating_sub(1);
            self.swap(ctx, pos, last);
            self.set_bound(r, last);
            pos = last;
            r += 1;
        }
        while r > target {
            // Swap with the first element of region r, then grow region r - 1 by one: the peer
            // is now the last element of region r - 1.
            let first = self.bound(r - 1);
            self.swap(ctx, pos, first);
            self.set_bound(r - 1, first + 1);
            pos = first;
            r -= 1;
        }
        pos
    }

    /// Removes the peer at `pos` (does not shrink anything: see [`Family::tidy`]).
    fn remove_at(&mut self, ctx: Ctx<'_>, pos: usize) {
        if pos >= self.peers.len() {
            return;
        }
        let pos = self.set_role(ctx, pos, Role::Seeder);
        let last = self.peers.len() - 1;
        self.swap(ctx, pos, last);
        let mut resync = false;
        if let Some(index) = self.extra.as_mut().and_then(|e| e.index.as_mut()) {
            let peers = &self.peers;
            match index.find(ctx.hash(&peers[last].addr), |s| s == last) {
                Some(b) => index.remove(b, |s| peers.get(s).map_or(0, |p| ctx.hash(&p.addr))),
                None => resync = true,
            }
        }
        self.peers.pop();
        if let Some(extra) = self.extra.as_mut() {
            if ctx.store_ids && extra.ids.len() == last + 1 {
                extra.ids.pop();
            }
        }
        if resync {
            debug_assert!(false, "peer index out of sync on removal");
            self.rebuild_index(ctx);
        }
    }

    /// Swaps two peers, keeping the index and the id vector aligned.
    fn swap(&mut self, ctx: Ctx<'_>, a: usize, b: usize) {
        let len = self.peers.len();
        if a == b || a >= len || b >= len {
            return;
        }
        let mut resync = false;
        if let Some(extra) = self.extra.as_mut() {
            if let Some(index) = extra.index.as_mut() {
                // Find both buckets before touching either: each slot number appears once.
                let ba = index.find(ctx.hash(&self.peers[a].addr), |s| s == a);
                let bb = index.find(ctx.hash(&self.peers[b].addr), |s| s == b);
                match (ba, bb) {
                    (Some(ba), Some(bb)) => {
                        index.set(ba, b);
                        index.set(bb, a);
                    }
                    _ => resync = true,
                }
            }
            if extra.ids.len() == len {
                extra.ids.swap(a, b);
            }
        }
        self.peers.swap(a, b);
        if resync {
            debug_assert!(false, "peer index out of sync on swap");
            self.rebuild_index(ctx);
        }
    }

    /// Rebuilds the index from the peer vector (creating it if absent).
    fn rebuild_index(&mut self, ctx: Ctx<'_>) {
        let index = Index::build(self.peers.iter().map(|p| ctx.hash(&p.addr)));
        self.extra.get_or_insert_with(Default::default).index = Some(index);
    }

    /// Gives memory back after removals: shrinks vectors, drops or shrinks the index, and drops
    /// the boxed extras once they hold nothing.
    fn tidy(&mut self, ctx: Ctx<'_>) {
        let len = self.peers.len();
        shrink(&mut self.peers);
        let mut rebuild = false;
        if let Some(extra) = self.extra.as_mut() {
            shrink(&mut extra.ids);
            if len < INDEX_BELOW {
                extra.index = None;
            } else if extra.index.as_ref().is_some_and(|i| i.too_sparse(len)) {
                rebuild = true;
            }
            if extra.ids.is_empty() && extra.index.is_none() {
                self.extra = None;
            }
        }
        if rebuild {
            self.rebuild_index(ctx);
        }
    }

    /// Writes a random sample of up to `numwant` peers into `out`, never the peer at
    /// `requester`; only downloading leechers if `leechers_only`.
    ///
    /// Sampling is [`crate::sample::sample`]: distinct candidates, no scratch memory.
    fn select(
        &self,
        requester: Option<usize>,
        leechers_only: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) {
        let end = if leechers_only {
            self.downloaders().min(self.peers.len())
        } else {
            self.peers.len()
        };
        let skip = requester.filter(|&r| r < end);
        let m = end - usize::from(skip.is_some());
        let k = numwant.min(m);
        if k == 0 {
            return;
        }
        let ids = self
            .extra
            .as_ref()
            .map(|e| &e.ids[..])
            .filter(|ids| ids.len() == self.peers.len());
        let emit = |i: usize| {
            // Candidate i of the m, stepping over the requester.
            let p = match skip {
                Some(r) if i >= r => i + 1,
                _ => i,
            };
            if let Some(peer) = self.peers.get(p) {
                out.compact.extend_from_slice(&peer.addr);
                if let Some(id) = ids.and_then(|ids| ids.get(p)) {
                    out.peer_ids.extend_from_slice(id);
                }
            }
        };
        crate::sample::sample(m, k, emit);
    }
}

/// Pushes onto a vector that grows one element at a time while small (most swarms hold 1-3
/// peers), then by doubling.
fn push_small<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() && v.capacity() < EXACT_GROWTH_UP_TO {
        v.reserve_exact(1);
    }
    v.push(item);
}

/// Frees an empty vector, halves one at most a quarter full.
fn shrink<T>(v: &mut Vec<T>) {
    if v.is_empty() {
        *v = Vec::new();
    } else if v.len().saturating_mul(4) <= v.capacity() {
        v.shrink_to(v.len() * 2);
    }
}

#[cfg(test)]
mod tests;
