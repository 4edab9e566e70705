//! Learning our external address from the BEP 42 `ip` field of replies to our queries: the
//! last [`WINDOW`] votes are kept, one per voter (a voter's newer vote replaces its older one,
//! voters keyed by IPv4 /24 or IPv6 /48 so one network cannot stuff the ballot), and an address
//! wins once [`QUORUM`] voters agree on it and no other address has as many.

use std::net::IpAddr;

/// Votes remembered.
pub(crate) const WINDOW: usize = 32;
/// Distinct voters needed to settle on an address.
pub(crate) const QUORUM: usize = 4;

/// The ballot box of one address family.
#[derive(Debug, Default)]
pub(crate) struct Votes {
    /// (voter network, claimed address), oldest first.
    votes: Vec<(u64, IpAddr)>,
    settled: Option<IpAddr>,
}

/// The network a voter belongs to: its /24 (IPv4) or /48 (IPv6).
fn network(voter: IpAddr) -> u64 {
    match voter {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (1 << 63) | (u128::from(v6) >> 80) as u64,
    }
}

impl Votes {
    /// Records that `voter` sees us at `claimed`; returns the address if this vote made a new
    /// one win.
    pub(crate) fn vote(&mut self, voter: IpAddr, claimed: IpAddr) -> Option<IpAddr> {
        let net = network(voter);
        self.votes.retain(|(v, _)| *v != net);
        if self.votes.len() >= WINDOW {
            self.votes.remove(0);
        }
        self.votes.push((net, claimed));
        let count = |ip: IpAddr| self.votes.iter().filter(|(_, c)| *c == ip).count();
        let mine = count(claimed);
        if mine < QUORUM || self.settled == Some(claimed) {
            return None;
        }
        let best_other = self
            .votes
            .iter()
            .filter(|(_, c)| *c != claimed)
            .map(|(_, c)| count(*c))
            .max()
            .unwrap_or(0);
        if mine > best_other {
            self.settled = Some(claimed);
            return Some(claimed);
        }
        None
    }

    /// The address settled on, if any.
    pub(crate) fn settled(&self) -> Option<IpAddr> {
        self.settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn needs_a_quorum_of_distinct_networks() {
        let mut v = Votes::default();
        let me = ip("203.0.113.7");
        // Many votes from one /24 count once.
        for i in 0..10 {
            assert_eq!(v.vote(ip(&format!("198.51.100.{i}")), me), None);
        }
        assert_eq!(v.vote(ip("192.0.2.1"), me), None);
        assert_eq!(v.vote(ip("192.0.3.1"), me), None);
        assert_eq!(v.vote(ip("192.0.4.1"), me), Some(me));
        assert_eq!(v.settled(), Some(me));
        // Settled: repeating it changes nothing.
        assert_eq!(v.vote(ip("192.0.5.1"), me), None);
    }

    #[test]
    fn a_new_address_wins_once_it_outnumbers_the_old() {
        let mut v = Votes::default();
        let (old, new) = (ip("203.0.113.7"), ip("203.0.113.8"));
        for i in 0..4 {
            v.vote(ip(&format!("10.{i}.0.1")), old);
        }
        assert_eq!(v.settled(), Some(old));
        let mut won = None;
        for i in 0..5 {
            won = won.or(v.vote(ip(&format!("10.{i}.0.1")), new));
        }
        assert_eq!(won, Some(new), "voters changed their minds");
    }
}
