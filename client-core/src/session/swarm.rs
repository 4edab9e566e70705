//! The peers a torrent knows of but is not necessarily connected to: candidate addresses with
//! retry backoff, outbound attempts in flight, hash-failure strikes and bans.
//!
//! A peer is banned under the address it listens on (the one we dialed, or the remote IP with
//! the port its extension handshake gave) and under its peer id.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use swarmd_proto::PeerId;
use tokio::time::Instant;

/// Consecutive failed attempts after which an address is forgotten.
const MAX_FAILURES: u32 = 8;
/// First retry delay after a failure; it doubles with each consecutive failure.
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Idle,
    /// Dialing, or connected (either way).
    Busy,
}

#[derive(Debug, Clone)]
struct Candidate {
    link: Link,
    next_attempt: Instant,
    failures: u32,
    /// It has every piece (learned on a past connection): not worth dialing once we do too.
    seed: bool,
}

/// Known peers, bans and the outbound attempts in flight.
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    candidates: HashMap<SocketAddr, Candidate>,
    banned_addrs: HashSet<SocketAddr>,
    banned_ids: HashSet<PeerId>,
    strikes: HashMap<SocketAddr, u32>,
    ourselves: HashSet<SocketAddr>,
    /// Outbound connection attempts in flight.
    pub(crate) half_open: usize,
}

impl Swarm {
    /// Learns `addr`; false if it was known, banned or ours.
    pub(crate) fn add(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if addr.port() == 0
            || self.banned_addrs.contains(&addr)
            || self.ourselves.contains(&addr)
            || self.candidates.contains_key(&addr)
        {
            return false;
        }
        self.candidates.insert(
            addr,
            Candidate {
                link: Link::Idle,
                next_attempt: now,
                failures: 0,
                seed: false,
            },
        );
        true
    }

    /// How many addresses are known.
    pub(crate) fn known(&self) -> usize {
        self.candidates.len()
    }

    /// Appends up to `budget` addresses due for a dial to `out` and marks them busy (the caller
    /// counts them in [`Self::half_open`]). Known seeds are skipped when `complete`.
    pub(crate) fn pick_dials(
        &mut self,
        now: Instant,
        budget: usize,
        complete: bool,
        out: &mut Vec<SocketAddr>,
    ) {
        for (addr, c) in &mut self.candidates {
            if out.len() >= budget {
                return;
            }
            if c.link == Link::Idle && c.next_attempt <= now && !(complete && c.seed) {
                c.link = Link::Busy;
                out.push(*addr);
            }
        }
    }

    /// A connection with the peer listening at `addr` is up (an inbound one, which we must not
    /// dial again while it lasts, or a dial that succeeded).
    pub(crate) fn connected(&mut self, addr: SocketAddr, now: Instant) {
        self.add(addr, now);
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.link = Link::Busy;
        }
    }

    /// The connection with (or dial of) `addr` ended. `worked`: it got as far as a handshake,
    /// which resets the failure count; otherwise the retry delay doubles. `seed`: it had every
    /// piece.
    pub(crate) fn disconnected(
        &mut self,
        addr: SocketAddr,
        now: Instant,
        worked: bool,
        seed: bool,
    ) {
        let Some(c) = self.candidates.get_mut(&addr) else {
            return;
        };
        c.link = Link::Idle;
        c.seed |= seed;
        if worked {
            c.failures = 0;
            c.next_attempt = now + RETRY_BASE;
            return;
        }
        c.failures += 1;
        if c.failures >= MAX_FAILURES {
            self.candidates.remove(&addr);
            return;
        }
        let delay = RETRY_BASE
            .saturating_mul(1 << (c.failures - 1).min(16))
            .min(RETRY_MAX);
        c.next_attempt = now + delay;
    }

    /// `addr` turned out to be us (our own peer id answered): never dial it again.
    pub(crate) fn ourselves(&mut self, addr: SocketAddr) {
        self.candidates.remove(&addr);
        self.ourselves.insert(addr);
    }

    /// Counts a hash failure against `addr`; true once it reaches `ban_after`.
    pub(crate) fn strike(&mut self, addr: SocketAddr, ban_after: u32) -> bool {
        let n = self.strikes.entry(addr).or_default();
        *n += 1;
        *n >= ban_after
    }

    /// Bans `addr` and `peer_id` for the session.
    pub(crate) fn ban(&mut self, addr: SocketAddr, peer_id: Option<PeerId>) {
        self.banned_addrs.insert(addr);
        self.banned_ids.extend(peer_id);
        self.candidates.remove(&addr);
    }

    /// Whether `addr` or `peer_id` is banned.
    pub(crate) fn is_banned(&self, addr: Option<SocketAddr>, peer_id: Option<&PeerId>) -> bool {
        addr.is_some_and(|a| self.banned_addrs.contains(&a))
            || peer_id.is_some_and(|id| self.banned_ids.contains(id))
    }

    /// The banned addresses.
    pub(crate) fn banned(&self) -> impl Iterator<Item = &SocketAddr> {
        self.banned_addrs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn dials_once_and_backs_off() {
        let now = Instant::now();
        let mut s = Swarm::default();
        assert!(s.add(addr(1), now));
        assert!(!s.add(addr(1), now));
        assert!(!s.add(addr(0), now));
        let mut out = Vec::new();
        s.pick_dials(now, 10, false, &mut out);
        assert_eq!(out, [addr(1)]);
        out.clear();
        s.pick_dials(now, 10, false, &mut out);
        assert!(out.is_empty(), "busy addresses are not dialed twice");
        s.disconnected(addr(1), now, false, false);
        s.pick_dials(now, 10, false, &mut out);
        assert!(out.is_empty(), "a failure delays the retry");
        s.pick_dials(now + Duration::from_secs(1), 10, false, &mut out);
        assert_eq!(out, [addr(1)]);
        for _ in 1..MAX_FAILURES {
            s.disconnected(addr(1), now, false, false);
        }
        assert_eq!(s.known(), 0, "forgotten after repeated failures");
    }

    #[test]
    fn seeds_skipped_when_complete_and_bans_stick() {
        let now = Instant::now();
        let mut s = Swarm::default();
        s.add(addr(2), now);
        s.connected(addr(2), now);
        s.disconnected(addr(2), now, true, true);
        let mut out = Vec::new();
        let later = now + Duration::from_secs(5);
        s.pick_dials(later, 10, true, &mut out);
        assert!(out.is_empty());
        s.pick_dials(later, 10, false, &mut out);
        assert_eq!(out, [addr(2)]);
        assert!(!s.strike(addr(2), 2));
        assert!(s.strike(addr(2), 2));
        let id = PeerId([7; 20]);
        s.ban(addr(2), Some(id));
        assert!(s.is_banned(Some(addr(2)), None));
        assert!(s.is_banned(None, Some(&id)));
        assert!(!s.is_banned(Some(addr(3)), Some(&PeerId([8; 20]))));
        assert!(!s.add(addr(2), now));
        s.ourselves(addr(4));
        assert!(!s.add(addr(4), now));
        assert_eq!(s.banned().count(), 1);
    }
}
