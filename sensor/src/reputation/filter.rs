//! The anchors' blocked Bloom filter: 64-byte lines of 512 bits, two bits per anchor, both in one
//! line, so a lookup reads one cache line.
//!
//! The filter is read at random for every new name, so its pages matter as much as its lines: a
//! million entries make 1 MiB, 256 small pages, more than the TLB keeps beside the traffic (and a
//! TLB miss costs two page walks in a virtual machine). It is mapped on its own and the kernel
//! asked for transparent huge pages (`madvise`), so it sits in one or two TLB entries.

/// Bytes per line.
const LINE: usize = 64;
/// Huge page size on x86_64 and aarch64 (4 KiB base pages).
const HUGE: usize = 2 << 20;

#[derive(Debug)]
enum Memory {
    Mapped(memmap2::MmapMut),
    Heap(Vec<u8>),
}

/// A blocked Bloom filter of anchor hashes.
#[derive(Debug)]
pub struct Filter {
    mem: Memory,
    lines: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter { mem: Memory::Heap(vec![0; LINE]), lines: 1 }
    }
}

/// The line and the two bits of a hash.
#[inline]
fn slots(h: u64, lines: usize) -> (usize, u32, u32) {
    // Lines are a power of two: the low bits pick one; two 9-bit fields from the top pick bits.
    ((h as usize) & (lines - 1), (h >> 46) as u32 & 511, (h >> 55) as u32 & 511)
}

impl Filter {
    /// An empty filter of about `bits` bits (a power of two of lines, at least one).
    pub fn with_bits(bits: usize) -> Filter {
        let lines = (bits / (LINE * 8) + 1).next_power_of_two();
        let bytes = lines * LINE;
        // Worth a huge page only at a quarter of one; a small filter stays in cache anyway.
        let mem = if bytes >= HUGE / 4 {
            let size = bytes.div_ceil(HUGE) * HUGE;
            match memmap2::MmapMut::map_anon(size) {
                Ok(m) => {
                    // Only advice: without THP the filter works the same, on small pages.
                    let _ = m.advise(memmap2::Advice::HugePage);
                    Memory::Mapped(m)
                }
                Err(_) => Memory::Heap(vec![0; bytes]),
            }
        } else {
            Memory::Heap(vec![0; bytes])
        };
        Filter { mem, lines }
    }

    fn bytes(&self) -> &[u8] {
        match &self.mem {
            Memory::Mapped(m) => m,
            Memory::Heap(v) => v,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.mem {
            Memory::Mapped(m) => m,
            Memory::Heap(v) => v,
        }
    }

    fn bit(&self, line: usize, bit: u32) -> bool {
        self.bytes()[line * LINE + (bit / 8) as usize] & (1 << (bit % 8)) != 0
    }

    /// Adds a hash.
    pub fn insert(&mut self, h: u64) {
        let (line, b1, b2) = slots(h, self.lines);
        let bytes = self.bytes_mut();
        for b in [b1, b2] {
            bytes[line * LINE + (b / 8) as usize] |= 1 << (b % 8);
        }
    }

    /// False when the hash was never added (true may be a false positive, about 4 % at eight bits
    /// per entry).
    #[inline]
    pub fn may_hold(&self, h: u64) -> bool {
        let (line, b1, b2) = slots(h, self.lines);
        self.bit(line, b1) && self.bit(line, b2)
    }

    /// Asks the CPU for the line of a hash.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let (line, _, _) = slots(h, self.lines);
        let ptr = self.bytes()[line * LINE..].as_ptr();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it reads nothing into the program and cannot fault,
        // and SSE (which provides it) is part of the x86_64 baseline.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(ptr.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ptr;
    }

    /// Bytes of memory held.
    pub fn memory_bytes(&self) -> usize {
        self.bytes().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_few_false_positives_on_huge_pages_or_not() {
        for bits in [1 << 10, 8 << 20] {
            let mut f = Filter::with_bits(bits);
            let n = bits / 8;
            for i in 0..n as u64 {
                f.insert(crate::hash::mix64(i));
            }
            assert!((0..n as u64).all(|i| f.may_hold(crate::hash::mix64(i))));
            let fp = (n as u64..2 * n as u64).filter(|&i| f.may_hold(crate::hash::mix64(i))).count();
            assert!(fp * 100 < n * 8, "{fp} false positives of {n} at {bits} bits");
            f.prefetch(1);
        }
    }
}
