//! The hash table of group numbers: open addressing, probed linearly, whose
//! slot for a key can be fetched into the cache before the key is looked up.
//!
//! Once a table outgrows the caches (a million groups: db-benchmark's `id3`
//! at 1e8 rows), every lookup is a miss to memory, and a lookup that waits for
//! its miss before the next starts costs the full latency: 155 ns a row in a
//! partial task of q3 holding the million groups in `hashbrown`'s table, whose
//! probe sequence the caller cannot see. Here a batch's keys are hashed first,
//! and the slot of the key a few rows ahead is prefetched while the current
//! one is looked up, so the misses of several rows overlap (what DuckDB and
//! Velox get from probing a vector of hashes at once).
//!
//! Linear probing at most half full: a key's slot is usually the one
//! prefetched, or its neighbour on the same cache line.

/// The group number of a vacant slot.
pub(super) const VACANT: u32 = u32::MAX;

/// What a slot holds: a group number (`VACANT` for none) and what the key is
/// told apart by.
pub(super) trait Entry: Copy {
    /// A slot of no key.
    const EMPTY: Self;
    /// The group, or `VACANT`.
    fn group(&self) -> u32;
    /// The hash the entry is placed by (made again when the table grows).
    fn hash(&self) -> u64;
}

/// Rows ahead of the lookup whose slots are prefetched: enough to cover a
/// miss's latency with a few rows' lookups, few enough that the prefetched
/// lines are still in L1 when their row comes.
pub(super) const AHEAD: usize = 16;

/// What [`Table::find`] found.
pub(super) enum Probe {
    /// The key's group.
    Found(u32),
    /// No entry of the key: the slot for it.
    Vacant(usize),
}

/// Entries placed by hash, at most half the slots full.
pub(super) struct Table<E: Entry> {
    slots: Vec<E>,
    len: usize,
}

impl<E: Entry> Table<E> {
    /// An empty table, holding no memory.
    pub fn new() -> Table<E> {
        Table {
            slots: Vec::new(),
            len: 0,
        }
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<E>()
    }

    /// Asks the processor to bring the slot a key of hash `h` starts its probe
    /// at into the cache (nothing when the table is empty).
    #[inline]
    pub fn prefetch(&self, h: u64) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[h as usize & (self.slots.len() - 1)];
        prefetch(slot as *const E);
    }

    /// The group of the entry of hash `h` that `same` accepts, or the vacant
    /// slot where it goes ([`Table::insert`]), made room for now: nothing may
    /// change the table between the two.
    #[inline]
    pub fn find(&mut self, h: u64, same: impl Fn(&E) -> bool) -> Probe {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let e = &self.slots[i];
            if e.group() == VACANT {
                return Probe::Vacant(i);
            }
            if same(e) {
                return Probe::Found(e.group());
            }
            i = (i + 1) & mask;
        }
    }

    /// Places `e` in the slot [`Table::find`] gave for it.
    #[inline]
    pub fn insert(&mut self, slot: usize, e: E) {
        debug_assert_eq!(self.slots[slot].group(), VACANT);
        self.slots[slot] = e;
        self.len += 1;
    }

    /// Doubles the slots (16 at first) and places every entry again.
    fn grow(&mut self) {
        let slots = (2 * self.slots.len()).max(16);
        let old = std::mem::replace(&mut self.slots, vec![E::EMPTY; slots]);
        let mask = slots - 1;
        for e in old.into_iter().filter(|e| e.group() != VACANT) {
            let mut i = e.hash() as usize & mask;
            while self.slots[i].group() != VACANT {
                i = (i + 1) & mask;
            }
            self.slots[i] = e;
        }
    }
}

/// A hint that what `at` points to will be read soon; no effect on what the
/// program does. Any address will do: a prefetch never faults.
#[inline(always)]
pub(in crate::frame::ops::aggregate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads and changes no memory and never faults, whatever
    // the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Pair {
        key: u64,
        group: u32,
    }

    impl Entry for Pair {
        const EMPTY: Pair = Pair {
            key: 0,
            group: VACANT,
        };
        fn group(&self) -> u32 {
            self.group
        }
        fn hash(&self) -> u64 {
            // Every key in one of four places: long probe runs, wrapping
            // around the end of the slots.
            u64::MAX - 3 + self.key % 4
        }
    }

    #[test]
    fn keys_find_their_group_through_collisions_and_growth() {
        let mut table = Table::<Pair>::new();
        let mut next = 0u32;
        let mut groups = Vec::new();
        for round in 0..2 {
            for key in 0..1000u64 {
                let h = Pair { key, group: 0 }.hash();
                table.prefetch(h);
                let g = match table.find(h, |p| p.key == key) {
                    Probe::Found(g) => g,
                    Probe::Vacant(slot) => {
                        next += 1;
                        table.insert(
                            slot,
                            Pair {
                                key,
                                group: next - 1,
                            },
                        );
                        next - 1
                    }
                };
                match round {
                    0 => groups.push(g),
                    _ => assert_eq!(g, groups[key as usize], "key {key}"),
                }
            }
        }
        // Numbered in order of first appearance, each once.
        assert_eq!(groups, (0..1000).collect::<Vec<u32>>());
        assert_eq!(table.len, 1000);
        assert!(table.slots.len() >= 2000 && table.slots.len() <= 4096);
    }
}
