//! BEP 42 (DHT security extension): node ids derived from the node's IP address, so that a
//! node cannot choose where in the id space it sits; with CRC32C, written here since it only
//! ever runs on 4 or 8 bytes.
//!
//! The first 21 bits of a node id must equal those of `crc32c(masked ip)`, where the IP is
//! masked (IPv4: its 4 bytes with `03 0f 3f ff`; IPv6: its first 8 bytes with
//! `01 03 07 0f 1f 3f 7f ff`) and then `ip[0] |= (r & 7) << 5`, `r` being the id's last byte.
//! Local addresses ([`is_exempt`]) are exempt. A node should accept a contact into its routing
//! table, or hand it out, only if `is_exempt(ip) || is_valid_node_id(&id, ip)`.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4 peers) are
//! treated as the IPv4 address they carry, everywhere in this module.
//!
//! ```
//! use std::net::IpAddr;
//! use swarmd_proto::bep42::{is_valid_node_id, node_id_for};
//!
//! let ip: IpAddr = "124.31.75.21".parse().unwrap();
//! let id = node_id_for(ip, 1, [0x5a; 17]);
//! assert_eq!(&id.0[..2], &[0x5f, 0xbf]);
//! assert!(is_valid_node_id(&id, ip));
//! assert!(!is_valid_node_id(&id, "124.31.75.22".parse().unwrap()));
//! ```

use std::net::IpAddr;

use crate::NodeId;

/// The reflected CRC32C (Castagnoli) polynomial.
const POLY: u32 = 0x82f6_3b78;

/// The byte-at-a-time CRC32C table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Mask of the 4 IPv4 bytes hashed.
const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
/// Mask of the first 8 IPv6 bytes hashed (the rest are ignored).
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

/// CRC32C (Castagnoli, as in iSCSI and SSE 4.2): `crc32c(b"123456789") == 0xe306_9283`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

/// CRC32C of the masked IP with `(r & 7) << 5` or-ed into its first byte.
fn ip_crc(ip: IpAddr, r: u8) -> u32 {
    let r = (r & 0x07) << 5;
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let mut b = v4.octets();
            for (x, m) in b.iter_mut().zip(V4_MASK) {
                *x &= m;
            }
            b[0] |= r;
            crc32c(&b)
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut b = [0u8; 8];
            for ((x, o), m) in b.iter_mut().zip(o).zip(V6_MASK) {
                *x = o & m;
            }
            b[0] |= r;
            crc32c(&b)
        }
    }
}

/// The id prefix rule: CRC32C of the masked IP (IPv4: 4 bytes & `03 0f 3f ff`; IPv6: first 8
/// bytes & `01 03 07 0f 1f 3f 7f ff`) after `ip[0] |= (r & 7) << 5`, `r = id[19]`.
///
/// Builds the id: `id[0..2]` = the CRC's top 16 bits, `id[2]` = its bits 8..15 masked with
/// `0xf8` | `tail[0] & 0x07`, `id[3..19]` = `tail[1..17]`, `id[19]` = `r`. Every bit not fixed
/// by the rule comes from `tail` (its first byte's top 5 bits are unused), so a random `tail`
/// gives a uniformly random valid id.
pub fn node_id_for(ip: IpAddr, r: u8, tail: [u8; 17]) -> NodeId {
    let [c0, c1, c2, _] = ip_crc(ip, r).to_be_bytes();
    let mut id = [0u8; 20];
    id[0] = c0;
    id[1] = c1;
    id[2] = (c2 & 0xf8) | (tail[0] & 0x07);
    id[3..19].copy_from_slice(&tail[1..]);
    id[19] = r;
    NodeId(id)
}

/// Whether `id` obeys the rule for `ip`: its first 21 bits match the CRC32C of the masked IP
/// combined with `id[19]` (only `id[19] & 7` enters the hash). Local addresses are not special
/// here: check [`is_exempt`] first.
pub fn is_valid_node_id(id: &NodeId, ip: IpAddr) -> bool {
    let [c0, c1, c2, _] = ip_crc(ip, id.0[19]).to_be_bytes();
    id.0[0] == c0 && id.0[1] == c1 && (id.0[2] & 0xf8) == (c2 & 0xf8)
}

/// Whether `ip` is exempt from the rule (BEP 42 local/private addresses): IPv4 10/8,
/// 172.16/12, 192.168/16, 169.254/16, 127/8; IPv6 loopback (`::1`), link-local (`fe80::/10`)
/// and unique-local (`fc00::/7`).
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s0 = v6.segments()[0];
            v6.is_loopback() || (s0 & 0xffc0) == 0xfe80 || (s0 & 0xfe00) == 0xfc00
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// VECTORS.md: ip, rand, node id, full CRC32C.
    const VECTORS: [(&str, u8, &str, u32); 6] = [
        (
            "124.31.75.21",
            1,
            "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
            0x5fbf_bdb2,
        ),
        (
            "21.75.31.124",
            86,
            "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256",
            0x5a3c_e9b0,
        ),
        (
            "65.23.51.170",
            22,
            "a5d43220bc8f112a3d426c84764f8c2a1150e616",
            0xa5d4_344a,
        ),
        (
            "84.124.73.14",
            65,
            "1b0321dd1bb1fe518101ceef99462b947a01ff41",
            0x1b03_217b,
        ),
        (
            "43.213.53.83",
            90,
            "e56f6cbf5b7c4be0237986d5243b87aa6d51305a",
            0xe56f_6972,
        ),
        (
            "2001:b829:2123:be84:e16c:d6ae:5290:49f1",
            4,
            "0a8ad123be84e16cd6ae529049f1f1bbe9ebb304",
            0x0a8a_d1aa,
        ),
    ];

    #[test]
    fn crc32c_check_values() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 B.4: 32 bytes of zeros, and of 0xff.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
    }

    #[test]
    fn vectors() {
        for (ip, r, id, crc) in VECTORS {
            let ip: IpAddr = ip.parse().unwrap();
            let id: NodeId = id.parse().unwrap();
            assert_eq!(ip_crc(ip, r), crc, "{ip}");
            // The 21 prefix bits and the last byte.
            let [c0, c1, c2, _] = crc.to_be_bytes();
            assert_eq!(
                (id.0[0], id.0[1], id.0[2] & 0xf8),
                (c0, c1, c2 & 0xf8),
                "{ip}"
            );
            assert_eq!(id.0[19], r, "{ip}");
            assert!(is_valid_node_id(&id, ip), "{ip}");
            assert!(!is_exempt(ip), "{ip}");

            // Rebuilding the id from its non-prefix bits gives it back.
            let tail: [u8; 17] = id.0[2..19].try_into().unwrap();
            assert_eq!(node_id_for(ip, r, tail), id, "{ip}");

            // Flipping any of the 21 prefix bits, or one of the 3 low bits of id[19] (r & 7,
            // which enters the hash), breaks it; no other bit matters.
            for bit in 0..160 {
                let mut bad = id;
                bad.0[bit / 8] ^= 0x80 >> (bit % 8);
                let hashed = !(21..157).contains(&bit);
                assert_eq!(is_valid_node_id(&bad, ip), !hashed, "{ip} bit {bit}");
            }
            // Changing r's low bits (id[19]) breaks it.
            let mut bad = id;
            bad.0[19] = r ^ 0x01;
            assert!(!is_valid_node_id(&bad, ip), "{ip}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let v4: Ipv4Addr = "124.31.75.21".parse().unwrap();
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        let id: NodeId = VECTORS[0].2.parse().unwrap();
        assert!(is_valid_node_id(&id, mapped));
        assert_eq!(
            node_id_for(mapped, 1, [0; 17]),
            node_id_for(v4.into(), 1, [0; 17])
        );
        assert!(is_exempt(IpAddr::V6(
            Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()
        )));
    }

    #[test]
    fn exempt_addresses() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.3.4",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
        ] {
            assert!(is_exempt(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "9.255.255.255",
            "11.0.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "169.255.0.1",
            "128.0.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "fec0::1",
            "fe00::1",
            "::",
            "::2",
        ] {
            assert!(!is_exempt(ip.parse().unwrap()), "{ip}");
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ]
    }

    proptest! {
        #[test]
        fn node_id_for_is_valid(ip in any_ip(), r in any::<u8>(), tail in any::<[u8; 17]>()) {
            let id = node_id_for(ip, r, tail);
            prop_assert!(is_valid_node_id(&id, ip));
            prop_assert_eq!(id.0[19], r);
            prop_assert_eq!(id.0[2] & 0x07, tail[0] & 0x07);
            prop_assert_eq!(&id.0[3..19], &tail[1..]);
            // Another r (low bits) is another prefix, almost always.
            let other = node_id_for(ip, r ^ 0x04, tail);
            prop_assert!(is_valid_node_id(&other, ip));
        }

        #[test]
        fn ipv6_only_first_8_bytes_count(a in any::<[u8; 16]>(), b in any::<[u8; 8]>(), r in any::<u8>()) {
            let mut a2 = a;
            a2[8..].copy_from_slice(&b);
            let (ip, ip2) = (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(a2)));
            prop_assume!(ip.to_canonical().is_ipv6() && ip2.to_canonical().is_ipv6());
            let id = node_id_for(ip, r, [7; 17]);
            prop_assert!(is_valid_node_id(&id, ip2));
        }
    }
}
