//! The BEP 6 allowed-fast set: pieces a peer may download while choked, derived from its /24
//! network and the info hash so that every client computes the same set for it.
//!
//! This crate holds no hash function: the caller passes SHA-1 (for example
//! `|b| sha1::Sha1::digest(b).into()`), which keeps the codec free of crypto dependencies.

use std::net::Ipv4Addr;

use crate::InfoHash;

/// The first `k` pieces (fewer only if the torrent has fewer than `k` pieces) of the
/// allowed-fast set of a peer at `ip`, in BEP 6 order.
///
/// BEP 6: `x` is the peer's address with its last byte zeroed, followed by the info hash;
/// then, until `k` indices are found, `x = SHA-1(x)` and each of the five big-endian 32-bit
/// words of `x`, taken modulo the piece count, is added unless already present. BEP 6 defines
/// the set for IPv4 only.
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    num_pieces: u32,
    k: usize,
    mut sha1: impl FnMut(&[u8]) -> [u8; 20],
) -> Vec<u32> {
    let k = k.min(usize::try_from(num_pieces).unwrap_or(usize::MAX));
    let mut set = Vec::with_capacity(k);
    let mut masked = ip.octets();
    masked[3] = 0;
    let mut x = sha1(&[&masked[..], &info_hash.0].concat());
    loop {
        for word in x.chunks_exact(4) {
            if set.len() >= k {
                return set;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        if set.len() >= k {
            return set;
        }
        x = sha1(&x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 of the inputs the BEP 6 example needs, computed independently (Python's
    /// `hashlib.sha1`): the 24-byte seed `80.4.4.0 ++ 0xaa * 20`, then the first digest.
    fn sha1_table(input: &[u8]) -> [u8; 20] {
        let seed = [&[80, 4, 4, 0][..], &[0xaa; 20]].concat();
        let first = hex("873ad9e326238a7096f3320c379fb49d5132ae18");
        let second = hex("f06741233e4f7f6197e5305495353c8dfd85d6fe");
        if input == seed {
            first
        } else if input == first {
            second
        } else {
            panic!("unexpected SHA-1 input {input:02x?}")
        }
    }

    fn hex(s: &str) -> [u8; 20] {
        let mut out = [0; 20];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default();
        }
        out
    }

    #[test]
    fn bep6_vectors() {
        let ih = InfoHash([0xaa; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 7, sha1_table),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 9, sha1_table),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // Same /24, same set.
        let neighbour = Ipv4Addr::new(80, 4, 4, 1);
        assert_eq!(
            allowed_fast_set(neighbour, &ih, 1313, 7, sha1_table),
            allowed_fast_set(ip, &ih, 1313, 7, sha1_table)
        );
    }

    #[test]
    fn small_torrents_terminate() {
        // A stand-in hash that walks through values; only termination and bounds matter here.
        let mut n = 0u8;
        let fake = |_: &[u8]| {
            n = n.wrapping_add(1);
            [n; 20]
        };
        let set = allowed_fast_set(Ipv4Addr::LOCALHOST, &InfoHash([1; 20]), 3, 10, fake);
        assert_eq!(set.len(), 3);
        assert!(set.iter().all(|i| *i < 3));
        let none = allowed_fast_set(Ipv4Addr::LOCALHOST, &InfoHash([1; 20]), 0, 10, |_| [0; 20]);
        assert!(none.is_empty());
    }
}
