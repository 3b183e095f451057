//! [`JitterRng`]: the small deterministic random source behind every backoff
//! jitter (the failover controller's and each provider stream's).

/// xorshift64* seeded by the caller, so backoff jitter is reproducible: the
/// same seed gives the same delays.
#[derive(Debug, Clone)]
pub struct JitterRng(u64);

impl JitterRng {
    /// A generator starting from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        // xorshift has one fixed point, zero; move a zero seed off it.
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_in_range() {
        let mut a = JitterRng::new(7);
        let mut b = JitterRng::new(7);
        let mut zero = JitterRng::new(0);
        let mut sum = 0.0;
        for _ in 0..1000 {
            let x = a.next_unit();
            assert_eq!(x, b.next_unit());
            assert!((0.0..1.0).contains(&x));
            let z = zero.next_unit();
            assert!((0.0..1.0).contains(&z));
            sum += x;
        }
        // Roughly uniform: the mean of 1000 draws is near 0.5.
        assert!((sum / 1000.0 - 0.5).abs() < 0.05, "mean {}", sum / 1000.0);
    }
}
