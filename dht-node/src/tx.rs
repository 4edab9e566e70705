//! Our outstanding queries: random 4-byte transaction ids in a bounded table, each answerable
//! only from the address it was sent to, expiring after the query timeout.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarmd_proto::NodeId;

use crate::lookup::LookupId;
use crate::metrics::Sent;

/// Bytes in our transaction ids.
pub(crate) const TID_LEN: usize = 4;

/// Why we sent a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A liveness ping of a routing-table node (or a candidate for it).
    Ping,
    /// A verification ping of a bootstrap-table node or candidate.
    Verify,
    /// A lookup step (`find_node` or `get_peers`).
    Lookup(LookupId),
    /// A lookup's final `announce_peer`.
    Announce(LookupId),
}

/// One query awaiting its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Where it went: the answer must come from there.
    pub(crate) addr: SocketAddr,
    /// The id we believe the node has, if known.
    pub(crate) id: Option<NodeId>,
    pub(crate) purpose: Purpose,
    /// The method, for metrics.
    pub(crate) method: Sent,
    pub(crate) deadline: Instant,
}

/// The table of outstanding queries.
#[derive(Debug)]
pub(crate) struct Transactions {
    map: HashMap<u32, Pending>,
    /// Deadlines in sending order (the timeout is fixed, so they are sorted). Answered
    /// entries stay until their deadline passes and are skipped then.
    order: VecDeque<(Instant, u32)>,
    max: usize,
    timeout: Duration,
}

impl Transactions {
    /// A table of at most `max` queries, each failing after `timeout`.
    pub(crate) fn new(max: usize, timeout: Duration) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
            timeout,
        }
    }

    /// Outstanding queries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Room for `n` more queries.
    pub(crate) fn has_room(&self, n: usize) -> bool {
        self.map.len() + n <= self.max
    }

    /// Registers a query to `addr`; returns its transaction id, or `None` if the table is full.
    pub(crate) fn insert(
        &mut self,
        addr: SocketAddr,
        id: Option<NodeId>,
        purpose: Purpose,
        method: Sent,
        now: Instant,
    ) -> Option<[u8; TID_LEN]> {
        if self.map.len() >= self.max {
            return None;
        }
        let deadline = now + self.timeout;
        let tid = loop {
            let t: u32 = rand::random();
            if !self.map.contains_key(&t) {
                break t;
            }
        };
        self.map.insert(
            tid,
            Pending {
                addr,
                id,
                purpose,
                method,
                deadline,
            },
        );
        self.order.push_back((deadline, tid));
        if self.order.len() > 4 * self.max {
            // Many quick answers: drop their stale deadlines so the queue stays bounded.
            let map = &self.map;
            self.order
                .retain(|(d, t)| map.get(t).is_some_and(|p| p.deadline == *d));
        }
        Some(tid.to_be_bytes())
    }

    /// The query an answer with this transaction id from `from` belongs to, removed from the
    /// table; `None` (and the table unchanged) for an unknown id or another source.
    pub(crate) fn take(&mut self, tid: &[u8], from: SocketAddr) -> Option<Pending> {
        let t = u32::from_be_bytes(<[u8; TID_LEN]>::try_from(tid).ok()?);
        if self.map.get(&t)?.addr != from {
            return None;
        }
        self.map.remove(&t)
    }

    /// One query whose deadline has passed by `now`, removed from the table.
    pub(crate) fn expired(&mut self, now: Instant) -> Option<Pending> {
        while let Some(&(deadline, tid)) = self.order.front() {
            if deadline > now {
                return None;
            }
            self.order.pop_front();
            if let Some(p) = self.map.get(&tid) {
                if p.deadline == deadline {
                    return self.map.remove(&tid);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_tid_and_source_and_expire() {
        let t0 = Instant::now();
        let mut t = Transactions::new(2, Duration::from_secs(2));
        let a: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let b: SocketAddr = "1.2.3.4:6".parse().unwrap();
        let tid = t.insert(a, None, Purpose::Ping, Sent::Ping, t0).unwrap();
        assert!(t.take(&tid, b).is_none(), "wrong source");
        assert!(t.take(&tid[..3], a).is_none(), "wrong length");
        assert!(t.take(&tid, a).is_some());
        assert!(t.take(&tid, a).is_none(), "answered twice");
        t.insert(a, None, Purpose::Ping, Sent::Ping, t0).unwrap();
        t.insert(b, None, Purpose::Verify, Sent::Ping, t0).unwrap();
        assert!(
            t.insert(b, None, Purpose::Ping, Sent::Ping, t0).is_none(),
            "bounded"
        );
        assert!(t.expired(t0 + Duration::from_millis(1999)).is_none());
        let late = t0 + Duration::from_secs(2);
        assert_eq!(t.expired(late).unwrap().addr, a);
        assert_eq!(t.expired(late).unwrap().addr, b);
        assert!(t.expired(late).is_none());
        assert_eq!(t.len(), 0);
    }
}
