//! The binary's allocator: jemalloc, with transparent huge pages for everything it maps.
//!
//! The swarm registry (and the private-mode state) is tens of megabytes read at random, one
//! torrent per request: on 4 KiB pages nearly every lookup also misses the TLB, and in a VM a
//! TLB miss walks two sets of page tables. With 2 MiB pages the whole registry fits in the
//! TLB's reach. Measured with 2M peers over 1M torrents, UDP mix saturated, swarmd pinned to one
//! core (`bench/compare.sh`'s setup), glibc malloc against jemalloc with huge pages, alternating
//! runs: 2.51-2.56 against 2.37-2.50 µs of server CPU per reply, 376-382k against 385-407k
//! replies/s. glibc's own `glibc.malloc.hugetlb=1` tunable does not reach the per-thread arenas
//! the workers allocate from.
//!
//! The setting applies where the kernel lets programs ask (`/sys/kernel/mm/transparent_hugepage/
//! enabled` is `madvise` or `always`). Operators can override it at run time through jemalloc's
//! environment variable, for example `_RJEM_MALLOC_CONF=thp:default` to follow the system's
//! choice instead.

#![allow(unsafe_code)]

use std::ffi::c_char;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A C string pointer in a static.
#[repr(transparent)]
struct ConfPtr(*const c_char);

// SAFETY: it points at an immutable, NUL-terminated string literal that lives forever.
unsafe impl Sync for ConfPtr {}

/// jemalloc's compiled-in options, read once before the first allocation (jemalloc's
/// `malloc_conf`, under the symbol prefix of the `tikv-jemalloc-sys` build).
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: ConfPtr = ConfPtr(c"thp:always,metadata_thp:always".as_ptr());
