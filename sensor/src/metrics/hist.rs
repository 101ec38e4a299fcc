//! A fixed-bucket histogram owned by one thread (no atomics), merged and exported at scrape time.

/// Counts per upper bound (`le`), plus the overflow bucket, and the sum of observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist<const N: usize> {
    pub counts: [u64; N],
    /// Observations above the last bound.
    pub over: u64,
    pub sum: f64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Hist { counts: [0; N], over: 0, sum: 0.0 }
    }
}

impl<const N: usize> Hist<N> {
    #[inline]
    pub fn observe(&mut self, bounds: &[f64; N], v: f64) {
        self.sum += v;
        match bounds.iter().position(|&b| v <= b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.over
    }

    pub fn merge(&mut self, o: &Self) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.over += o.over;
        self.sum += o.sum;
    }
}

// PartialEq on f64 sums is fine for tests comparing identical runs.
impl<const N: usize> Eq for Hist<N> {}

/// Query-name length buckets (characters).
pub const QNAME_LEN_BOUNDS: [f64; 8] = [16.0, 32.0, 48.0, 64.0, 96.0, 128.0, 192.0, 255.0];
/// Subdomain entropy buckets (bits per character).
pub const ENTROPY_BOUNDS: [f64; 9] = [1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0];
/// Response size buckets (bytes).
pub const RESPONSE_SIZE_BOUNDS: [f64; 9] =
    [64.0, 128.0, 256.0, 512.0, 1024.0, 1232.0, 2048.0, 4096.0, 65535.0];
/// Alarm score buckets.
pub const SCORE_BOUNDS: [f64; 10] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_overflow() {
        let mut h = Hist::<3>::default();
        let b = [1.0, 2.0, 3.0];
        for v in [0.5, 1.0, 1.5, 3.0, 7.0] {
            h.observe(&b, v);
        }
        assert_eq!(h.counts, [2, 1, 1]);
        assert_eq!(h.over, 1);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum, 13.0);
    }
}
