//! rng — a deterministic xorshift64 stream: the producer's random key draws, and (through
//! `bench::payload`) the benchmark's record values, so a seed repeats a run's bytes exactly.
//!
//! Owns the generator only. Must not be used where values must be unpredictable: it is neither
//! secret nor cryptographic.

/// A deterministic xorshift64 stream (values must be repeatable, not secret).
pub struct XorShift(u64);

impl XorShift {
    /// A stream from `seed` (any value: the state is forced odd, never the stuck 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// The next 64 bits.
    #[allow(clippy::should_implement_trait)] // not an Iterator: the stream never ends
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fills `out` with the next bytes (little-endian words, the last one cut short).
    #[inline]
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_stream_and_zero_is_not_stuck() {
        let (mut a, mut b) = (XorShift::new(42), XorShift::new(42));
        let xs: Vec<u64> = (0..4).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        let mut zero = XorShift::new(0);
        assert_ne!(zero.next(), 0);
        let mut out = [0u8; 11];
        XorShift::new(7).fill(&mut out);
        let mut again = XorShift::new(7);
        assert_eq!(out[..8], again.next().to_le_bytes());
        assert_eq!(out[8..], again.next().to_le_bytes()[..3]);
    }
}
