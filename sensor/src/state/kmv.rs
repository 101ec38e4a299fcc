//! A K-minimum-values sketch of distinct items with a small weight each.
//!
//! Keeps the `k` smallest distinct 56-bit hashes seen, each with an 8-bit weight (a name's
//! length) packed in its low byte. Exact below `k` distinct items; above, the number of distinct
//! items is estimated as `(k-1) / max_hash` (relative error about `1/sqrt(k-2)`), and since the kept
//! items are a uniform sample of the distinct ones, their mean weight times that estimate gives the
//! distinct *bytes*: the ibHH quantity, in `8*k` bytes of memory whatever the traffic.

const HASH_MASK: u64 = !0xFF;

/// The sketch. Memory: `8 * k` bytes once full, allocated as items arrive.
#[derive(Debug, Clone, Default)]
pub struct Kmv {
    /// Sorted ascending; low byte is the weight.
    items: Vec<u64>,
    /// Sum of the kept weights (scoring reads it after every update).
    sum: u64,
    k: u16,
}

impl Kmv {
    pub fn new(k: usize) -> Self {
        Kmv { items: Vec::new(), sum: 0, k: k.clamp(2, u16::MAX as usize) as u16 }
    }

    /// Adds an item; returns true if it was new to the sketch (kept and not seen before).
    pub fn insert(&mut self, hash: u64, weight: u8) -> bool {
        let key = hash & HASH_MASK;
        let full = self.items.len() >= self.k as usize;
        if full && key >= self.items[self.items.len() - 1] & HASH_MASK {
            return false;
        }
        match self.items.binary_search_by(|v| (v & HASH_MASK).cmp(&key)) {
            Ok(_) => false,
            Err(pos) => {
                if full {
                    self.sum -= self.items.pop().map_or(0, |v| v & 0xFF);
                }
                self.items.insert(pos, key | weight as u64);
                self.sum += weight as u64;
                true
            }
        }
    }

    /// The item [`Kmv::insert`] keeps for `hash` and `weight`.
    pub fn item(hash: u64, weight: u8) -> u64 {
        (hash & HASH_MASK) | weight as u64
    }

    /// Adds an item as [`Kmv::items`] gives it (hash with its weight in the low byte): merging
    /// another sketch's items gives the sketch of the union.
    pub fn insert_item(&mut self, item: u64) -> bool {
        self.insert(item, (item & 0xFF) as u8)
    }

    /// The kept items, ascending: each a hash with its weight in the low byte.
    pub fn items(&self) -> &[u64] {
        &self.items
    }

    /// The most items kept.
    pub fn k(&self) -> usize {
        self.k as usize
    }

    /// True while the sketch holds every distinct item seen (counts are exact).
    pub fn is_exact(&self) -> bool {
        self.items.len() < self.k as usize
    }

    /// Estimated number of distinct items.
    pub fn count(&self) -> f64 {
        if self.is_exact() {
            return self.items.len() as f64;
        }
        let max = (self.items[self.items.len() - 1] | 0xFF) as f64 / u64::MAX as f64;
        (self.k as f64 - 1.0) / max
    }

    /// Estimated sum of the weights of the distinct items.
    pub fn weight_sum(&self) -> f64 {
        let sum = self.sum;
        debug_assert_eq!(sum, self.items.iter().map(|v| v & 0xFF).sum::<u64>());
        if self.is_exact() {
            return sum as f64;
        }
        sum as f64 / self.items.len() as f64 * self.count()
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.sum = 0;
    }

    /// Heap bytes in use.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::mix64;

    #[test]
    fn exact_below_k() {
        let mut s = Kmv::new(64);
        for i in 0..50u64 {
            assert!(s.insert(mix64(i), 10));
            assert!(!s.insert(mix64(i), 10), "duplicate counted");
        }
        assert!(s.is_exact());
        assert_eq!(s.count(), 50.0);
        assert_eq!(s.weight_sum(), 500.0);
    }

    #[test]
    fn estimates_against_exact_counts() {
        for &n in &[1_000u64, 20_000, 200_000] {
            let mut s = Kmv::new(64);
            let mut exact_bytes = 0u64;
            for i in 0..n {
                let w = (i % 200 + 20) as u8;
                exact_bytes += w as u64;
                s.insert(mix64(i ^ 0xABCD), w);
                // Repeats must not move the estimate.
                s.insert(mix64((i / 2) ^ 0xABCD), ((i / 2) % 200 + 20) as u8);
            }
            let c = s.count();
            let b = s.weight_sum();
            let err_c = (c - n as f64).abs() / n as f64;
            let err_b = (b - exact_bytes as f64).abs() / exact_bytes as f64;
            // 1/sqrt(62) ~ 0.13; allow three sigma.
            assert!(err_c < 0.4, "n={n} count={c} err={err_c}");
            assert!(err_b < 0.45, "n={n} bytes={b} exact={exact_bytes} err={err_b}");
            assert!(s.heap_bytes() <= 8 * 128);
        }
    }
}
