//! Per-source token buckets in a fixed-size table, so an attacker spraying source addresses
//! cannot grow memory: IPv4 sources are keyed by address, IPv6 ones by /64. The table is
//! 4-way set associative under a keyed hash; a new source takes the least recently active slot
//! of its set. Each slot also counts the source's queries in the current minute, for "fewer
//! nodes for repeat requesters".

use std::hash::Hasher;
use std::net::IpAddr;
use std::time::Instant;

use siphasher::sip::SipHasher13;

const WAYS: usize = 4;
/// Token amounts are kept in thousandths.
const MILLI: u64 = 1000;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Keyed hash of the source (never 0 for a used slot).
    key: u32,
    /// Milliseconds since the limiter's epoch at the last update (wrapping).
    last_ms: u32,
    /// Tokens left, in thousandths.
    tokens: u32,
    /// Queries in `minute`.
    count: u16,
    /// The minute (since the epoch, wrapping) `count` is for.
    minute: u16,
}

/// The verdict on one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// False: over the limit, drop the packet.
    pub(crate) allowed: bool,
    /// Queries from this source in the current minute, this one included.
    pub(crate) recent: u32,
}

/// The limiter. 16 bytes per tracked source.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    slots: Box<[Slot]>,
    sets: usize,
    keys: (u64, u64),
    /// Tokens per second, in thousandths per millisecond (= tokens per second); 0: no limit.
    rate: u64,
    burst: u64,
    epoch: Instant,
}

impl RateLimiter {
    /// A limiter refilling `rate` tokens a second up to `burst`, tracking about `capacity`
    /// sources (rounded up to a power of two).
    pub(crate) fn new(rate: u32, burst: u32, capacity: usize, epoch: Instant) -> Self {
        let sets = capacity
            .clamp(WAYS, 1 << 24)
            .div_ceil(WAYS)
            .next_power_of_two();
        Self {
            slots: vec![Slot::default(); sets * WAYS].into_boxed_slice(),
            sets,
            keys: rand::random(),
            rate: u64::from(rate),
            burst: u64::from(burst.max(1)) * MILLI,
            epoch,
        }
    }

    /// Sources the table can track at once.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn hash(&self, ip: IpAddr) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => h.write(&v4.octets()),
                None => {
                    h.write_u8(6);
                    h.write(&v6.octets()[..8]);
                }
            },
        }
        h.finish()
    }

    /// Takes one token for a query from `ip` at `now`.
    pub(crate) fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        let h = self.hash(ip);
        let key = (h as u32).max(1);
        let set = ((h >> 32) as usize) & (self.sets - 1);
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        let minute = (ms / 60_000) as u16;
        let ways = &mut self.slots[set * WAYS..(set + 1) * WAYS];
        let i = match ways.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                // The least recently active slot (empty slots have last_ms 0 and key 0).
                let i = ways
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, s)| {
                        if s.key == 0 {
                            u32::MAX
                        } else {
                            ms.wrapping_sub(s.last_ms)
                        }
                    })
                    .map_or(0, |(i, _)| i);
                ways[i] = Slot {
                    key,
                    last_ms: ms,
                    tokens: self.burst as u32,
                    count: 0,
                    minute,
                };
                i
            }
        };
        let s = &mut ways[i];
        if s.minute != minute {
            s.minute = minute;
            s.count = 0;
        }
        s.count = s.count.saturating_add(1);
        let recent = u32::from(s.count);
        if self.rate == 0 {
            s.last_ms = ms;
            return Verdict {
                allowed: true,
                recent,
            };
        }
        let elapsed = u64::from(ms.wrapping_sub(s.last_ms));
        s.last_ms = ms;
        let tokens = (u64::from(s.tokens) + elapsed * self.rate).min(self.burst);
        let allowed = tokens >= MILLI;
        s.tokens = (if allowed { tokens - MILLI } else { tokens }) as u32;
        Verdict { allowed, recent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10, 5, 64, t0);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let allowed = (0..20).filter(|_| l.check(ip, t0).allowed).count();
        assert_eq!(allowed, 5, "burst");
        // Another source is unaffected.
        assert!(l.check("1.2.3.5".parse().unwrap(), t0).allowed);
        // 300 ms later: 3 tokens.
        let t1 = t0 + Duration::from_millis(300);
        let allowed = (0..20).filter(|_| l.check(ip, t1).allowed).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn ipv6_is_keyed_by_slash_64() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, 2, 64, t0);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(a, t0).allowed);
        assert!(l.check(b, t0).allowed);
        assert!(!l.check(a, t0).allowed, "same /64 shares the bucket");
        assert!(l.check(c, t0).allowed);
    }

    #[test]
    fn spraying_sources_keeps_memory_fixed() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, 1, 1024, t0);
        let cap = l.capacity();
        for i in 0..200_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            l.check(ip, t0 + Duration::from_micros(u64::from(i)));
        }
        assert_eq!(l.capacity(), cap);
        assert_eq!(l.slots.len(), 1024);
    }

    #[test]
    fn counts_queries_per_minute() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(0, 1, 64, t0);
        let ip: IpAddr = "9.9.9.9".parse().unwrap();
        for n in 1..=100 {
            let v = l.check(ip, t0);
            assert!(v.allowed, "rate 0 means unlimited");
            assert_eq!(v.recent, n);
        }
        assert_eq!(l.check(ip, t0 + Duration::from_secs(61)).recent, 1);
    }
}
