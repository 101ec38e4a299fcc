//! A bounded map that forgets its least recently used entry: hashlink's LRU cache with the
//! seeded fast hasher. Its nodes come back from a free list, so a full table churning under a
//! flood of new names or clients does not allocate per entry (the `lru` crate boxed each node).
//! A lookup costs one probe while the table has room, two once it is full (is the key there, or
//! must the oldest entry go first).

use std::hash::Hash;
use std::num::NonZeroUsize;

use hashlink::linked_hash_map::Entry;

use crate::hash::FastState;

pub struct Lru<K, V> {
    map: hashlink::LruCache<K, V, FastState>,
    cap: usize,
}

impl<K: Hash + Eq, V> Lru<K, V> {
    pub fn new(cap: NonZeroUsize) -> Self {
        Lru { map: hashlink::LruCache::with_hasher(cap.get(), FastState::default()), cap: cap.get() }
    }

    /// The entry of `key`, made by `make` when absent, marked most recently used. The flag says
    /// whether another entry was forgotten to make room.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let evicted = self.map.len() >= self.cap && !self.map.contains_key(&key);
        if evicted {
            self.map.remove_lru();
        }
        let value = match self.map.entry(key) {
            Entry::Occupied(mut o) => {
                o.to_back();
                o.into_mut()
            }
            Entry::Vacant(v) => v.insert(make()),
        };
        (value, evicted)
    }

    /// The entry of `key`, marked most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// The entry of `key`, leaving the order alone.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.map.peek(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_least_recently_used() {
        let mut l: Lru<u32, u32> = Lru::new(NonZeroUsize::new(2).unwrap());
        assert_eq!(l.get_or_insert_with(1, || 10), (&mut 10, false));
        assert_eq!(l.get_or_insert_with(2, || 20), (&mut 20, false));
        // Using 1 makes 2 the oldest.
        *l.get_or_insert_with(1, || 0).0 += 1;
        assert_eq!(l.get_or_insert_with(3, || 30), (&mut 30, true));
        assert!(l.peek(&2).is_none());
        assert_eq!(l.peek(&1), Some(&11));
        assert_eq!(l.len(), 2);
        // An entry present is not an eviction, even when full.
        assert_eq!(l.get_or_insert_with(3, || 0), (&mut 30, false));
    }
}
