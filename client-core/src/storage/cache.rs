//! A bounded cache of open file handles, least recently used out first, so a torrent of
//! thousands of files never holds thousands of descriptors.
//!
//! Handles are shared (`Arc`) and used outside the cache's lock, so positional I/O on different
//! files, or on the same file, runs in parallel. An evicted handle closes when its last in-flight
//! operation ends, and the handle a lookup evicts is closed after the lock is released, so
//! open descriptors stay at most the capacity plus two per thread doing I/O: the handle it is
//! using (or has just opened), evicted meanwhile by another thread, and one it has evicted and
//! not closed yet. Opening happens outside the lock too; when two threads open the same file at
//! once, the later insert wins and the other handle closes after its use.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Counters of a [`FileStorage`](super::FileStorage)'s open-file cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Handles held by the cache now.
    pub cached: usize,
    /// Handles open now (cached, or evicted but still in use).
    pub open: usize,
    /// Most handles ever open at once.
    pub peak_open: usize,
    /// Files opened so far (cache misses).
    pub opens: u64,
    /// Lookups served from the cache.
    pub hits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    open: AtomicUsize,
    peak_open: AtomicUsize,
    opens: AtomicU64,
    hits: AtomicU64,
}

/// An open file, counted while it lives.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) file: File,
    /// Opened for writing too.
    pub(crate) writable: bool,
    counters: Arc<Counters>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Entry {
    handle: Arc<Handle>,
    last_used: u64,
}

#[derive(Debug)]
struct Inner {
    map: HashMap<usize, Entry>,
    tick: u64,
}

/// The cache, keyed by file index.
#[derive(Debug)]
pub(crate) struct FileCache {
    inner: Mutex<Inner>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl FileCache {
    /// A cache of at most `capacity` handles (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                tick: 0,
            }),
            capacity: capacity.max(1),
            counters: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics under this lock; a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handle of file `index`, writable if `write`; on a miss `open` opens the file and says
    /// whether the handle it returns is writable.
    pub(crate) fn get<E>(
        &self,
        index: usize,
        write: bool,
        open: impl FnOnce() -> Result<(File, bool), E>,
    ) -> Result<Arc<Handle>, E> {
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(e) = inner.map.get_mut(&index) {
                if e.handle.writable || !write {
                    e.last_used = tick;
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Arc::clone(&e.handle));
                }
            }
        }
        let (file, writable) = open()?;
        self.counters.opens.fetch_add(1, Ordering::Relaxed);
        let now = self.counters.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.counters.peak_open.fetch_max(now, Ordering::Relaxed);
        let handle = Arc::new(Handle {
            file,
            writable,
            counters: Arc::clone(&self.counters),
        });
        let evicted = {
            let mut inner = self.lock();
            inner.tick += 1;
            let last_used = inner.tick;
            let old = inner.map.insert(
                index,
                Entry {
                    handle: Arc::clone(&handle),
                    last_used,
                },
            );
            let mut evicted = Vec::from_iter(old);
            while inner.map.len() > self.capacity {
                let Some(lru) = inner
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                evicted.extend(inner.map.remove(&lru));
            }
            evicted
        };
        // Closed (if unused elsewhere) after the lock is released.
        drop(evicted);
        Ok(handle)
    }

    /// Drops every cached handle (they close once no operation uses them).
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut self.lock().map);
        drop(old);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            cached: self.lock().map.len(),
            open: self.counters.open.load(Ordering::Relaxed),
            peak_open: self.counters.peak_open.load(Ordering::Relaxed),
            opens: self.counters.opens.load(Ordering::Relaxed),
            hits: self.counters.hits.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> File {
        File::open("/dev/null").unwrap()
    }

    #[test]
    fn evicts_least_recently_used() {
        let c = FileCache::new(2);
        let open = || Ok::<_, ()>((tmp(), false));
        drop(c.get(0, false, open).unwrap());
        drop(c.get(1, false, open).unwrap());
        drop(c.get(0, false, open).unwrap()); // hit; 1 is now the oldest
        drop(c.get(2, false, open).unwrap()); // evicts 1
        let s = c.stats();
        assert_eq!((s.cached, s.open, s.opens, s.hits), (2, 2, 3, 1));
        drop(c.get(0, false, open).unwrap());
        assert_eq!(c.stats().hits, 2);
        drop(c.get(1, false, open).unwrap());
        assert_eq!(c.stats().opens, 4);
        assert!(c.stats().peak_open <= 3);
    }

    #[test]
    fn read_only_handle_is_reopened_for_writing() {
        let c = FileCache::new(4);
        let h = c.get(0, false, || Ok::<_, ()>((tmp(), false))).unwrap();
        assert!(!h.writable);
        drop(h);
        let h = c.get(0, true, || Ok::<_, ()>((tmp(), true))).unwrap();
        assert!(h.writable);
        assert_eq!(c.stats().opens, 2);
        drop(h);
        c.clear();
        assert_eq!((c.stats().cached, c.stats().open), (0, 0));
    }

    #[test]
    fn open_errors_pass_through() {
        let c = FileCache::new(4);
        assert_eq!(
            c.get(0, false, || Err::<(File, bool), _>(7)).unwrap_err(),
            7
        );
        assert_eq!(c.stats().open, 0);
    }
}
