//! A slab: values numbered by `u32`, kept in fixed-size chunks of [`CHUNK`] and reused through a
//! free list. Chunks are allocated once and never reallocated, so a slab costs at most one
//! partly used chunk over its values, copies nothing as it grows, and hands the allocator the
//! same small blocks for every shard. (Growing one vector per shard instead left the resident
//! size of the 2M-peer test half as large again as its heap: reallocations fragment it.)
//! [`Slab::compact`] packs the values back down after mass removal.

/// Values per chunk (a power of two).
pub(crate) const CHUNK: usize = 32;

type Chunk<T> = Box<[T; CHUNK]>;

/// Chunks whose pointers live in the slab itself: a slab of up to `HEAD * CHUNK` values needs
/// no chunk table, so reaching a value takes no load beyond the shard's own cache lines.
const HEAD: usize = 4;

/// Values of type `T` by number; a vacant number holds `T::default()`.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Slab<T> {
    /// Chunks `0..HEAD` (first, so they share a cache line with whatever precedes the slab).
    head: [Option<Chunk<T>>; HEAD],
    /// Chunks `HEAD..`.
    tail: Vec<Chunk<T>>,
    /// Vacated numbers below `fresh`, reused last-in first-out.
    free: Vec<u32>,
    /// Numbers from here on have never been used since the last growth or compaction.
    fresh: u32,
}

impl<T: Default> Slab<T> {
    pub(crate) fn new() -> Self {
        Self {
            head: [None, None, None, None],
            tail: Vec::new(),
            free: Vec::new(),
            fresh: 0,
        }
    }

    /// Chunks allocated.
    fn chunk_count(&self) -> usize {
        self.head.iter().filter(|c| c.is_some()).count() + self.tail.len()
    }

    #[inline]
    fn chunk(&self, k: usize) -> Option<&Chunk<T>> {
        match self.head.get(k) {
            Some(c) => c.as_ref(),
            None => self.tail.get(k - HEAD),
        }
    }

    #[inline]
    fn chunk_mut(&mut self, k: usize) -> Option<&mut Chunk<T>> {
        match self.head.get_mut(k) {
            Some(c) => c.as_mut(),
            None => self.tail.get_mut(k - HEAD),
        }
    }

    fn push_chunk(&mut self, chunk: Chunk<T>) {
        match self.head.iter_mut().find(|c| c.is_none()) {
            Some(slot) => *slot = Some(chunk),
            None => self.tail.push(chunk),
        }
    }

    /// Keeps the first `n` chunks.
    fn truncate_chunks(&mut self, n: usize) {
        self.tail.truncate(n.saturating_sub(HEAD));
        self.tail.shrink_to_fit();
        for c in self.head.iter_mut().skip(n) {
            *c = None;
        }
    }

    /// Values held.
    pub(crate) fn len(&self) -> usize {
        self.fresh as usize - self.free.len()
    }

    /// Numbers allocated, vacant ones included.
    pub(crate) fn slots(&self) -> usize {
        self.chunk_count() * CHUNK
    }

    /// Every allocated number (for a pass that may vacate numbers as it goes: nothing moves).
    pub(crate) fn numbers(&self) -> std::ops::Range<u32> {
        0..self.fresh
    }

    /// The value numbered `i` (vacant or not). Panics if `i` was never allocated.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> &T {
        match self.chunk(i as usize / CHUNK) {
            Some(c) => &c[i as usize % CHUNK],
            None => panic!("slab number {i} out of range"),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        match self.chunk_mut(i as usize / CHUNK) {
            Some(c) => &mut c[i as usize % CHUNK],
            None => panic!("slab number {i} out of range"),
        }
    }

    /// The value numbered `i`, if allocated.
    #[inline]
    pub(crate) fn try_get(&self, i: usize) -> Option<&T> {
        self.chunk(i / CHUNK).map(|c| &c[i % CHUNK])
    }

    /// Stores `value` under a vacant number below `limit`; `None` if there is none.
    pub(crate) fn insert(&mut self, value: T, limit: usize) -> Option<u32> {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.fresh as usize == self.slots() {
                    if self.slots() + CHUNK > limit.min(u32::MAX as usize) {
                        return None;
                    }
                    let chunk: Box<[T]> = (0..CHUNK).map(|_| T::default()).collect();
                    self.push_chunk(chunk.try_into().ok()?);
                }
                self.fresh += 1;
                self.fresh - 1
            }
        };
        *self.get_mut(i) = value;
        Some(i)
    }

    /// Takes the value numbered `i` out, leaving its number vacant for reuse.
    pub(crate) fn take(&mut self, i: u32) -> T {
        self.free.push(i);
        std::mem::take(self.get_mut(i))
    }

    /// True if over a quarter of the allocated numbers, and at least two chunks' worth, are
    /// vacant: time to [`compact`](Slab::compact).
    pub(crate) fn sparse(&self) -> bool {
        let vacant = self.slots() - self.len();
        vacant >= 2 * CHUNK && vacant.saturating_mul(4) > self.slots()
    }

    /// Moves every value for which `live` holds into the lowest numbers, calling
    /// `moved(from, to, value)` for each move, and frees the chunks left empty.
    pub(crate) fn compact(
        &mut self,
        live: impl Fn(&T) -> bool,
        mut moved: impl FnMut(u32, u32, &T),
    ) {
        let n = u32::try_from(self.len()).unwrap_or(u32::MAX);
        let mut hole = 0;
        for src in n..self.fresh {
            if !live(self.get(src)) {
                continue;
            }
            // There are as many holes below `n` as live values above it.
            while hole < n && live(self.get(hole)) {
                hole += 1;
            }
            if hole == n {
                debug_assert!(false, "no hole to compact into");
                return;
            }
            let value = std::mem::take(self.get_mut(src));
            moved(src, hole, &value);
            *self.get_mut(hole) = value;
            hole += 1;
        }
        self.truncate_chunks((n as usize).div_ceil(CHUNK));
        self.free = Vec::new();
        self.fresh = n;
    }

    /// Checks that exactly the vacant numbers are free (tests).
    #[cfg(test)]
    pub(crate) fn check(&self, live: impl Fn(&T) -> bool) {
        let mut free = self.free.clone();
        free.sort_unstable();
        let before = free.len();
        free.dedup();
        assert_eq!(free.len(), before, "a number freed twice");
        for i in 0..self.slots() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let vacant = i >= self.fresh || free.binary_search(&i).is_ok();
            assert_eq!(live(self.get(i)), !vacant, "slot {i} misfiled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_take_reuse_and_compact() {
        let mut slab: Slab<Option<u32>> = Slab::new();
        let numbers: Vec<u32> = (0..100)
            .map(|v| slab.insert(Some(v), usize::MAX).expect("room"))
            .collect();
        assert_eq!(numbers, (0..100).collect::<Vec<_>>());
        assert_eq!((slab.len(), slab.slots()), (100, 128));
        assert_eq!(slab.take(7), Some(7));
        assert_eq!(slab.insert(Some(1000), usize::MAX), Some(7));
        slab.check(Option::is_some);
        for i in (0..100).filter(|i| i % 10 != 3) {
            slab.take(i);
        }
        assert!(slab.sparse());
        let mut moves = Vec::new();
        slab.compact(Option::is_some, |from, to, v| moves.push((from, to, *v)));
        slab.check(Option::is_some);
        assert_eq!((slab.len(), slab.slots()), (10, 32));
        // Values above the 10 kept numbers moved into the holes, lowest first.
        assert_eq!(moves[0], (13, 0, Some(13)));
        let mut kept: Vec<u32> = (0..10).filter_map(|i| *slab.get(i)).collect();
        kept.sort_unstable();
        assert_eq!(kept, (0..10).map(|i| i * 10 + 3).collect::<Vec<_>>());
        assert_eq!(slab.insert(Some(5), usize::MAX), Some(10));
        // A limit is honoured a chunk at a time.
        let mut small: Slab<Option<u32>> = Slab::new();
        for v in 0..32 {
            assert!(small.insert(Some(v), 40).is_some());
        }
        assert_eq!(small.insert(Some(32), 40), None);
    }
}
