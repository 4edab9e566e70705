//! A swarm too big for its record (see [`crate::record`]): its IPv4 and IPv6 peer families, plus
//! the canonical peer address (v4-mapped IPv6 folded to IPv4) that identifies a peer in a swarm.

use std::net::{IpAddr, SocketAddr};

use crate::peers::{Ctx, Family, Peer, PeerUpdate, Role};
use crate::registry::{SelectedPeers, SwarmStats};

/// A peer's identity within a swarm, in compact form (address then port, big endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerAddr {
    V4([u8; 6]),
    V6([u8; 18]),
}

impl PeerAddr {
    /// Bytes of one compact entry of this family.
    pub(crate) fn entry_len(&self) -> usize {
        match self {
            PeerAddr::V4(_) => swarmd_proto::COMPACT_V4_LEN,
            PeerAddr::V6(_) => swarmd_proto::COMPACT_V6_LEN,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    /// Canonicalises: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 peer.
    fn from(addr: SocketAddr) -> Self {
        let port = addr.port().to_be_bytes();
        let ip = match addr.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let mut a = [0; 6];
                a[..4].copy_from_slice(&v4.octets());
                a[4..].copy_from_slice(&port);
                PeerAddr::V4(a)
            }
            IpAddr::V6(v6) => {
                let mut a = [0; 18];
                a[..16].copy_from_slice(&v6.octets());
                a[16..].copy_from_slice(&port);
                PeerAddr::V6(a)
            }
        }
    }
}

/// Peer totals of one swarm for the shard counters: seeders v4, leechers v4 (with partial
/// seeds), seeders v6, leechers v6.
pub(crate) type RoleCounts = [u64; 4];

/// One torrent's peers, once they outgrow the record (its `downloaded` counter and scrape
/// figures stay there), held in the shard's slab of big swarms.
/// IPv6 peers are boxed: most swarms have none.
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    v4: Family<6>,
    v6: Option<Box<Family<18>>>,
}

impl Swarm {
    /// True if the swarm could live in its record again: no IPv6 peers, at most `max` IPv4
    /// ones, and no peer ids kept.
    pub(crate) fn fits_inline(&self, ctx: Ctx<'_>, max: usize) -> bool {
        !ctx.store_ids && self.v6.is_none() && self.v4.len() <= max
    }

    /// The IPv4 peers with their roles.
    pub(crate) fn v4_entries(&self) -> impl Iterator<Item = (&Peer<6>, Role)> + '_ {
        self.v4.entries()
    }

    /// A swarm of the given IPv4 peers (no ids), with room for exactly `room` more.
    pub(crate) fn from_v4(peers: &[(Peer<6>, Role)], room: usize) -> Self {
        Self {
            v4: Family::from_peers(peers, room),
            v6: None,
        }
    }

    /// The swarm's scrape figures, over both families, with the record's `downloaded`.
    #[inline]
    pub(crate) fn stats(&self, downloaded: u32) -> SwarmStats {
        let (s6, i6, d6) = self.v6.as_ref().map_or((0, 0, 0), |f| {
            (f.seeders(), f.incomplete(), f.downloaders())
        });
        let c = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        SwarmStats {
            complete: c(self.v4.seeders() + s6),
            incomplete: c(self.v4.incomplete() + i6),
            downloaded,
            downloaders: c(self.v4.downloaders() + d6),
        }
    }

    #[inline]
    pub(crate) fn role_counts(&self) -> RoleCounts {
        let (s6, l6) = self
            .v6
            .as_ref()
            .map_or((0, 0), |f| (f.seeders(), f.incomplete()));
        [self.v4.seeders(), self.v4.incomplete(), s6, l6].map(|n| n as u64)
    }

    /// Updates or stores the requester (a new peer only if `can_insert`) and samples peers of its
    /// family into `out`. Returns whether the requester is stored, and whether this is a stored
    /// peer's first event=completed (which the record's `downloaded` counts).
    pub(crate) fn announce(
        &mut self,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
        upd: &PeerUpdate<'_>,
        can_insert: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> (bool, bool) {
        match addr {
            PeerAddr::V4(a) => self.v4.announce(ctx, a, upd, can_insert, numwant, out),
            // No IPv6 peers and no room: nothing to store, nobody to select.
            PeerAddr::V6(_) if self.v6.is_none() && !can_insert => (false, false),
            PeerAddr::V6(a) => {
                let family = self.v6.get_or_insert_with(Default::default);
                let r = family.announce(ctx, a, upd, can_insert, numwant, out);
                if family.is_empty() {
                    self.v6 = None;
                }
                r
            }
        }
    }

    /// Samples up to `numwant` peers of one family into `out`, changing nothing.
    pub(crate) fn sample(&self, ipv6: bool, numwant: usize, out: &mut SelectedPeers) {
        if ipv6 {
            if let Some(family) = &self.v6 {
                family.sample(numwant, out);
            }
        } else {
            self.v4.sample(numwant, out);
        }
    }

    /// Removes the peer at `addr`; true if it was there.
    pub(crate) fn remove(&mut self, ctx: Ctx<'_>, addr: &PeerAddr) -> bool {
        match addr {
            PeerAddr::V4(a) => self.v4.remove_addr(ctx, a),
            PeerAddr::V6(a) => {
                let Some(family) = self.v6.as_mut() else {
                    return false;
                };
                let removed = family.remove_addr(ctx, a);
                if family.is_empty() {
                    self.v6 = None;
                }
                removed
            }
        }
    }

    /// Removes peers last seen before `cutoff`; returns how many.
    pub(crate) fn expire(&mut self, ctx: Ctx<'_>, cutoff: u32) -> usize {
        let mut removed = self.v4.expire(ctx, cutoff);
        if let Some(family) = self.v6.as_mut() {
            removed += family.expire(ctx, cutoff);
            if family.is_empty() {
                self.v6 = None;
            }
        }
        removed
    }

    /// Checks the invariants of both families (tests).
    #[cfg(test)]
    pub(crate) fn check(&self, ctx: Ctx<'_>) {
        self.v4.check(ctx);
        if let Some(f) = &self.v6 {
            assert!(!f.is_empty(), "empty v6 family kept");
            f.check(ctx);
        }
    }

    /// Role, completed flag and peer id of the peer at `addr` (tests).
    #[cfg(test)]
    pub(crate) fn describe(
        &self,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
    ) -> Option<(crate::peers::Role, bool, Option<[u8; 20]>)> {
        match addr {
            PeerAddr::V4(a) => self.v4.describe(ctx, a),
            PeerAddr::V6(a) => self.v6.as_ref()?.describe(ctx, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapped_is_canonicalised() {
        let v4: SocketAddr = "10.1.2.3:6881".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        assert_eq!(PeerAddr::from(v4), PeerAddr::V4([10, 1, 2, 3, 0x1a, 0xe1]));
        assert_eq!(PeerAddr::from(mapped), PeerAddr::from(v4));
        assert_eq!(PeerAddr::from(v6).entry_len(), 18);
        assert_eq!(PeerAddr::from(v4).entry_len(), 6);
    }

    #[test]
    fn swarm_header_is_small() {
        assert!(std::mem::size_of::<Swarm>() <= 48);
    }
}
