//! A keyed hash for info hashes, cheaper than the general-purpose one: two 64-bit folded
//! multiplies over the 20 bytes, with keys drawn at start.
//!
//! It picks a torrent's shard and places it in the shard's maps. Info hashes are SHA-1
//! outputs, already uniform, and the maps hold only torrents an operator listed (or their
//! leftover sessions), so clients cannot fill them with colliding keys; the keys keep the shard
//! of a hash unpredictable all the same.

use std::hash::{BuildHasher, Hasher};

/// `x × y` as 128 bits, folded to 64 by xor of the halves.
#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A random odd multiplier, for when a key would make one.
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The keys; builds [`InfoHasher`]s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InfoHashState {
    k: [u64; 3],
}

impl InfoHashState {
    /// Fresh random keys.
    pub(crate) fn new() -> Self {
        Self { k: rand::random() }
    }
}

impl BuildHasher for InfoHashState {
    type Hasher = InfoHasher;

    #[inline]
    fn build_hasher(&self) -> InfoHasher {
        InfoHasher { k: self.k, h: 0 }
    }
}

/// Hashes one info hash (or, correctly if slowly, any bytes).
#[derive(Debug, Clone)]
pub(crate) struct InfoHasher {
    k: [u64; 3],
    h: u64,
}

impl Hasher for InfoHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if let Ok(b) = <&[u8; 20]>::try_from(bytes) {
            let [a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, c0, c1, c2, c3] =
                *b;
            let a = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
            let b = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
            let c = u64::from(u32::from_le_bytes([c0, c1, c2, c3]));
            let x = fold(a ^ self.k[0], b ^ self.k[1]);
            self.h = fold(x ^ c ^ self.h, self.k[2] | 1);
            return;
        }
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            self.h = fold(self.h ^ w ^ self.k[0], MUL ^ self.k[1]);
        }
    }

    /// Slice lengths (written before the bytes of an array) carry nothing for fixed-size keys.
    #[inline]
    fn write_usize(&mut self, _len: usize) {}

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use swarmd_proto::InfoHash;

    use super::*;

    #[test]
    fn every_byte_counts_and_keys_differ() {
        let s = InfoHashState::new();
        let base = s.hash_one(InfoHash([7; 20]));
        for i in 0..20 {
            let mut h = [7; 20];
            h[i] ^= 1;
            assert_ne!(s.hash_one(InfoHash(h)), base, "byte {i}");
        }
        assert_ne!(InfoHashState::new().hash_one(InfoHash([7; 20])), base);
        assert_eq!(s.hash_one(InfoHash([7; 20])), base);
        // Other shapes still hash deterministically and distinctly.
        assert_ne!(s.hash_one(b"abc"), s.hash_one(b"abd"));
    }

    #[test]
    fn low_and_high_bits_spread() {
        let s = InfoHashState::new();
        let mut low = HashSet::new();
        let mut high = HashSet::new();
        for n in 0..4096u32 {
            let mut h = [0; 20];
            h[..4].copy_from_slice(&n.to_le_bytes());
            let x = s.hash_one(InfoHash(h));
            low.insert(x & 0xff);
            high.insert(x >> 57);
        }
        assert_eq!(low.len(), 256);
        assert_eq!(high.len(), 128);
    }
}
