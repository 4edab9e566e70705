//! `get_peers` tokens (BEP 5): an 8-byte SipHash-2-4 MAC of (requester IP, info hash) under a
//! secret rotated every few minutes; tokens of the current and the previous secret are accepted,
//! so a token lives between one and two rotation periods. Comparison is constant-time.

use std::hash::Hasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use siphasher::sip::SipHasher24;
use swarmd_proto::InfoHash;

/// Bytes in one token.
pub(crate) const TOKEN_LEN: usize = 8;

/// The token secrets.
#[derive(Debug)]
pub(crate) struct Tokens {
    current: (u64, u64),
    previous: (u64, u64),
    rotated: Instant,
    every: Duration,
}

fn mac(key: (u64, u64), ip: IpAddr, info_hash: &InfoHash) -> [u8; TOKEN_LEN] {
    let mut h = SipHasher24::new_with_keys(key.0, key.1);
    match ip {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => h.write(&v4.octets()),
            None => h.write(&v6.octets()),
        },
    }
    h.write(&info_hash.0);
    h.finish().to_be_bytes()
}

impl Tokens {
    /// Fresh random secrets, rotated every `every` from `now`.
    pub(crate) fn new(every: Duration, now: Instant) -> Self {
        Self {
            current: rand::random(),
            previous: rand::random(),
            rotated: now,
            every,
        }
    }

    /// Rotates the secret if its period is over (more than one period: both are replaced).
    pub(crate) fn rotate(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.rotated);
        if since < self.every {
            return;
        }
        self.previous = if since >= self.every * 2 {
            rand::random()
        } else {
            self.current
        };
        self.current = rand::random();
        self.rotated = now;
    }

    /// The token for `ip` to announce `info_hash`.
    pub(crate) fn issue(&self, ip: IpAddr, info_hash: &InfoHash) -> [u8; TOKEN_LEN] {
        mac(self.current, ip, info_hash)
    }

    /// True if `token` was issued to `ip` for `info_hash` under the current or previous secret.
    pub(crate) fn verify(&self, token: &[u8], ip: IpAddr, info_hash: &InfoHash) -> bool {
        if token.len() != TOKEN_LEN {
            return false;
        }
        let a = ct_eq(token, &mac(self.current, ip, info_hash));
        let b = ct_eq(token, &mac(self.previous, ip, info_hash));
        a | b
    }
}

/// Constant-time equality of two equally long byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    a.len() == b.len() && diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_secret_accepted_older_refused() {
        let t0 = Instant::now();
        let every = Duration::from_secs(300);
        let mut t = Tokens::new(every, t0);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let ih = InfoHash([9; 20]);
        let tok = t.issue(ip, &ih);
        assert!(t.verify(&tok, ip, &ih));
        assert!(!t.verify(&tok, "1.2.3.5".parse().unwrap(), &ih));
        assert!(!t.verify(&tok, ip, &InfoHash([8; 20])));
        assert!(!t.verify(&tok[..4], ip, &ih));
        t.rotate(t0 + Duration::from_secs(299));
        assert_eq!(t.issue(ip, &ih), tok, "rotated early");
        t.rotate(t0 + every);
        assert_ne!(t.issue(ip, &ih), tok);
        assert!(t.verify(&tok, ip, &ih), "previous secret refused");
        t.rotate(t0 + every * 2);
        assert!(!t.verify(&tok, ip, &ih), "token two rotations old accepted");
    }

    #[test]
    fn a_long_pause_drops_both_secrets() {
        let t0 = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(300), t0);
        let ip: IpAddr = "::1".parse().unwrap();
        let ih = InfoHash([1; 20]);
        let tok = t.issue(ip, &ih);
        t.rotate(t0 + Duration::from_secs(3600));
        assert!(!t.verify(&tok, ip, &ih));
        // IPv4-mapped addresses are the IPv4 address.
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(t.issue(v4, &ih), t.issue(mapped, &ih));
    }
}
