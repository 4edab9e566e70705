//! Stateless BEP 15 connection ids: a keyed MAC of (client IP, issue time), so the server keeps
//! no per-client state and a spoofed source never sees a valid id.
//!
//! The id is bound to the IP, not the port: proving the client can receive at its IP is what
//! stops spoofed announces, and real clients reuse one cached id from several sockets
//! (libtorrent caches ids per tracker for the whole process, so its sessions and listen sockets
//! share them; NATs may also change the source port between packets).
//!
//! Layout of an id (64 bits, big endian on the wire):
//!
//! ```text
//! | issue time, low 16 bits (seconds) | SipHash-2-4(key, ip16 || issue time u32), low 48 bits |
//! ```
//!
//! Verification reads the issue time's low bits, takes the wrapping age against now, refuses it if
//! older than the lifetime (a "future" id wraps to a huge age and is refused the same way),
//! rebuilds the full 32-bit issue time as `now - age` and recomputes the one MAC over it. Because
//! the MAC covers the full issue time, an id replayed 2^16 seconds later does not verify. The
//! comparison is one XOR of two `u64`s and a single test of the result: no early exit on the first
//! differing byte.

use std::net::IpAddr;

use siphasher::sip::SipHasher24;
use swarmd_swarm::clock::Secs;

/// Bits of an id carrying the MAC.
const MAC_BITS: u32 = 48;
/// Mask of the MAC part of an id.
const MAC_MASK: u64 = (1 << MAC_BITS) - 1;
/// Shortest lifetime accepted: BEP 15 lets clients use an id for a minute.
pub(crate) const MIN_LIFETIME: Secs = 60;
/// Longest lifetime accepted: the issue time carried in the id has 16 bits.
pub(crate) const MAX_LIFETIME: Secs = u16::MAX as Secs;

/// Issues and verifies connection ids under one secret key.
#[derive(Clone)]
pub(crate) struct ConnectionIds {
    hasher: SipHasher24,
    lifetime: Secs,
}

impl std::fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ConnectionIds")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl ConnectionIds {
    /// Ids keyed by `secret`, valid for `lifetime` seconds, clamped to 60..=65535. All 32 bytes
    /// matter: SipHash's 128-bit key is derived as two SipHashes of the second half (with a
    /// domain byte each) under the first half.
    pub(crate) fn new(secret: &[u8; 32], lifetime: Secs) -> Self {
        let (first, second) = secret.split_at(16);
        let mut first16 = [0u8; 16];
        first16.copy_from_slice(first);
        let kdf = SipHasher24::new_with_key(&first16);
        let mut msg = [0u8; 17];
        msg[..16].copy_from_slice(second);
        let k0 = kdf.hash(&msg);
        msg[16] = 1;
        let k1 = kdf.hash(&msg);
        Self {
            hasher: SipHasher24::new_with_keys(k0, k1),
            lifetime: lifetime.clamp(MIN_LIFETIME, MAX_LIFETIME),
        }
    }

    /// The lifetime in force, after clamping.
    #[cfg(test)]
    pub(crate) fn lifetime(&self) -> Secs {
        self.lifetime
    }

    fn mac(&self, ip: IpAddr, issued: Secs) -> u64 {
        let ip16 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut msg = [0u8; 20];
        msg[..16].copy_from_slice(&ip16.octets());
        msg[16..].copy_from_slice(&issued.to_be_bytes());
        self.hasher.hash(&msg) & MAC_MASK
    }

    /// A connection id for a client at `ip` at time `now`. `ip` should be canonical
    /// (IPv4-mapped IPv6 addresses as IPv4), though both forms give the same id.
    pub(crate) fn issue(&self, ip: IpAddr, now: Secs) -> u64 {
        (u64::from(now as u16) << MAC_BITS) | self.mac(ip, now)
    }

    /// True if `id` was issued to `ip` by this key at most `lifetime` seconds before `now` and
    /// not after it. Costs one MAC.
    pub(crate) fn verify(&self, id: u64, ip: IpAddr, now: Secs) -> bool {
        let stamp = (id >> MAC_BITS) as u16;
        let age = (now as u16).wrapping_sub(stamp);
        if Secs::from(age) > self.lifetime {
            return false;
        }
        let issued = now.wrapping_sub(Secs::from(age));
        let expected = self.mac(ip, issued);
        // One XOR over the whole MAC, one test: timing does not depend on where ids differ.
        ((id & MAC_MASK) ^ expected) == 0
    }
}

/// `ip` with IPv4-mapped IPv6 addresses turned into IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V6_ANY: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    fn ids(lifetime: Secs) -> ConnectionIds {
        ConnectionIds::new(&[7; 32], lifetime)
    }

    #[test]
    fn valid_for_exactly_the_lifetime() {
        let c = ids(600);
        for t0 in [0, 1_000, 65_530, 65_536 * 3 + 100, u32::MAX - 300] {
            let id = c.issue(IP, t0);
            assert!(c.verify(id, IP, t0));
            assert!(c.verify(id, IP, t0.wrapping_add(600)), "t0={t0}");
            assert!(!c.verify(id, IP, t0.wrapping_add(601)), "t0={t0}");
        }
    }

    #[test]
    fn future_and_wrapped_ids_are_refused() {
        let c = ids(600);
        let id = c.issue(IP, 10_000);
        assert!(!c.verify(id, IP, 9_999));
        assert!(!c.verify(id, IP, 10_000u32.wrapping_sub(60_000)));
        // Same 16-bit stamp, 2^16 seconds later: the MAC covers the full time.
        assert!(!c.verify(id, IP, 10_000 + 65_536));
        assert!(!c.verify(id, IP, 10_000 + 65_536 + 5));
    }

    #[test]
    fn bound_to_ip_and_key_not_port() {
        let c = ids(600);
        let id = c.issue(IP, 5);
        // Another port of the same IP may reuse the id (clients share ids across sockets).
        assert!(c.verify(id, IP, 5));
        assert!(!c.verify(id, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)), 5));
        assert!(!ConnectionIds::new(&[8; 32], 600).verify(id, IP, 5));
        for bit in 0..64 {
            assert!(!c.verify(id ^ (1 << bit), IP, 5), "bit {bit}");
        }
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert!(c.verify(id, mapped, 5));
        assert!(!c.verify(id, IpAddr::V6(V6_ANY), 5));
    }

    #[test]
    fn lifetime_is_clamped() {
        assert_eq!(ids(0).lifetime(), 60);
        assert_eq!(ids(1_000_000).lifetime(), 65_535);
        let c = ids(1_000_000);
        let id = c.issue(IP, 0);
        assert!(c.verify(id, IP, 65_535));
        assert!(!c.verify(id, IP, 65_536));
    }

    #[test]
    fn canonicalises_mapped_addresses() {
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(canonical(IpAddr::V6(V6_ANY)), IpAddr::V6(V6_ANY));
    }
}
