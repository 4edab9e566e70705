//! A cache prefetch hint, for lookups whose keys are known a few requests ahead (a batch of
//! datagrams): the first memory accesses of the next requests overlap the work on this one.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// Asks the CPU to start loading the cache line holding `p` into every cache level, and
/// returns at once. A hint only: it reads nothing the program can observe, so any address,
/// even a dangling or unmapped one, is fine. A no-op on targets without a stable intrinsic.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and has no architectural effect whatever the address;
    // SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading every cache line of the value at `p` (for a `T` of at most 64 bytes: its
/// first and its last byte). A value that is not line-aligned, such as a 48-byte record at an
/// offset of 48 or 96 in its chunk, straddles two lines, and a hint for its first line alone
/// leaves the second to miss when the value is read.
#[inline(always)]
pub fn prefetch_value<T>(p: *const T) {
    prefetch(p);
    if size_of::<T>() > 1 {
        prefetch(p.cast::<u8>().wrapping_add(size_of::<T>() - 1));
    }
}

/// Where a lock-guarded array of `T` lives, published beside its lock so that prefetch hints
/// can find an element without taking the lock: (address, length - 1), (0, 0) for none. The
/// lock's holder republishes after every change that may move the array. Nothing ever reads
/// through the published address (it may be stale, even freed): a stale pair only misdirects
/// a hint.
#[derive(Debug, Default)]
pub struct Published([AtomicUsize; 2]);

impl Published {
    /// Records the array's current place: its first element's address and its length minus
    /// one, a power of two minus one ((0, 0) for none).
    #[inline]
    pub fn publish(&self, (base, mask): (usize, usize)) {
        self.0[0].store(base, Ordering::Relaxed);
        self.0[1].store(mask, Ordering::Relaxed);
    }

    /// The published (address, length - 1).
    #[inline]
    pub fn get(&self) -> (usize, usize) {
        (
            self.0[0].load(Ordering::Relaxed),
            self.0[1].load(Ordering::Relaxed),
        )
    }

    /// Starts loading element `bits & (length - 1)` of the array as last published, if any.
    #[inline]
    pub fn prefetch<T>(&self, bits: u64) {
        let (base, mask) = self.get();
        if base != 0 {
            // Truncation is intended: the low bits pick the element.
            let at = base.wrapping_add((bits as usize & mask).wrapping_mul(size_of::<T>()));
            prefetch(std::ptr::without_provenance::<T>(at));
        }
    }

    /// Starts loading every cache line of element `bits & (length - 1)` of the array as last
    /// published, if any: for elements of several lines.
    #[inline]
    pub fn prefetch_lines<T>(&self, bits: u64) {
        let (base, mask) = self.get();
        if base != 0 {
            // Truncation is intended: the low bits pick the element.
            let start = base.wrapping_add((bits as usize & mask).wrapping_mul(size_of::<T>()));
            // Counted, not compared with an end address: a wild address near the top of the
            // address space must not wrap around into a long walk.
            let lines = (start % 64 + size_of::<T>()).div_ceil(64);
            for i in 0..lines {
                let line = (start & !63).wrapping_add(i * 64);
                prefetch(std::ptr::without_provenance::<u8>(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_tables_are_only_hints() {
        let p = Published::default();
        assert_eq!(p.get(), (0, 0));
        p.prefetch::<u64>(7); // nothing published: nothing done
        let table = vec![0u64; 8];
        p.publish((table.as_ptr().addr(), table.len() - 1));
        assert_eq!(p.get(), (table.as_ptr().addr(), 7));
        for bits in [0, 7, 8, u64::MAX] {
            p.prefetch::<u64>(bits);
        }
        // A stale address (the array is gone) or a wild one is harmless.
        drop(table);
        p.prefetch::<u64>(3);
        p.publish((usize::MAX - 3, usize::MAX));
        p.prefetch::<[u8; 64]>(u64::MAX);
        p.prefetch_lines::<[u8; 192]>(u64::MAX);
        p.publish((usize::MAX - 100, 0));
        p.prefetch_lines::<[u8; 192]>(0);
    }

    #[test]
    fn value_hints_read_nothing() {
        let values = [[1u8; 48]; 4];
        for v in &values {
            prefetch_value(v);
        }
        prefetch_value(&0u8);
        prefetch_value(&());
        // Even a dangling or wild address is harmless.
        prefetch_value(std::ptr::without_provenance::<[u8; 48]>(usize::MAX - 8));
        assert_eq!(values[3][47], 1);
    }
}
