//! A compact binary trie of nodes keyed by id, for the bootstrap-mode table of millions of
//! verified nodes: leaves of up to [`LEAF_CAP`] entries, split by the next id bit when they
//! overflow and merged back when they empty out.
//!
//! The `n` nodes closest to a target are found by a depth-first walk that enters the child
//! matching the target's bit first: every node under the near child is closer than every node
//! under the far one, so leaves are met in increasing distance and the walk stops once `n`
//! nodes are collected. Cost: the trie's depth (about `log2(len / 10)`) plus a leaf or two,
//! whatever the table's size.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use swarmd_proto::NodeId;

use crate::NodeInfo;

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

/// The trie. Slot 0 is the root.
#[derive(Debug)]
pub(crate) struct NodeStore<A> {
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

impl<A: IpBytes> Default for NodeStore<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: IpBytes> NodeStore<A> {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self {
            slots: vec![Slot::Leaf(0)],
            free_slots: Vec::new(),
            leaves: vec![Vec::new()],
            free_leaves: Vec::new(),
            len: 0,
        }
    }

    /// Entries stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The leaf holding (or that would hold) `id`, and its depth.
    fn leaf_of(&self, id: &[u8; 20]) -> (u32, usize) {
        let (mut slot, mut depth) = (0u32, 0usize);
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
        let (mut slot, mut depth) = (0u32, 0usize);
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
        let r = self.remove_at(0, 0, id);
        if r.is_some() {
            self.len -= 1;
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
        self.collect(0, 0, target, start + n, usable, out);
        out.truncate(start + n);
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
                let start = out.len();
                out.extend(
                    self.leaves[usize_of(l)]
                        .iter()
                        .filter(|e| usable(e))
                        .map(Stored::info),
                );
                let t = NodeId(*target);
                out[start..].sort_unstable_by_key(|x| t.distance(&x.id));
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
        self.check_at(0, &mut Vec::new(), &mut count);
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
