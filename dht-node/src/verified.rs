//! The bootstrap-mode table: up to `max_nodes` verified nodes per address family, each admitted
//! only after answering a query of ours, re-verified every `reverify_interval`, and handed out
//! as the closest nodes to any target.
//!
//! * **Admission**: [`VerifiedTable::admit`] is called only with a node that answered us (the
//!   node core pings candidates first). Its id must pass BEP 42 when enforced (checked by the
//!   caller).
//! * **Failure**: a node that misses a verification ping is "suspect" (not handed out) and is
//!   pinged again; a second miss removes it.
//! * **Eviction when full**: first a suspect node (oldest failure first); else the
//!   longest-unverified node sharing the newcomer's leaf, if it is due for re-verification;
//!   else the newcomer is turned away (long-lived nodes are worth more, as in Kademlia).
//! * **Re-verification**: [`VerifiedTable::due`] sweeps the table leaf by leaf in id order and
//!   returns nodes whose last answer is older than the interval, or that are suspect.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarmd_proto::NodeId;

use crate::store::{root_bits_for, IpBytes, NodeStore, Stored};
use crate::NodeInfo;

/// Most suspect ids remembered for eviction.
const MAX_SUSPECTS: usize = 4096;
/// Leaves visited per [`VerifiedTable::due`] call, at most.
const LEAVES_PER_SWEEP: usize = 256;

/// What the table knows of a node (see [`VerifiedTable::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not stored.
    Absent,
    /// Stored, at another address or suspect.
    Elsewhere,
    /// Stored at this address and live.
    Here,
}

/// What [`VerifiedTable::admit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// A new node was stored (maybe evicting another).
    Added,
    /// A stored node was refreshed.
    Updated,
    /// The table is full of live nodes: the newcomer was turned away.
    Full,
}

/// One family's part of the table.
#[derive(Debug)]
struct Family<A> {
    store: NodeStore<A>,
    suspects: VecDeque<[u8; 20]>,
    cursor: [u8; 20],
}

impl<A: IpBytes> Family<A> {
    fn new(max: usize) -> Self {
        Self {
            store: NodeStore::new(root_bits_for(max)),
            suspects: VecDeque::new(),
            cursor: [0; 20],
        }
    }
}

/// The verified table of both families.
#[derive(Debug)]
pub(crate) struct VerifiedTable {
    v4: Family<[u8; 4]>,
    v6: Family<[u8; 16]>,
    max_nodes: usize,
    reverify_after: u32,
    epoch: Instant,
}

impl VerifiedTable {
    /// An empty table of up to `max_nodes` nodes per family, re-verifying nodes after
    /// `reverify_after`.
    pub(crate) fn new(max_nodes: usize, reverify_after: Duration, epoch: Instant) -> Self {
        Self {
            v4: Family::new(max_nodes),
            v6: Family::new(max_nodes),
            max_nodes: max_nodes.max(1),
            reverify_after: u32::try_from(reverify_after.as_secs()).unwrap_or(u32::MAX),
            epoch,
        }
    }

    fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// Nodes stored: (IPv4, IPv6).
    pub(crate) fn lens(&self) -> (usize, usize) {
        (self.v4.store.len(), self.v6.store.len())
    }

    /// Records that `node` answered a query of ours at `now`: stores or refreshes it.
    pub(crate) fn admit(&mut self, node: NodeInfo, now: Instant) -> Admitted {
        let secs = self.secs(now);
        let (max, after) = (self.max_nodes, self.reverify_after);
        match node.addr.ip() {
            std::net::IpAddr::V4(_) => admit(&mut self.v4, node, secs, max, after),
            std::net::IpAddr::V6(_) => admit(&mut self.v6, node, secs, max, after),
        }
    }

    /// What the table holds for `id` in `addr`'s family: nothing, the node elsewhere (or
    /// suspect), or the node at `addr` and live.
    pub(crate) fn status(&self, id: &NodeId, addr: SocketAddr) -> Status {
        fn of<A: IpBytes>(e: Option<&Stored<A>>, addr: SocketAddr) -> Status {
            match e {
                None => Status::Absent,
                Some(e) if e.addr_is(addr) && e.fails == 0 => Status::Here,
                Some(_) => Status::Elsewhere,
            }
        }
        if addr.is_ipv4() {
            of(self.v4.store.get(&id.0), addr)
        } else {
            of(self.v6.store.get(&id.0), addr)
        }
    }

    /// True if `id` is stored at `addr` and not suspect.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: &NodeId, addr: SocketAddr) -> bool {
        self.status(id, addr) == Status::Here
    }

    /// True if the table holds this id in `addr`'s family (whatever its address).
    pub(crate) fn knows(&self, id: &NodeId, addr: SocketAddr) -> bool {
        self.status(id, addr) != Status::Absent
    }

    /// Appends to `out` the `n` non-suspect nodes of one family closest to `target`.
    pub(crate) fn closest(&self, ipv6: bool, target: &NodeId, n: usize, out: &mut Vec<NodeInfo>) {
        if ipv6 {
            self.v6
                .store
                .closest(&target.0, n, |e: &Stored<[u8; 16]>| e.fails == 0, out);
        } else {
            self.v4
                .store
                .closest(&target.0, n, |e: &Stored<[u8; 4]>| e.fails == 0, out);
        }
    }

    /// Records that `node` did not answer a verification ping: suspect after one miss,
    /// removed after two.
    pub(crate) fn failed(&mut self, node: NodeInfo) {
        match node.addr.ip() {
            std::net::IpAddr::V4(_) => failed(&mut self.v4, node),
            std::net::IpAddr::V6(_) => failed(&mut self.v6, node),
        }
    }

    /// Up to `limit` nodes to ping now: suspects and nodes not verified for the interval.
    /// Marks them as being pinged. Sweeps a bounded number of leaves per call.
    pub(crate) fn due(&mut self, now: Instant, limit: usize, out: &mut Vec<NodeInfo>) {
        let (secs, after) = (self.secs(now), self.reverify_after);
        due(&mut self.v4, secs, after, limit, out);
        let left = limit.saturating_sub(out.len());
        due(&mut self.v6, secs, after, left, out);
    }

    /// Clears the "being pinged" mark of a node whose ping could not be sent.
    pub(crate) fn unmark(&mut self, node: NodeInfo) {
        match node.addr.ip() {
            std::net::IpAddr::V4(_) => {
                if let Some(e) = self.v4.store.get_mut(&node.id.0) {
                    e.pinging = false;
                }
            }
            std::net::IpAddr::V6(_) => {
                if let Some(e) = self.v6.store.get_mut(&node.id.0) {
                    e.pinging = false;
                }
            }
        }
    }

    /// Every node of both families (for persistence).
    pub(crate) fn nodes(&self) -> impl Iterator<Item = NodeInfo> + '_ {
        let v4 = self
            .v4
            .store
            .iter()
            .filter(|e| e.fails == 0)
            .map(Stored::info);
        let v6 = self
            .v6
            .store
            .iter()
            .filter(|e| e.fails == 0)
            .map(Stored::info);
        v4.chain(v6)
    }

    /// Loads nodes verified before a restart: stored as if verified just past the
    /// re-verification interval, so the sweep pings them again soon.
    pub(crate) fn restore(&mut self, node: NodeInfo, now: Instant) {
        let secs = self.secs(now);
        let past = secs.saturating_sub(self.reverify_after);
        let (max, after) = (self.max_nodes, self.reverify_after);
        let _ = match node.addr.ip() {
            std::net::IpAddr::V4(_) => admit(&mut self.v4, node, past, max, after),
            std::net::IpAddr::V6(_) => admit(&mut self.v6, node, past, max, after),
        };
    }

    /// Checks both tries (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        self.v4.store.check();
        self.v6.store.check();
        assert!(self.v4.store.len() <= self.max_nodes);
        assert!(self.v6.store.len() <= self.max_nodes);
    }
}

fn admit<A: IpBytes>(
    f: &mut Family<A>,
    node: NodeInfo,
    secs: u32,
    max: usize,
    reverify_after: u32,
) -> Admitted {
    let Some(ip) = A::from_ip(node.addr.ip()) else {
        return Admitted::Full;
    };
    let entry = Stored {
        id: node.id.0,
        ip,
        port: node.addr.port(),
        verified: secs,
        fails: 0,
        pinging: false,
    };
    if let Some(e) = f.store.get_mut(&node.id.0) {
        // Keep the newest verified time (a restored entry may be older than a live answer).
        e.verified = e.verified.max(secs);
        e.ip = ip;
        e.port = entry.port;
        e.fails = 0;
        e.pinging = false;
        return Admitted::Updated;
    }
    if f.store.len() >= max && !evict(f, &node.id.0, secs, reverify_after) {
        return Admitted::Full;
    }
    f.store.insert(entry);
    Admitted::Added
}

/// Frees one slot for `newcomer`: a suspect, else a stale neighbour. False if none qualifies.
fn evict<A: IpBytes>(f: &mut Family<A>, newcomer: &[u8; 20], secs: u32, after: u32) -> bool {
    while let Some(id) = f.suspects.pop_front() {
        if f.store.get(&id).is_some_and(|e| e.fails > 0) {
            f.store.remove(&id);
            return true;
        }
    }
    let stale = f
        .store
        .neighbours(newcomer)
        .iter()
        .filter(|e| secs.saturating_sub(e.verified) >= after)
        .min_by_key(|e| e.verified)
        .map(|e| e.id);
    match stale {
        Some(id) => f.store.remove(&id).is_some(),
        None => false,
    }
}

fn failed<A: IpBytes>(f: &mut Family<A>, node: NodeInfo) {
    let Some(e) = f.store.get_mut(&node.id.0) else {
        return;
    };
    if !e.addr_is(node.addr) {
        return;
    }
    e.pinging = false;
    e.fails = e.fails.saturating_add(1);
    if e.fails >= 2 {
        f.store.remove(&node.id.0);
    } else {
        if f.suspects.len() >= MAX_SUSPECTS {
            f.suspects.pop_front();
        }
        f.suspects.push_back(node.id.0);
    }
}

fn due<A: IpBytes>(
    f: &mut Family<A>,
    secs: u32,
    after: u32,
    limit: usize,
    out: &mut Vec<NodeInfo>,
) {
    let target = out.len() + limit;
    for _ in 0..LEAVES_PER_SWEEP {
        if out.len() >= target || f.store.len() == 0 {
            return;
        }
        let cursor = f.cursor;
        let next = f.store.visit_leaf(&cursor, |e| {
            let stale = secs.saturating_sub(e.verified) >= after;
            if out.len() < target && !e.pinging && (stale || e.fails > 0) {
                e.pinging = true;
                out.push(e.info());
            }
        });
        // A leaf cut short by the limit is visited again next time.
        if out.len() >= target {
            return;
        }
        f.cursor = next.unwrap_or([0; 20]);
    }
}
