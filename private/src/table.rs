//! An open-addressing table (linear probing, tombstones) whose slots carry their own state and
//! hash bits, for entries laid out by the cache line: a lookup by hash bits starts at slot
//! `bits & (len - 1)`, whose address is known before the lookup runs, so a prefetch can load
//! it ahead of the request (no map control bytes or position hint to read first).
//!
//! Slots hold their values by value. The table is kept at most three quarters full, counting
//! tombstones, so a probe always ends at an empty slot; a removal that ends a probe run turns
//! the tombstones before it back into empty slots, and a rebuild (on growth, or when a bulk
//! [`Table::retain`] leaves many tombstones or a mostly empty table) clears the rest.
//!
//! Callers look a key up with [`Table::find`] before they [`Table::insert`] it, so a key is
//! never stored twice.

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub(crate) enum State {
    /// Never used since the last rebuild: a probe stops here.
    #[default]
    Empty,
    /// A live value.
    Full,
    /// A removed value: a probe goes on past it, an insertion may reuse it.
    Tomb,
}

/// A slot type: a value with room for its [`State`] and its hash bits.
pub(crate) trait Slot: Copy {
    /// An empty slot.
    fn vacant() -> Self;
    /// The slot's state.
    fn state(&self) -> State;
    /// Sets the slot's state.
    fn set_state(&mut self, state: State);
    /// The hash bits the slot was inserted under.
    fn bits(&self) -> u64;
}

/// Implements [`Slot`]'s accessors for a struct with `state: State` and `bits` (`u64`, or a
/// narrower unsigned type) fields; `vacant` is the expression of an empty slot.
macro_rules! slot_accessors {
    ($type:ty, $vacant:expr) => {
        impl $crate::table::Slot for $type {
            fn vacant() -> Self {
                $vacant
            }
            #[inline]
            fn state(&self) -> $crate::table::State {
                self.state
            }
            #[inline]
            fn set_state(&mut self, state: $crate::table::State) {
                self.state = state;
            }
            #[inline]
            #[allow(clippy::useless_conversion)] // `bits` is `u64` in some slots
            fn bits(&self) -> u64 {
                u64::from(self.bits)
            }
        }
    };
}
pub(crate) use slot_accessors;

/// Smallest table allocated.
const MIN_SLOTS: usize = 8;

/// The slots, a power of two of them (or none before the first insertion). The vector comes
/// first (`repr(C)`), so a table's place in memory is in its first 24 bytes.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Table<S> {
    slots: Vec<S>,
    live: usize,
    tombs: usize,
}

impl<S: Slot> Default for Table<S> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            live: 0,
            tombs: 0,
        }
    }
}

/// The home slot of `bits` in a table of `mask + 1` slots.
#[inline]
fn home(bits: u64, mask: usize) -> usize {
    // Truncation is intended: the low bits pick the slot.
    bits as usize & mask
}

impl<S: Slot> Table<S> {
    #[cfg(test)]
    /// Number of live values.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    #[cfg(test)]
    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Where the slots are, as [`Published`](swarmd_swarm::prefetch::Published) wants it:
    /// (address of the first, number - 1), or (0, 0) for none.
    pub(crate) fn span(&self) -> (usize, usize) {
        if self.slots.is_empty() {
            (0, 0)
        } else {
            (self.slots.as_ptr().addr(), self.slots.len() - 1)
        }
    }

    /// The position of the live value under `bits` that `eq` accepts.
    #[inline]
    pub(crate) fn find(&self, bits: u64, mut eq: impl FnMut(&S) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(bits, mask);
        // At most three quarters of the slots are taken, so an empty one ends every probe; the
        // bound only guards against a broken invariant.
        for _ in 0..self.slots.len() {
            let s = &self.slots[i];
            match s.state() {
                State::Empty => return None,
                State::Full if s.bits() == bits && eq(s) => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
        None
    }

    /// The value at position `i` (from [`Table::find`] or [`Table::insert`]).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&S> {
        self.slots.get(i).filter(|s| s.state() == State::Full)
    }

    /// The value at position `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut S> {
        self.slots.get_mut(i).filter(|s| s.state() == State::Full)
    }

    /// Stores `value` (whose key is not in the table) under its bits; returns its position
    /// and whether the slots moved (a rebuild: positions held before are void, and a
    /// published span must be published again).
    pub(crate) fn insert(&mut self, mut value: S) -> (usize, bool) {
        let moved = (self.live + self.tombs + 1) * 4 > self.slots.len() * 3;
        if moved {
            self.rebuild(capacity_for(self.live + 1));
        }
        value.set_state(State::Full);
        let i = self.place(value);
        (i, moved)
    }

    /// Puts `value` into the first free slot of its probe run, with room known to be there.
    fn place(&mut self, value: S) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = home(value.bits(), mask);
        loop {
            match self.slots[i].state() {
                State::Full => i = (i + 1) & mask,
                state => {
                    if state == State::Tomb {
                        self.tombs -= 1;
                    }
                    self.slots[i] = value;
                    self.live += 1;
                    return i;
                }
            }
        }
    }

    /// Removes and returns the value at position `i`, if there is one.
    pub(crate) fn remove(&mut self, i: usize) -> Option<S> {
        let slot = self.slots.get_mut(i)?;
        if slot.state() != State::Full {
            return None;
        }
        let gone = *slot;
        slot.set_state(State::Tomb);
        self.live -= 1;
        self.tombs += 1;
        // A run that now ends in tombstones ends earlier: they become empty slots again.
        let mask = self.slots.len() - 1;
        if self.slots[(i + 1) & mask].state() == State::Empty {
            let mut j = i;
            while self.slots[j].state() == State::Tomb {
                self.slots[j] = S::vacant();
                self.tombs -= 1;
                j = j.wrapping_sub(1) & mask;
            }
        }
        Some(gone)
    }

    /// Keeps the values `keep` returns true for, visiting each once (it may change them, but
    /// not their keys or bits). Returns whether the slots moved (see [`Table::insert`]): a
    /// table left mostly tombstones, or mostly empty, is rebuilt to fit.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut S) -> bool) -> bool {
        for s in &mut self.slots {
            if s.state() == State::Full && !keep(s) {
                s.set_state(State::Tomb);
                self.live -= 1;
                self.tombs += 1;
            }
        }
        let fit = capacity_for(self.live);
        let too_big = self.slots.len() > MIN_SLOTS && fit * 4 <= self.slots.len();
        if self.live == 0 && !self.slots.is_empty() {
            self.slots = Vec::new();
            self.tombs = 0;
            true
        } else if too_big || self.tombs * 4 > self.slots.len() {
            self.rebuild(fit.min(self.slots.len()));
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    /// Every live value with its position.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &S)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state() == State::Full)
    }

    /// Every live value, mutably (keys and bits must not change).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.slots.iter_mut().filter(|s| s.state() == State::Full)
    }

    /// Moves the live values into `capacity` fresh slots (a power of two with room for them).
    fn rebuild(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, vec![S::vacant(); capacity]);
        self.live = 0;
        self.tombs = 0;
        for s in old {
            if s.state() == State::Full {
                self.place(s);
            }
        }
    }
}

/// Slots for `live` values: a power of two at least twice as many, so a table starts at most
/// half full and grows by doubling when it reaches three quarters.
fn capacity_for(live: usize) -> usize {
    (live.saturating_mul(2)).next_power_of_two().max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A key and a value, with bits from a narrow range so that probe runs collide a lot.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    struct E {
        state: State,
        bits: u64,
        key: u16,
        value: u32,
    }

    impl Slot for E {
        fn vacant() -> Self {
            E::default()
        }
        fn state(&self) -> State {
            self.state
        }
        fn set_state(&mut self, state: State) {
            self.state = state;
        }
        fn bits(&self) -> u64 {
            self.bits
        }
    }

    fn bits(key: u16) -> u64 {
        // Few distinct bits: many keys share a home slot, and some share the bits entirely.
        u64::from(key % 23) * 0x9E37
    }

    fn find(t: &Table<E>, key: u16) -> Option<usize> {
        t.find(bits(key), |e| e.key == key)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Update(u16, u32),
        Retain(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u16..300, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            4 => (0u16..300).prop_map(Op::Remove),
            2 => (0u16..300, any::<u32>()).prop_map(|(k, v)| Op::Update(k, v)),
            1 => (2u16..9).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// In any order of insertions, removals, updates and bulk retains, across growth,
        /// tombstones and rebuilds, the table answers as a map would and stays within its
        /// load bound.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec(op(), 0..600)) {
            let mut t: Table<E> = Table::default();
            let mut model: BTreeMap<u16, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(key, value) => {
                        if find(&t, key).is_none() {
                            let (at, _) = t.insert(E { bits: bits(key), key, value, ..E::default() });
                            prop_assert_eq!(t.get(at).map(|e| e.key), Some(key));
                            model.insert(key, value);
                        }
                    }
                    Op::Remove(key) => {
                        let gone = find(&t, key).and_then(|at| t.remove(at));
                        prop_assert_eq!(gone.map(|e| e.value), model.remove(&key));
                    }
                    Op::Update(key, value) => {
                        if let Some(e) = find(&t, key).and_then(|at| t.get_mut(at)) {
                            e.value = value;
                            model.insert(key, value);
                        }
                    }
                    Op::Retain(d) => {
                        let mut seen = 0;
                        t.retain(|e| {
                            seen += 1;
                            e.key % d != 0
                        });
                        prop_assert_eq!(seen, model.len(), "each value visited once");
                        model.retain(|k, _| k % d != 0);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert!((t.live + t.tombs) * 4 <= t.capacity() * 3, "load bound");
                let live = t.slots.iter().filter(|s| s.state == State::Full).count();
                let tombs = t.slots.iter().filter(|s| s.state == State::Tomb).count();
                prop_assert_eq!((live, tombs), (t.live, t.tombs));
            }
            for k in 0..300 {
                prop_assert_eq!(find(&t, k).and_then(|at| t.get(at)).map(|e| e.value), model.get(&k).copied());
            }
            let all: BTreeMap<u16, u32> = t.iter().map(|(_, e)| (e.key, e.value)).collect();
            prop_assert_eq!(all, model);
        }
    }

    #[test]
    fn removals_that_end_a_run_leave_no_tombstones_and_empty_tables_give_memory_back() {
        let mut t: Table<E> = Table::default();
        assert_eq!((t.span(), t.find(5, |_| true)), ((0, 0), None));
        let (a, moved) = t.insert(E {
            bits: 5,
            key: 1,
            ..E::default()
        });
        assert!(moved, "the first insertion allocates");
        assert_eq!((t.capacity(), a), (8, 5));
        let (b, moved) = t.insert(E {
            bits: 5,
            key: 2,
            ..E::default()
        });
        assert_eq!((b, moved), (6, false), "the next slot of the run");
        assert_eq!(t.remove(a).map(|e| e.key), Some(1));
        assert_eq!(t.tombs, 1, "the run goes on past it");
        assert_eq!(t.find(5, |e| e.key == 2), Some(6));
        assert_eq!(t.remove(b).map(|e| e.key), Some(2));
        assert_eq!(t.tombs, 0, "the run's end takes the tombstone before it");
        assert_eq!(t.remove(b), None, "already gone");
        t.insert(E {
            bits: 1,
            key: 3,
            ..E::default()
        });
        assert!(t.retain(|_| false), "an empty table is freed");
        assert_eq!((t.capacity(), t.len(), t.span()), (0, 0, (0, 0)));
    }
}
