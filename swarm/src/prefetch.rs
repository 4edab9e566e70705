//! A cache prefetch hint, for lookups whose keys are known a few requests ahead (a batch of
//! datagrams): the first memory accesses of the next requests overlap the work on this one.

#![allow(unsafe_code)]

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
