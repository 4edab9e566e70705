//! A map tuned for the sizes of a torrent's peer sessions and pending records: most torrents
//! hold 1–3. The first entry is stored inline (so, in a torrent's state, it costs no pointer
//! chase: the cache misses that find the torrent find it), the others in a vector.
//! Beside that vector runs one of 32-bit tags, a digest of each entry's key, so a lookup scans
//! 16 tags per cache line and reads only the entry whose tag matches, instead of one entry
//! (64-88 bytes, a cache line) per step; past [`BIG`] entries a hash index (key → position) is
//! built as well, so lookups in big swarms stay O(1). Entries carry their own key ([`Keyed`]).

use std::collections::HashMap;
use std::hash::Hash;

use ahash::RandomState;

/// Above this many entries an index is built.
const BIG: usize = 32;
/// Below this many entries the index is dropped again (hysteresis, so a swarm hovering around
/// [`BIG`] does not rebuild it at every change).
const SMALL: usize = 16;

/// An entry that knows its key.
pub(crate) trait Keyed {
    /// The key type: cheap to copy and compare.
    type Key: Copy + Eq + Hash;
    /// This entry's key.
    fn key(&self) -> Self::Key;
    /// A 32-bit digest of `key`, compared before the key itself. Equal keys must give equal
    /// tags; unequal keys should rarely collide, but a collision (even a crafted one) only
    /// costs a key comparison.
    fn tag(key: Self::Key) -> u32;
}

/// Folds 64 bits into a 32-bit tag (multiply, then keep the well-mixed high half).
#[inline]
pub(crate) fn fold_tag(x: u64) -> u32 {
    // Truncation is intended: the high half of the product.
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// Key → position, for big maps.
type Index<K> = HashMap<K, u32, RandomState>;

/// Keyed entries: position 0 is `first`, position `i > 0` is `rest[i - 1]`, whose key's tag
/// is `tags[i - 1]`. `first` is empty only when `rest` is. `first` is laid out first
/// (`repr(C)`), so it follows whatever precedes the map. Positions change on removal (the last
/// entry takes the removed one's place), so callers hold them only while they hold the map.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SmallMap<T: Keyed> {
    first: Option<T>,
    rest: Vec<T>,
    tags: Vec<u32>,
    index: Option<Box<Index<T::Key>>>,
}

impl<T: Keyed> Default for SmallMap<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
            tags: Vec::new(),
            index: None,
        }
    }
}

impl<T: Keyed> SmallMap<T> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// True if there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The entry with key `k`, with its position.
    #[inline]
    pub(crate) fn find_mut(&mut self, k: T::Key) -> Option<(usize, &mut T)> {
        // The inline entry first: it is in the cache line(s) the caller just touched.
        match &mut self.first {
            Some(x) if x.key() == k => return Some((0, x)),
            None => return None,
            Some(_) => {}
        }
        // Position 0 is `first`, just ruled out.
        let i = match &self.index {
            Some(index) => (*index.get(&k)? as usize).checked_sub(1)?,
            None => scan(&self.tags, &self.rest, k)?,
        };
        self.rest.get_mut(i).map(|x| (i + 1, x))
    }

    /// The entry with key `k`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, k: T::Key) -> Option<&mut T> {
        self.find_mut(k).map(|(_, x)| x)
    }

    /// True if an entry has key `k`.
    pub(crate) fn contains(&self, k: T::Key) -> bool {
        match &self.index {
            Some(index) => index.contains_key(&k),
            None => {
                self.first.as_ref().is_some_and(|x| x.key() == k)
                    || scan(&self.tags, &self.rest, k).is_some()
            }
        }
    }

    /// Adds an entry whose key is not present.
    pub(crate) fn push(&mut self, item: T) {
        let k = item.key();
        if self.first.is_none() {
            self.first = Some(item);
            return;
        }
        if self.rest.capacity() == 0 {
            // Most swarms stay small: room for one more at first, then the usual doubling.
            self.rest.reserve_exact(1);
            self.tags.reserve_exact(1);
        }
        self.rest.push(item);
        self.tags.push(T::tag(k));
        let at = pos(self.rest.len());
        match &mut self.index {
            Some(index) => {
                index.insert(k, at);
            }
            None if self.rest.len() >= BIG => self.index = Some(self.build()),
            None => {}
        }
    }

    /// Removes and returns the entry at position `i` (from [`SmallMap::find_mut`]); the last
    /// entry takes its place.
    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<T> {
        let removed = if i == 0 {
            // The last entry, if any, becomes the inline one (which has no tag).
            let last = self.rest.pop();
            self.tags.pop();
            match last {
                Some(last) => self.first.replace(last),
                None => self.first.take(),
            }
        } else if i <= self.rest.len() {
            self.tags.swap_remove(i - 1);
            Some(self.rest.swap_remove(i - 1))
        } else {
            None
        };
        if self.index.is_some() {
            if self.len() < SMALL {
                self.index = None;
            } else if let (Some(index), Some(gone)) = (&mut self.index, &removed) {
                index.remove(&gone.key());
                let moved = match i {
                    0 => self.first.as_ref(),
                    i => self.rest.get(i - 1),
                };
                if let Some(moved) = moved {
                    index.insert(moved.key(), pos(i));
                }
            }
        }
        removed
    }

    /// Keeps the entries `keep` returns true for (it may change them, but not their keys).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        if self.first.is_none() {
            return;
        }
        let before = self.len();
        // `rest` and `tags` in step: kept entries move down in order, the others to the end.
        let mut kept = 0;
        for i in 0..self.rest.len() {
            if keep(&mut self.rest[i]) {
                self.rest.swap(i, kept);
                self.tags.swap(i, kept);
                kept += 1;
            }
        }
        self.rest.truncate(kept);
        self.tags.truncate(kept);
        if !self.first.as_mut().is_some_and(&mut keep) {
            self.first = self.rest.pop();
            self.tags.pop();
        }
        if self.len() != before {
            self.index = match self.len() {
                n if n > BIG || (n >= SMALL && self.index.is_some()) => Some(self.build()),
                _ => None,
            };
        }
        shrink(&mut self.rest);
        shrink(&mut self.tags);
    }

    /// Removes every entry, keeping the vector's capacity (within reason) for the next ones.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.index = None;
        // Sized for this interval's entries; a spike is given back at the next drain.
        shrink(&mut self.rest);
        self.tags.clear();
        shrink(&mut self.tags);
        self.first.take().into_iter().chain(self.rest.drain(..))
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    /// Every entry, mutably (keys must not change).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(&mut self.rest)
    }

    fn build(&self) -> Box<Index<T::Key>> {
        let mut index = Index::with_capacity_and_hasher(self.len() * 2, RandomState::new());
        index.extend(self.iter().enumerate().map(|(i, x)| (x.key(), pos(i))));
        Box::new(index)
    }
}

/// The place in `rest` of the entry with key `k`, found by its tag in `tags` (`rest`'s tags,
/// in step).
#[inline]
fn scan<T: Keyed>(tags: &[u32], rest: &[T], k: T::Key) -> Option<usize> {
    let tag = T::tag(k);
    tags.iter()
        .enumerate()
        .filter(|&(_, &t)| t == tag)
        .map(|(i, _)| i)
        .find(|&i| rest.get(i).is_some_and(|x| x.key() == k))
}

/// A position as stored in an index (a map never holds 2^32 entries: a torrent's sessions are
/// bounded by its users' peers, far below).
fn pos(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Gives memory back after a spike: shrinks a vector whose capacity is over four times its
/// length.
fn shrink<T>(v: &mut Vec<T>) {
    if v.capacity() > 8 && v.len().saturating_mul(4) < v.capacity() {
        v.shrink_to(v.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct E(u32, u32);

    impl Keyed for E {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
        fn tag(key: u32) -> u32 {
            // Few distinct tags: most scans meet colliding tags and must compare keys.
            key % 5
        }
    }

    fn check(m: &mut SmallMap<E>, live: &[u32]) {
        assert_eq!(m.len(), live.len());
        assert_eq!(m.tags.len(), m.rest.len());
        for (t, e) in m.tags.iter().zip(&m.rest) {
            assert_eq!(*t, E::tag(e.0), "tag out of step");
        }
        for &k in live {
            assert_eq!(m.get_mut(k).map(|e| e.1), Some(k * 10), "{k}");
            assert!(m.contains(k));
        }
        if m.len() > BIG {
            assert!(m.index.is_some());
        }
        if m.len() < SMALL {
            assert!(m.index.is_none());
        }
    }

    #[test]
    fn the_inline_entry_comes_first() {
        assert_eq!(std::mem::offset_of!(SmallMap<E>, first), 0);
    }

    #[test]
    fn lookups_survive_growth_removal_and_retain_across_the_index_threshold() {
        let mut m = SmallMap::default();
        let mut live = Vec::new();
        for k in 0..100u32 {
            m.push(E(k, k * 10));
            live.push(k);
            check(&mut m, &live);
        }
        assert!(m.index.is_some());
        for k in (0..100u32).step_by(3) {
            let i = m.find_mut(k).unwrap().0;
            assert_eq!(m.swap_remove(i), Some(E(k, k * 10)));
            live.retain(|&x| x != k);
            check(&mut m, &live);
            assert!(m.get_mut(k).is_none() && !m.contains(k));
        }
        m.retain(|e| e.0 % 2 == 0);
        live.retain(|&x| x % 2 == 0);
        check(&mut m, &live);
        while let Some(&k) = live.last() {
            let i = m.find_mut(k).unwrap().0;
            assert_eq!(m.swap_remove(i), Some(E(k, k * 10)));
            live.pop();
            check(&mut m, &live);
        }
        assert!(m.index.is_none() && m.is_empty());
        m.push(E(7, 70));
        assert_eq!(m.drain().collect::<Vec<_>>(), vec![E(7, 70)]);
        assert!(m.is_empty());
    }

    /// What the map is checked against: every operation, in any order, over keys that collide
    /// on tags, across the index thresholds.
    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Remove(u8),
        Retain(u8),
        Drain,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            8 => any::<u8>().prop_map(Op::Push),
            4 => any::<u8>().prop_map(Op::Remove),
            1 => (2u8..7).prop_map(Op::Retain),
            1 => Just(Op::Drain),
        ]
    }

    proptest::proptest! {
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec(op(), 0..400)) {
            let mut m = SmallMap::default();
            let mut model: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(k) => {
                        let k = u32::from(k);
                        if !model.contains(&k) {
                            m.push(E(k, k * 10));
                            model.push(k);
                        }
                    }
                    Op::Remove(k) => {
                        let k = u32::from(k);
                        let found = m.find_mut(k).map(|(i, _)| i);
                        proptest::prop_assert_eq!(found.is_some(), model.contains(&k));
                        if let Some(i) = found {
                            proptest::prop_assert_eq!(m.swap_remove(i), Some(E(k, k * 10)));
                            model.retain(|&x| x != k);
                        }
                    }
                    Op::Retain(d) => {
                        let d = u32::from(d);
                        m.retain(|e| e.0 % d != 0);
                        model.retain(|&x| x % d != 0);
                    }
                    Op::Drain => {
                        let mut drained: Vec<u32> = m.drain().map(|e| e.0).collect();
                        drained.sort_unstable();
                        model.sort_unstable();
                        proptest::prop_assert_eq!(&drained, &model);
                        model.clear();
                    }
                }
                check(&mut m, &model);
                for k in 0..=255u32 {
                    proptest::prop_assert_eq!(m.contains(k), model.contains(&k));
                }
            }
        }
    }
}
