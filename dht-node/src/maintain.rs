//! Keeping the node alive in the network: self-bootstrap with back-off, pings of questionable
//! nodes, bucket refresh, bootstrap-mode verification and discovery, and BEP 42 id changes
//! when votes settle on our external address.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use swarmd_proto::bep42::{is_exempt, is_valid_node_id, node_id_for};
use swarmd_proto::krpc::Method;
use swarmd_proto::NodeId;

use crate::client::Owner;
use crate::lookup::{LookupId, LookupKind};
use crate::metrics::Sent;
use crate::node::DhtNode;
use crate::tx::Purpose;
use crate::NodeInfo;

/// First bootstrap retry delay; doubles on every failure.
pub(crate) const BOOT_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest bootstrap retry delay.
pub(crate) const BOOT_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Bootstrap mode: a discovery lookup for a random id this often, while the table has room.
const DISCOVERY_EVERY: Duration = Duration::from_secs(10);
/// Questionable routing-table nodes pinged per maintenance pass, per family.
const QUESTIONABLE_PER_PASS: usize = 8;
/// Maintenance lookups (refresh) running at once at most.
const MAX_MAINTENANCE_LOOKUPS: usize = 32;

/// Bootstrap state.
#[derive(Debug)]
pub(crate) struct Boot {
    pub(crate) addrs: Vec<SocketAddr>,
    /// Nodes from the state file, closest to our id first.
    pub(crate) saved: Vec<NodeInfo>,
    pub(crate) running: Vec<LookupId>,
    pub(crate) next_try: Instant,
    backoff: Duration,
    failures: u32,
    succeeded: bool,
}

impl Boot {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            addrs: Vec::new(),
            saved: Vec::new(),
            running: Vec::new(),
            next_try: now,
            backoff: BOOT_BACKOFF_MIN,
            failures: 0,
            succeeded: false,
        }
    }

    /// Failed bootstrap attempts in a row (tests).
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

impl DhtNode {
    /// Starts a bootstrap for each family whose routing table is empty, if one is due.
    pub(crate) fn bootstrap_if_due(&mut self, now: Instant) {
        if !self.boot.running.is_empty() || now < self.boot.next_try {
            return;
        }
        self.boot.next_try = now + BOOT_BACKOFF_MIN;
        for ipv6 in [false, true] {
            let (socket, table) = if ipv6 {
                (self.families.1, &self.table6)
            } else {
                (self.families.0, &self.table4)
            };
            let has_seeds = self.boot.addrs.iter().any(|a| a.is_ipv6() == ipv6)
                || self.boot.saved.iter().any(|n| n.addr.is_ipv6() == ipv6)
                || self.verified.as_ref().is_some_and(|v| {
                    let (v4, v6) = v.lens();
                    (if ipv6 { v6 } else { v4 }) > 0
                });
            if socket && table.is_empty() && has_seeds {
                // Registered before it starts: it may finish at once.
                self.boot.running.push(LookupId(self.next_lookup));
                let own = self.id;
                self.start_owned(LookupKind::FindNode, own, ipv6, Owner::Bootstrap, now);
            }
        }
    }

    /// A bootstrap lookup ended: on success refresh every bucket of that family; once every
    /// attempt of a round failed and no table has a node, retry after a doubling delay.
    pub(crate) fn bootstrap_finished(&mut self, lid: LookupId, ipv6: bool, now: Instant) {
        self.boot.running.retain(|&r| r != lid);
        let table = if ipv6 {
            &mut self.table6
        } else {
            &mut self.table4
        };
        if !table.is_empty() {
            self.boot.failures = 0;
            self.boot.backoff = BOOT_BACKOFF_MIN;
            if !self.boot.succeeded {
                tracing::info!(nodes = table.len(), ipv6, "dht bootstrapped");
                self.boot.succeeded = true;
            }
            let targets = table.all_refresh_targets(now, &mut rand::rng());
            for t in targets {
                self.start_owned(LookupKind::FindNode, t, ipv6, Owner::Maintenance, now);
            }
            return;
        }
        if !(self.boot.running.is_empty() && self.table4.is_empty() && self.table6.is_empty()) {
            return;
        }
        self.boot.failures += 1;
        let delay = self.boot.backoff;
        if self.boot.failures == 1 {
            tracing::info!(retry_in = ?delay, "dht bootstrap reached no node; retrying with back-off");
        } else {
            tracing::debug!(retry_in = ?delay, failures = self.boot.failures, "dht bootstrap reached no node");
        }
        self.boot.next_try = now + delay;
        self.boot.backoff = (delay * 2).min(BOOT_BACKOFF_MAX);
    }

    /// One maintenance pass: pings of questionable nodes, bucket refresh, and in bootstrap
    /// mode verification pings and discovery.
    pub(crate) fn maintain(&mut self, now: Instant) {
        let retry = self.config.query_timeout() * 2;
        let mut nodes = Vec::new();
        for ipv6 in [false, true] {
            let table = if ipv6 {
                &mut self.table6
            } else {
                &mut self.table4
            };
            nodes.clear();
            table.questionable(now, retry, QUESTIONABLE_PER_PASS, &mut nodes);
            for n in &nodes {
                self.send_query(
                    n.addr,
                    Some(n.id),
                    &Method::Ping,
                    Purpose::Ping,
                    Sent::Ping,
                    now,
                );
            }
            let maintenance = self
                .lookups
                .values()
                .filter(|(_, o)| *o == Owner::Maintenance)
                .count();
            let table = if ipv6 {
                &mut self.table6
            } else {
                &mut self.table4
            };
            if !table.is_empty() && maintenance < MAX_MAINTENANCE_LOOKUPS {
                if let Some(t) = table.refresh_target(now, &mut rand::rng()) {
                    self.start_owned(LookupKind::FindNode, t, ipv6, Owner::Maintenance, now);
                }
            }
        }
        let Some(v) = &mut self.verified else {
            return;
        };
        let reserve = self.config.max_outstanding_queries / 4;
        let room = self
            .config
            .max_outstanding_queries
            .saturating_sub(self.tx.len() + reserve);
        let n = self.pings.available(now).min(room);
        nodes.clear();
        v.due(now, n, &mut nodes);
        for node in &nodes {
            let sent = self.pings.take(now)
                && self.send_query(
                    node.addr,
                    Some(node.id),
                    &Method::Ping,
                    Purpose::Verify,
                    Sent::Ping,
                    now,
                );
            if !sent {
                if let Some(v) = &mut self.verified {
                    v.unmark(*node);
                }
            }
        }
        let (v4, v6) = self.verified.as_ref().map_or((0, 0), |v| v.lens());
        let discovering = self.lookups.values().any(|(_, o)| *o == Owner::Discovery);
        if now >= self.next_discovery && !discovering {
            self.next_discovery = now + DISCOVERY_EVERY;
            for (ipv6, len) in [(false, v4), (true, v6)] {
                let table = if ipv6 { &self.table6 } else { &self.table4 };
                if len < self.config.max_nodes && !table.is_empty() {
                    let target = NodeId(rand::random());
                    self.start_owned(LookupKind::FindNode, target, ipv6, Owner::Discovery, now);
                }
            }
        }
    }

    /// A reply from `voter` says we are at `claimed`: once the votes settle on a new address
    /// our id does not fit (BEP 42), take an id derived from it.
    pub(crate) fn vote(&mut self, voter: IpAddr, claimed: IpAddr, now: Instant) {
        let (settled, decides) = if claimed.is_ipv4() {
            (self.votes4.vote(voter, claimed), true)
        } else {
            (self.votes6.vote(voter, claimed), !self.families.0)
        };
        let Some(ip) = settled else {
            return;
        };
        tracing::info!(%ip, "dht external address settled by BEP 42 votes");
        if decides
            && self.config.node_id.is_none()
            && !is_exempt(ip)
            && !is_valid_node_id(&self.id, ip)
        {
            let id = node_id_for(ip, rand::random(), rand::random());
            tracing::info!(%ip, %id, "dht node id re-derived from our external address (BEP 42)");
            self.change_id(id, now);
            let ipv6 = ip.is_ipv6();
            self.start_owned(LookupKind::FindNode, id, ipv6, Owner::Maintenance, now);
        }
    }

    /// Switches to a new id: the routing tables are rebuilt around it, keeping every node
    /// that still fits (the verified table does not depend on our id).
    pub(crate) fn change_id(&mut self, id: NodeId, now: Instant) {
        self.id = id;
        self.table4 = self.table4.rebuilt(id, now);
        self.table6 = self.table6.rebuilt(id, now);
    }
}
