//! A compact binary trie of nodes keyed by id, for the bootstrap-mode table of millions of
//! verified nodes: `2^root_bits` subtries indexed directly by the id's first bits (so a lookup
//! skips the top levels, which would each cost a cache miss), leaves of up to [`LEAF_CAP`]
//! entries split by the next id bit when they overflow and merged back when they empty out.
//!
//! The `n` nodes closest to a target are found by a depth-first walk that visits subtries in
//! increasing XOR distance of their prefixes (skipping empty ones 64 at a time with a bitmap)
//! and, inside one, enters the child matching the target's bit first: every node under the near
//! child is closer than every node under the far one, so leaves are met in increasing distance
//! and the walk stops once `n` nodes are collected. Cost: a few levels plus a leaf or two,
//! whatever the table's size.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use swarmd_proto::NodeId;

use crate::{Distance, NodeInfo};

/// Most entries in one leaf before it splits.
pub(crate) const LEAF_CAP: usize = 16;

/// The address bytes of one family, stored inline.
pub(crate) trait IpBytes: Copy + Eq + Debug + Send + 'static {
    /// The address.
    fn to_ip(self) -> IpAddr;
    /// The bytes of `ip`, if it is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
}

impl IpBytes for [u8; 4] {
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(v4) => Some(v4.octets()),
            IpAddr::V6(_) => None,
        }
    }
}

impl IpBytes for [u8; 16] {
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(v6) => Some(v6.octets()),
            IpAddr::V4(_) => None,
        }
    }
}

/// One verified node: 32 bytes for IPv4, 44 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored<A> {
    pub(crate) id: [u8; 20],
    pub(crate) ip: A,
    pub(crate) port: u16,
    /// When it last answered us, in seconds on the table's clock.
    pub(crate) verified: u32,
    /// Verification pings it failed in a row.
    pub(crate) fails: u8,
    /// A verification ping of ours is in flight.
    pub(crate) pinging: bool,
}

impl<A: IpBytes> Stored<A> {
    pub(crate) fn info(&self) -> NodeInfo {
        NodeInfo {
            id: NodeId(self.id),
            addr: SocketAddr::new(self.ip.to_ip(), self.port),
        }
    }

    pub(crate) fn addr_is(&self, addr: SocketAddr) -> bool {
        self.port == addr.port() && A::from_ip(addr.ip()) == Some(self.ip)
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Children for bit 0 and bit 1 at this depth.
    Inner(u32, u32),
    /// Index into `leaves`.
    Leaf(u32),
}

/// The trie. Slots `0..2^root_bits` are the subtrie roots, by id prefix.
#[derive(Debug)]
pub(crate) struct NodeStore<A> {
    root_bits: u32,
    /// One bit per subtrie: set if it holds an entry.
    nonempty: Vec<u64>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    leaves: Vec<Vec<Stored<A>>>,
    free_leaves: Vec<u32>,
    len: usize,
}

fn bit(id: &[u8; 20], depth: usize) -> bool {
    id[depth / 8] & (0x80 >> (depth % 8)) != 0
}

fn usize_of(i: u32) -> usize {
    i as usize
}

/// Subtrie root bits for a store of up to `max` entries: about 16 entries (one leaf) per
/// subtrie when full, so a lookup costs one or two cache misses; between 2^6 and 2^20
/// subtries (36 bytes each).
pub(crate) fn root_bits_for(max: usize) -> u32 {
    (max / 16).max(1).ilog2().clamp(6, 20)
}

impl<A: IpBytes> NodeStore<A> {
    /// An empty store with `2^root_bits` subtries (`root_bits` within 6..=20).
    pub(crate) fn new(root_bits: u32) -> Self {
        let root_bits = root_bits.clamp(6, 20);
        let roots = 1usize << root_bits;
        Self {
            root_bits,
            nonempty: vec![0; roots / 64],
            slots: (0..roots as u32).map(Slot::Leaf).collect(),
            free_slots: Vec::new(),
            leaves: (0..roots).map(|_| Vec::new()).collect(),
            free_leaves: Vec::new(),
            len: 0,
        }
    }

    /// The subtrie (root slot) of `id`.
    fn root(&self, id: &[u8; 20]) -> u32 {
        u32::from_be_bytes([id[0], id[1], id[2], id[3]]) >> (32 - self.root_bits)
    }

    /// Updates the non-empty bit of the subtrie at root slot `r`.
    fn mark(&mut self, r: u32) {
        let empty =
            matches!(self.slots[usize_of(r)], Slot::Leaf(l) if self.leaves[usize_of(l)].is_empty());
        let (w, b) = (usize_of(r / 64), r % 64);
        if empty {
            self.nonempty[w] &= !(1 << b);
        } else {
            self.nonempty[w] |= 1 << b;
        }
    }

    /// Entries stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The leaf holding (or that would hold) `id`, and its depth.
    fn leaf_of(&self, id: &[u8; 20]) -> (u32, usize) {
        let (mut slot, mut depth) = (self.root(id), self.root_bits as usize);
        loop {
            match self.slots[usize_of(slot)] {
                Slot::Inner(a, b) => {
                    slot = if bit(id, depth) { b } else { a };
                    depth += 1;
                }
                Slot::Leaf(l) => return (l, depth),
            }
        }
    }

    /// The entry with this id.
    pub(crate) fn get(&self, id: &[u8; 20]) -> Option<&Stored<A>> {
        let (l, _) = self.leaf_of(id);
        self.leaves[usize_of(l)].iter().find(|e| e.id == *id)
    }

    /// The entry with this id, to update.
    pub(crate) fn get_mut(&mut self, id: &[u8; 20]) -> Option<&mut Stored<A>> {
        let (l, _) = self.leaf_of(id);
        self.leaves[usize_of(l)].iter_mut().find(|e| e.id == *id)
    }

    /// The entries sharing a leaf with `id` (eviction candidates near it).
    pub(crate) fn neighbours(&self, id: &[u8; 20]) -> &[Stored<A>] {
        let (l, _) = self.leaf_of(id);
        &self.leaves[usize_of(l)]
    }

    /// Inserts `e`, or replaces the entry with its id; true if it was new.
    pub(crate) fn insert(&mut self, e: Stored<A>) -> bool {
        let root = self.root(&e.id);
        let (mut slot, mut depth) = (root, self.root_bits as usize);
        let l = loop {
            match self.slots[usize_of(slot)] {
                Slot::Inner(a, b) => {
                    slot = if bit(&e.id, depth) { b } else { a };
                    depth += 1;
                }
                Slot::Leaf(l) => break l,
            }
        };
        let leaf = &mut self.leaves[usize_of(l)];
        if let Some(old) = leaf.iter_mut().find(|o| o.id == e.id) {
            *old = e;
            return false;
        }
        if leaf.len() == leaf.capacity() {
            // Grow by a few entries at a time: leaves are small and many.
            leaf.reserve_exact(4);
        }
        leaf.push(e);
        self.len += 1;
        if leaf.len() > LEAF_CAP {
            self.split(slot, depth);
        }
        self.mark(root);
        true
    }

    /// Splits the leaf at `slot` (at `depth`) by bit `depth`, again if one side overflows.
    fn split(&mut self, slot: u32, depth: usize) {
        let (mut slot, mut depth) = (slot, depth);
        // Ids are unique, so some depth below 160 separates them.
        while depth < 160 {
            let Slot::Leaf(l) = self.slots[usize_of(slot)] else {
                return;
            };
            let entries = std::mem::take(&mut self.leaves[usize_of(l)]);
            let (ones, zeros): (Vec<_>, Vec<_>) =
                entries.into_iter().partition(|e| bit(&e.id, depth));
            let (over_one, over_zero) = (ones.len() > LEAF_CAP, zeros.len() > LEAF_CAP);
            self.leaves[usize_of(l)] = shrink(zeros);
            let lb = self.new_leaf(shrink(ones));
            let a = self.new_slot(Slot::Leaf(l));
            let b = self.new_slot(Slot::Leaf(lb));
            self.slots[usize_of(slot)] = Slot::Inner(a, b);
            depth += 1;
            slot = match (over_zero, over_one) {
                (true, _) => a,
                (_, true) => b,
                _ => return,
            };
        }
    }

    fn new_leaf(&mut self, v: Vec<Stored<A>>) -> u32 {
        match self.free_leaves.pop() {
            Some(i) => {
                self.leaves[usize_of(i)] = v;
                i
            }
            None => {
                self.leaves.push(v);
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn new_slot(&mut self, s: Slot) -> u32 {
        match self.free_slots.pop() {
            Some(i) => {
                self.slots[usize_of(i)] = s;
                i
            }
            None => {
                self.slots.push(s);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Removes the entry with this id, merging leaves that empty out.
    pub(crate) fn remove(&mut self, id: &[u8; 20]) -> Option<Stored<A>> {
        let root = self.root(id);
        let r = self.remove_at(root, self.root_bits as usize, id);
        if r.is_some() {
            self.len -= 1;
            self.mark(root);
        }
        r
    }

    fn remove_at(&mut self, slot: u32, depth: usize, id: &[u8; 20]) -> Option<Stored<A>> {
        match self.slots[usize_of(slot)] {
            Slot::Leaf(l) => {
                let leaf = &mut self.leaves[usize_of(l)];
                let pos = leaf.iter().position(|e| e.id == *id)?;
                let e = leaf.swap_remove(pos);
                if leaf.capacity() > leaf.len() + 8 {
                    leaf.shrink_to(leaf.len() + 2);
                }
                Some(e)
            }
            Slot::Inner(a, b) => {
                let child = if bit(id, depth) { b } else { a };
                let e = self.remove_at(child, depth + 1, id)?;
                if let (Slot::Leaf(la), Slot::Leaf(lb)) =
                    (self.slots[usize_of(a)], self.slots[usize_of(b)])
                {
                    let (na, nb) = (
                        self.leaves[usize_of(la)].len(),
                        self.leaves[usize_of(lb)].len(),
                    );
                    if na + nb <= LEAF_CAP / 2 {
                        let moved = std::mem::take(&mut self.leaves[usize_of(lb)]);
                        let leaf = &mut self.leaves[usize_of(la)];
                        leaf.extend(moved);
                        leaf.shrink_to(leaf.len() + 2);
                        self.free_leaves.push(lb);
                        self.free_slots.extend([a, b]);
                        self.slots[usize_of(slot)] = Slot::Leaf(la);
                    }
                }
                Some(e)
            }
        }
    }

    /// Appends to `out` the `n` entries accepted by `usable` closest to `target` by XOR
    /// distance, closest first (fewer if the store holds fewer).
    pub(crate) fn closest(
        &self,
        target: &[u8; 20],
        n: usize,
        usable: impl Fn(&Stored<A>) -> bool + Copy,
        out: &mut Vec<NodeInfo>,
    ) {
        let start = out.len();
        let until = start + n;
        // Subtries in increasing distance `d = r ^ t`: 64 at a time by the high bits of `d`,
        // skipping empty groups with the bitmap.
        let t = self.root(target);
        let depth = self.root_bits as usize;
        for m in 0..self.nonempty.len() as u32 {
            let w = (t / 64) ^ m;
            let word = self.nonempty[usize_of(w)];
            if word == 0 {
                continue;
            }
            for low in 0..64 {
                let bit = (t % 64) ^ low;
                if word & (1 << bit) != 0 {
                    self.collect(w * 64 + bit, depth, target, until, usable, out);
                    if out.len() >= until {
                        out.truncate(until);
                        return;
                    }
                }
            }
        }
    }

    fn collect(
        &self,
        slot: u32,
        depth: usize,
        target: &[u8; 20],
        until: usize,
        usable: impl Fn(&Stored<A>) -> bool + Copy,
        out: &mut Vec<NodeInfo>,
    ) {
        if out.len() >= until {
            return;
        }
        match self.slots[usize_of(slot)] {
            Slot::Leaf(l) => {
                // Distances computed once per entry, sorted on the stack.
                let leaf = &self.leaves[usize_of(l)];
                let d = Distance::from(&NodeId(*target));
                let mut keys = [((0u128, 0u32), 0u8); LEAF_CAP + 1];
                let mut n = 0;
                for (i, e) in leaf.iter().enumerate().take(LEAF_CAP + 1) {
                    if usable(e) {
                        keys[n] = (d.to(&NodeId(e.id)), i as u8);
                        n += 1;
                    }
                }
                let keys = &mut keys[..n];
                keys.sort_unstable_by_key(|k| k.0);
                out.extend(keys.iter().map(|k| leaf[usize::from(k.1)].info()));
            }
            Slot::Inner(a, b) => {
                let (near, far) = if bit(target, depth) { (b, a) } else { (a, b) };
                self.collect(near, depth + 1, target, until, usable, out);
                self.collect(far, depth + 1, target, until, usable, out);
            }
        }
    }

    /// Calls `f` on every entry of the leaf holding `cursor`; returns the first id past that
    /// leaf's range, or `None` after the last leaf (so callers sweep the table leaf by leaf).
    pub(crate) fn visit_leaf(
        &mut self,
        cursor: &[u8; 20],
        f: impl FnMut(&mut Stored<A>),
    ) -> Option<[u8; 20]> {
        let (l, depth) = self.leaf_of(cursor);
        self.leaves[usize_of(l)].iter_mut().for_each(f);
        // The leaf covers ids starting with cursor's first `depth` bits: add one at bit
        // `depth - 1` and clear the rest.
        let mut next = *cursor;
        for i in depth..160 {
            next[i / 8] &= !(0x80 >> (i % 8));
        }
        for i in (0..depth).rev() {
            let mask = 0x80 >> (i % 8);
            if next[i / 8] & mask == 0 {
                next[i / 8] |= mask;
                return Some(next);
            }
            next[i / 8] &= !mask;
        }
        None
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Stored<A>> + '_ {
        self.leaves.iter().flatten()
    }

    /// Checks the trie's invariants (tests): every entry sits under the path of its id bits,
    /// leaves are within capacity, the count is right.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut count = 0;
        for r in 0..(1u32 << self.root_bits) {
            let before = count;
            let path = (0..self.root_bits)
                .map(|i| r & (1 << (self.root_bits - 1 - i)) != 0)
                .collect();
            self.check_at(r, &mut { path }, &mut count);
            let set = self.nonempty[usize_of(r / 64)] & (1 << (r % 64)) != 0;
            assert_eq!(set, count > before, "non-empty bit of subtrie {r}");
        }
        assert_eq!(count, self.len);
    }

    #[cfg(test)]
    fn check_at(&self, slot: u32, path: &mut Vec<bool>, count: &mut usize) {
        match self.slots[usize_of(slot)] {
            Slot::Leaf(l) => {
                let leaf = &self.leaves[usize_of(l)];
                assert!(leaf.len() <= LEAF_CAP);
                for e in leaf {
                    for (d, &b) in path.iter().enumerate() {
                        assert_eq!(bit(&e.id, d), b);
                    }
                }
                *count += leaf.len();
            }
            Slot::Inner(a, b) => {
                for (child, side) in [(a, false), (b, true)] {
                    path.push(side);
                    self.check_at(child, path, count);
                    path.pop();
                }
            }
        }
    }
}

/// A leaf's vector with a little room to grow.
fn shrink<A>(mut v: Vec<A>) -> Vec<A> {
    v.shrink_to(v.len() + 2);
    v
}
