//! Fast, seedless, deterministic 64-bit hashing for sketches, sharding and sampling.
//!
//! Determinism matters: shard routing and sketches must give the same results on every run and
//! for every worker count. Not for hash tables exposed to attacker-chosen keys without a seed;
//! the bounded tables use `std`'s randomly seeded hasher for that.

/// The hasher of the state tables: foldhash, seeded at random per process (so attacker-chosen
/// names cannot aim at buckets) and several times faster than std's SipHash on small keys.
pub type FastState = foldhash::fast::RandomState;

/// Final mixer of SplitMix64 / Murmur3: spreads every input bit over the output.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hashes a byte string, 8 bytes at a time.
#[inline]
pub fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64 ^ (data.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix64(h ^ u64::from_le_bytes(w)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix64(h ^ u64::from_le_bytes(w) ^ 0xFF);
    }
    mix64(h)
}

/// Hashes a byte string as if it were ASCII-lowercased, without copying it.
#[inline]
pub fn hash_lowercase(data: &[u8]) -> u64 {
    let mut buf = [0u8; 256];
    if data.len() <= buf.len() {
        for (d, s) in buf.iter_mut().zip(data) {
            *d = s.to_ascii_lowercase();
        }
        hash_bytes(&buf[..data.len()])
    } else {
        hash_bytes(&data.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_and_case_folding() {
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
        assert_ne!(hash_bytes(b"abcdefgh"), hash_bytes(b"abcdefgh\0"));
        assert_eq!(hash_lowercase(b"WwW.ExAmple.COM"), hash_bytes(b"www.example.com"));
    }
}
