//! Prints the info hashes `aquatic_udp_load_test` 0.9 announces, one hex line each, so that a
//! whitelist-only tracker (Debian's opentracker) can be given them as its allow list: the load
//! tester draws them from rand 0.8's `SmallRng` (xoshiro256++, seeded through PCG32) with a
//! fixed seed, one `next_u32() as u8` per byte. `bench/compare-aquatic.sh` uses it.
//!
//! Usage: `aquatic-hashes [COUNT]` (default 1,000,000, the tester's default torrent count).

use std::io::{BufWriter, Write};

/// The tester's seed for its info hashes.
const SEED: u64 = 0xc3aa_8be6_17b3_acce;

/// xoshiro256++ as rand 0.8's `SmallRng` on 64-bit targets.
struct Xoshiro256PlusPlus([u64; 4]);

impl Xoshiro256PlusPlus {
    /// rand 0.8's `SmallRng::seed_from_u64`, which is rand_core 0.6's default (not
    /// xoshiro's own SplitMix64 seeding): the 32 seed bytes from PCG32 outputs, read as four
    /// little-endian words (all-zero seeds never occur for this seed).
    fn seed_from_u64(mut state: u64) -> Self {
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_exact_mut(4) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(11_634_580_027_462_260_723);
            let xorshifted = (((state >> 18) ^ state) >> 27) as u32;
            let rot = (state >> 59) as u32;
            chunk.copy_from_slice(&xorshifted.rotate_right(rot).to_le_bytes());
        }
        let mut s = [0u64; 4];
        for (w, bytes) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *w = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
        }
        Self(s)
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// rand 0.8's `gen::<u8>()`: the low byte of `next_u32`, the high half of `next_u64`.
    fn next_u8(&mut self) -> u8 {
        ((self.next_u64() >> 32) as u32) as u8
    }
}

fn main() -> std::io::Result<()> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| std::io::Error::other(format!("count: {e}")))?,
        None => 1_000_000,
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        for _ in 0..20 {
            write!(out, "{:02x}", rng.next_u8())?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}
