//! The Kademlia routing table of BEP 5: buckets of up to [`K`] nodes by shared prefix with our
//! id, the bucket holding our id split as it fills, good/questionable/bad node states, a
//! replacement cache per bucket and refresh timers.
//!
//! Only nodes that answered a query of ours are inserted ([`RoutingTable::insert_verified`]):
//! a querier or a node named in a `nodes` list is pinged first. So a spoofed source can never
//! enter the table. Bucket `i` (for `i` below the last) holds nodes sharing exactly `i` leading
//! bits with our id; the last bucket holds every node sharing at least as many. The table never
//! holds more than `160 * K` nodes, and [`RoutingTable::closest`] reads at most the target's
//! bucket, the buckets below it and as many above as it needs: its cost does not grow with the
//! number of nodes in the network.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use swarmd_proto::NodeId;

use crate::{Distance, NodeInfo};

/// Nodes per bucket (BEP 5's `K`).
pub const K: usize = 8;
/// A node is good for this long after it answered us, or queried us after having answered once.
pub(crate) const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Consecutive failed queries after which a node is bad.
pub(crate) const BAD_AFTER_FAILS: u8 = 2;
/// A bucket unchanged for this long is refreshed with a lookup of a random id in its range.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

/// A node in the table and what we know of its liveness.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) node: NodeInfo,
    /// When it last answered a query of ours.
    pub(crate) last_response: Instant,
    /// When it last queried us.
    pub(crate) last_query: Option<Instant>,
    /// Queries of ours it failed to answer in a row.
    pub(crate) fails: u8,
    /// When we last sent it a liveness ping still unanswered.
    pub(crate) pinged: Option<Instant>,
}

impl Entry {
    fn new(node: NodeInfo, now: Instant) -> Self {
        Self {
            node,
            last_response: now,
            last_query: None,
            fails: 0,
            pinged: None,
        }
    }

    /// BEP 5 "good": answered within 15 minutes, or queried us within 15 minutes (having
    /// answered once, which every entry has), and not failing.
    pub(crate) fn is_good(&self, now: Instant) -> bool {
        let recent = |t: Instant| now.saturating_duration_since(t) < GOOD_FOR;
        self.fails == 0 && (recent(self.last_response) || self.last_query.is_some_and(recent))
    }

    /// BEP 5 "bad": failed several queries in a row.
    pub(crate) fn is_bad(&self) -> bool {
        self.fails >= BAD_AFTER_FAILS
    }

    /// Handed out in replies and used to seed lookups: not currently failing.
    fn is_usable(&self) -> bool {
        self.fails == 0
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    nodes: Vec<Entry>,
    /// Verified nodes waiting for a slot, oldest first.
    replacements: Vec<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }

    /// Puts `e` at the most-recent end of the replacement cache (dropping the oldest if full).
    fn add_replacement(&mut self, e: Entry) {
        self.replacements.retain(|r| r.node.id != e.node.id);
        if self.replacements.len() >= K {
            self.replacements.remove(0);
        }
        self.replacements.push(e);
    }
}

/// What [`RoutingTable::insert_verified`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// A new node took a slot.
    Added,
    /// A node already in the table was refreshed.
    Updated,
    /// The bucket is full of live nodes: the node waits in the replacement cache.
    Cached,
    /// Refused (our own id, or its id is held by a live node at another address).
    Rejected,
}

/// A Kademlia routing table for one address family.
#[derive(Debug, Clone)]
pub(crate) struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table around our id `own`.
    pub(crate) fn new(own: NodeId, now: Instant) -> Self {
        Self {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Nodes in the table (replacements not counted).
    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// True if the table holds no node.
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.nodes.is_empty())
    }

    fn index(&self, id: &NodeId) -> usize {
        (self.own.common_prefix_len(id) as usize).min(self.buckets.len() - 1)
    }

    /// Every node in the table.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// True if `id` is in the table at `addr`: a source that answered us before.
    pub(crate) fn contains(&self, id: &NodeId, addr: SocketAddr) -> bool {
        self.buckets[self.index(id)]
            .nodes
            .iter()
            .any(|e| e.node.id == *id && e.node.addr == addr)
    }

    /// Would a verified node with this id get a slot (so is it worth pinging)? False if it is
    /// already in the table.
    pub(crate) fn wants(&self, id: &NodeId) -> bool {
        if *id == self.own {
            return false;
        }
        let i = self.index(id);
        let b = &self.buckets[i];
        if b.nodes.iter().any(|e| e.node.id == *id) {
            return false;
        }
        b.nodes.len() < K
            || (i == self.buckets.len() - 1 && self.buckets.len() < 160)
            || b.nodes.iter().any(Entry::is_bad)
    }

    /// Records that `node` answered a query of ours at `now`.
    pub(crate) fn insert_verified(&mut self, node: NodeInfo, now: Instant) -> Inserted {
        if node.id == self.own {
            return Inserted::Rejected;
        }
        loop {
            let i = self.index(&node.id);
            let count = self.buckets.len();
            let b = &mut self.buckets[i];
            if let Some(e) = b.nodes.iter_mut().find(|e| e.node.id == node.id) {
                if e.node.addr != node.addr && e.is_good(now) {
                    // A live node keeps its slot: the newcomer may be an impostor.
                    return Inserted::Rejected;
                }
                e.node.addr = node.addr;
                e.last_response = now;
                e.fails = 0;
                e.pinged = None;
                b.last_changed = now;
                return Inserted::Updated;
            }
            if b.nodes.len() < K {
                b.replacements.retain(|r| r.node.id != node.id);
                b.nodes.push(Entry::new(node, now));
                b.last_changed = now;
                self.forget_addr(node, now);
                return Inserted::Added;
            }
            if i == count - 1 && count < 160 {
                self.split(now);
                continue;
            }
            if let Some(bad) = b.nodes.iter().position(Entry::is_bad) {
                b.nodes[bad] = Entry::new(node, now);
                b.last_changed = now;
                self.forget_addr(node, now);
                return Inserted::Added;
            }
            b.add_replacement(Entry::new(node, now));
            return Inserted::Cached;
        }
    }

    /// Drops any other entry at `node`'s address (a node that restarted with a new id).
    fn forget_addr(&mut self, node: NodeInfo, now: Instant) {
        for b in &mut self.buckets {
            let before = b.nodes.len();
            b.nodes
                .retain(|e| e.node.addr != node.addr || e.node.id == node.id);
            if b.nodes.len() != before {
                promote(b, now);
            }
            b.replacements
                .retain(|e| e.node.addr != node.addr || e.node.id == node.id);
        }
    }

    /// Splits the last bucket: nodes sharing more bits with our id move to a new last bucket.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len() - 1;
        let own = self.own;
        let deeper = |e: &Entry| own.common_prefix_len(&e.node.id) as usize > depth;
        let old = &mut self.buckets[depth];
        let mut new = Bucket::new(old.last_changed);
        let (moved, kept): (Vec<Entry>, Vec<Entry>) = old.nodes.drain(..).partition(deeper);
        old.nodes = kept;
        new.nodes = moved;
        let (moved, kept): (Vec<Entry>, Vec<Entry>) = old.replacements.drain(..).partition(deeper);
        old.replacements = kept;
        new.replacements = moved;
        promote(old, now);
        promote(&mut new, now);
        self.buckets.push(new);
    }

    /// Records that `node` queried us; true if it is in the table at that address.
    pub(crate) fn heard_query(&mut self, id: &NodeId, addr: SocketAddr, now: Instant) -> bool {
        let i = self.index(id);
        match self.buckets[i]
            .nodes
            .iter_mut()
            .find(|e| e.node.id == *id && e.node.addr == addr)
        {
            Some(e) => {
                e.last_query = Some(now);
                true
            }
            None => false,
        }
    }

    /// Records that `node` failed to answer a query of ours. A node gone bad is replaced by the
    /// most recent node of the bucket's replacement cache, if any.
    pub(crate) fn failed(&mut self, id: &NodeId, addr: SocketAddr, now: Instant) {
        let i = self.index(id);
        let b = &mut self.buckets[i];
        b.replacements
            .retain(|e| e.node.id != *id || e.node.addr != addr);
        let Some(pos) = b
            .nodes
            .iter()
            .position(|e| e.node.id == *id && e.node.addr == addr)
        else {
            return;
        };
        let e = &mut b.nodes[pos];
        e.fails = e.fails.saturating_add(1);
        e.pinged = None;
        if e.is_bad() {
            if let Some(r) = b.replacements.pop() {
                b.nodes[pos] = r;
                b.last_changed = now;
            }
        }
    }

    /// Writes the `n` usable nodes closest to `target` by XOR distance into `out` (cleared
    /// first), closest first.
    pub(crate) fn closest(&self, target: &NodeId, n: usize, out: &mut Vec<NodeInfo>) {
        out.clear();
        if n == 0 {
            return;
        }
        let d = Distance::from(target);
        let by_distance = |a: &NodeInfo, b: &NodeInfo| d.to(&a.id).cmp(&d.to(&b.id));
        // Groups in increasing distance, each strictly farther than the ones before: the
        // target's own bucket (its distances lack the bit where the target leaves our id), then
        // every deeper bucket together (they all have that bit), then shallower buckets one by
        // one (each with a higher first set bit than the last).
        let t = self.index(target);
        out.extend(usable(&self.buckets[t]));
        out.sort_unstable_by(by_distance);
        if out.len() < n {
            let start = out.len();
            for b in &self.buckets[t + 1..] {
                out.extend(usable(b));
            }
            out[start..].sort_unstable_by(by_distance);
        }
        for b in self.buckets[..t].iter().rev() {
            if out.len() >= n {
                break;
            }
            let start = out.len();
            out.extend(usable(b));
            out[start..].sort_unstable_by(by_distance);
        }
        out.truncate(n);
    }

    /// Nodes that are neither good nor bad and have no ping of ours in flight since at least
    /// `retry_after`: marks them pinged at `now` and writes up to `limit` into `out`.
    pub(crate) fn questionable(
        &mut self,
        now: Instant,
        retry_after: Duration,
        limit: usize,
        out: &mut Vec<NodeInfo>,
    ) {
        for b in &mut self.buckets {
            for e in &mut b.nodes {
                if out.len() >= limit {
                    return;
                }
                let waiting = e
                    .pinged
                    .is_some_and(|p| now.saturating_duration_since(p) < retry_after);
                if !e.is_good(now) && !waiting {
                    e.pinged = Some(now);
                    out.push(e.node);
                }
            }
        }
    }

    /// A random id to look up for the first bucket left unchanged for [`REFRESH_AFTER`], whose
    /// timer restarts.
    pub(crate) fn refresh_target(&mut self, now: Instant, rng: &mut impl Rng) -> Option<NodeId> {
        let last = self.buckets.len() - 1;
        let i = self
            .buckets
            .iter()
            .position(|b| now.saturating_duration_since(b.last_changed) >= REFRESH_AFTER)?;
        self.buckets[i].last_changed = now;
        Some(random_id_in_bucket(&self.own, i, i == last, rng))
    }

    /// Every bucket's refresh target at once (after bootstrap), restarting their timers.
    pub(crate) fn all_refresh_targets(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        let own = self.own;
        self.buckets
            .iter_mut()
            .enumerate()
            .map(|(i, b)| {
                b.last_changed = now;
                random_id_in_bucket(&own, i, i == last, rng)
            })
            .collect()
    }

    /// The same nodes around a new id of ours (BEP 42 switch): every entry and replacement is
    /// re-inserted with its state; entries that no longer fit are dropped.
    pub(crate) fn rebuilt(&self, own: NodeId, now: Instant) -> Self {
        let mut t = Self::new(own, now);
        let all = self
            .buckets
            .iter()
            .flat_map(|b| b.nodes.iter().chain(&b.replacements));
        for e in all {
            if t.insert_verified(e.node, e.last_response) == Inserted::Added {
                let i = t.index(&e.node.id);
                if let Some(slot) = t.buckets[i]
                    .nodes
                    .iter_mut()
                    .find(|s| s.node.id == e.node.id)
                {
                    *slot = e.clone();
                }
            }
        }
        t
    }

    /// [`RoutingTable::closest`] into a new vector (tests).
    #[cfg(test)]
    pub(crate) fn closest_vec(&self, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        self.closest(target, n, &mut out);
        out
    }

    /// Checks the table's invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let last = self.buckets.len() - 1;
        for (i, b) in self.buckets.iter().enumerate() {
            assert!(b.nodes.len() <= K && b.replacements.len() <= K);
            for e in b.nodes.iter().chain(&b.replacements) {
                let cpl = self.own.common_prefix_len(&e.node.id) as usize;
                assert!(if i == last { cpl >= i } else { cpl == i });
            }
        }
    }
}

/// A bucket's usable nodes.
fn usable(b: &Bucket) -> impl Iterator<Item = NodeInfo> + '_ {
    b.nodes.iter().filter(|e| e.is_usable()).map(|e| e.node)
}

/// Fills a bucket's free slots from its replacement cache, most recent first.
fn promote(b: &mut Bucket, now: Instant) {
    while b.nodes.len() < K {
        match b.replacements.pop() {
            Some(r) => {
                b.nodes.push(r);
                b.last_changed = now;
            }
            None => break,
        }
    }
}

/// A random id sharing exactly `bucket` leading bits with `own` (at least that many for the
/// last bucket).
pub(crate) fn random_id_in_bucket(
    own: &NodeId,
    bucket: usize,
    last: bool,
    rng: &mut impl Rng,
) -> NodeId {
    let mut id = NodeId(rng.random());
    for bit in 0..bucket.min(160) {
        set_bit(&mut id, bit, get_bit(own, bit));
    }
    if !last && bucket < 160 {
        set_bit(&mut id, bucket, !get_bit(own, bucket));
    }
    id
}

/// Bit `i` of `id`, counted from the most significant.
pub(crate) fn get_bit(id: &NodeId, i: usize) -> bool {
    id.0[i / 8] & (0x80 >> (i % 8)) != 0
}

fn set_bit(id: &mut NodeId, i: usize, v: bool) {
    let mask = 0x80 >> (i % 8);
    if v {
        id.0[i / 8] |= mask;
    } else {
        id.0[i / 8] &= !mask;
    }
}
