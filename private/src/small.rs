//! A map tuned for the sizes of a torrent's peer sessions and pending records: most torrents
//! hold 1–3. The first entry is stored inline (so, in a torrent's map bucket, it costs no
//! pointer chase: the one cache miss that finds the torrent finds it), the others in a vector
//! scanned linearly; past [`BIG`] entries a hash index (key → position) is built beside them,
//! so lookups in big swarms stay O(1). Entries carry their own key ([`Keyed`]).

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
}

/// Key → position, for big maps.
type Index<K> = HashMap<K, u32, RandomState>;

/// Keyed entries: position 0 is `first`, position `i > 0` is `rest[i - 1]`. `first` is empty
/// only when `rest` is. `first` is laid out first (`repr(C)`), so it follows whatever precedes
/// the map. Positions change on removal (the last entry takes the removed one's
/// place), so callers hold them only while they hold the map.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SmallMap<T: Keyed> {
    first: Option<T>,
    rest: Vec<T>,
    index: Option<Box<Index<T::Key>>>,
}

impl<T: Keyed> Default for SmallMap<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
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

    /// The entry at position `i`.
    fn at_mut(&mut self, i: usize) -> Option<&mut T> {
        match i {
            0 => self.first.as_mut(),
            i => self.rest.get_mut(i - 1),
        }
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
            None => self.rest.iter().position(|x| x.key() == k)?,
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
            None => self.iter().any(|x| x.key() == k),
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
        }
        self.rest.push(item);
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
        let last = self.rest.pop();
        let removed = match (i, last) {
            (0, None) => self.first.take(),
            (_, None) => None,
            (i, Some(last)) if i == self.rest.len() + 1 => Some(last),
            (i, Some(last)) => match self.at_mut(i) {
                Some(x) => Some(std::mem::replace(x, last)),
                None => {
                    self.rest.push(last);
                    None
                }
            },
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
        self.rest.retain_mut(&mut keep);
        if !self.first.as_mut().is_some_and(&mut keep) {
            self.first = self.rest.pop();
        }
        if self.len() != before {
            self.index = match self.len() {
                n if n > BIG || (n >= SMALL && self.index.is_some()) => Some(self.build()),
                _ => None,
            };
        }
        shrink(&mut self.rest);
    }

    /// Removes every entry, keeping the vector's capacity (within reason) for the next ones.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.index = None;
        // Sized for this interval's entries; a spike is given back at the next drain.
        shrink(&mut self.rest);
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
    }

    fn check(m: &mut SmallMap<E>, live: &[u32]) {
        assert_eq!(m.len(), live.len());
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
}
