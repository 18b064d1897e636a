//! Deterministic randomness: the train/test (and train/validation) assignment, and
//! the seeded generator behind shuffles and bootstrap resamples.

/// SplitMix64: a tiny, well-known generator whose whole state is one u64, so a
/// position in a stream can be recreated from a seed alone.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson(λ) draw: inversion for λ < 10, else Hörmann's PTRS
    /// (transformed rejection with squeeze), exact for every λ.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda == 1.0 {
            // The bootstrap's commonest case (one row): compare one 64-bit draw with the
            // Poisson(1) CDF scaled to 2^64, no floating point.
            const CDF: [u64; 8] = [
                6_786_177_901_268_885_504,
                13_572_355_802_537_771_008,
                16_965_444_753_172_213_760,
                18_096_474_403_383_695_360,
                18_379_231_815_936_565_248,
                18_435_783_298_447_138_816,
                18_445_208_545_532_233_728,
                18_446_555_009_401_532_416,
            ];
            let u = self.next_u64();
            if let Some(k) = CDF.iter().position(|&c| u < c) {
                return k as u64;
            }
            // The far tail (probability 1e-5): continue the inversion with the same draw.
            let u = u as f64 / 18_446_744_073_709_551_616.0;
            let (mut k, mut p) = (8u64, (-1.0f64).exp() / 40_320.0);
            let mut cumulative = CDF[7] as f64 / 18_446_744_073_709_551_616.0 + p;
            while u > cumulative && k < 1000 {
                k += 1;
                p /= k as f64;
                cumulative += p;
            }
            return k;
        }
        if lambda < 10.0 {
            // e^-λ for the integer λ a bootstrap mostly asks for, without calling exp.
            const EXP_NEG: [f64; 10] = [
                1.0,
                0.367_879_441_171_442_33,
                0.135_335_283_236_612_7,
                0.049_787_068_367_863_944,
                0.018_315_638_888_734_18,
                0.006_737_946_999_085_467,
                0.002_478_752_176_666_358_5,
                0.000_911_881_965_554_516_2,
                0.000_335_462_627_902_511_85,
                0.000_123_409_804_086_679_56,
            ];
            let mut p = if lambda.fract() == 0.0 {
                EXP_NEG[lambda as usize]
            } else {
                (-lambda).exp()
            };
            let (mut cumulative, mut k) = (p, 0u64);
            let u = self.uniform();
            while u > cumulative && k < 1000 {
                k += 1;
                p *= lambda / k as f64;
                cumulative += p;
            }
            return k;
        }
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
                <= -lambda + k * loglam - ln_factorial(k as u64)
            {
                return k as u64;
            }
        }
    }

    /// A uniform integer in `0..n` (n > 0), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// ln(k!): exact sums below 64, Stirling's series (error < 1e-12) above.
pub fn ln_factorial(k: u64) -> f64 {
    if k < 64 {
        return (2..=k).map(|i| (i as f64).ln()).sum();
    }
    let x = k as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
}

/// A stable hash of (seed, key) mapped to [0, 1): FNV-1a, then SplitMix64's finaliser
/// to spread the bits. Stable across platforms and versions: changing it would move
/// rows between splits, so it is pinned by a test.
/// Whether train holds a row out for validation: the hash of (seed, row id) falls
/// below the fraction — stable across runs and independent of row order. Evaluate
/// uses the same rule to score exactly those rows for fairness mitigation.
pub fn is_validation_row(seed: u64, fraction: f64, row_id: i64) -> bool {
    split_fraction(seed ^ 0x5a17_da7a, Some(&row_id.to_string())) < fraction
}

pub fn split_fraction(seed: u64, key: Option<&str>) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&seed.to_le_bytes());
    match key {
        Some(k) => feed(k.as_bytes()),
        None => feed(b"\0null"),
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_draws_have_the_right_mean_and_variance() {
        let mut rng = SplitMix64::new(3);
        for lambda in [0.5, 1.0, 4.0, 12.0, 250.0, 1e6] {
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.poisson(lambda) as f64).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            // Within 5 standard errors of λ for the mean and ~6 % for the variance.
            assert!(
                (mean - lambda).abs() < 5.0 * (lambda / n as f64).sqrt(),
                "λ {lambda}: mean {mean}"
            );
            assert!(
                (var / lambda - 1.0).abs() < 0.06,
                "λ {lambda}: variance {var}"
            );
        }
        assert!((ln_factorial(70) - (2..=70).map(|i| (i as f64).ln()).sum::<f64>()).abs() < 1e-10);
    }

    #[test]
    fn split_fraction_is_pinned() {
        // Changing the hash moves rows between splits for every user: keep it stable.
        assert_eq!(split_fraction(0, Some("1")), split_fraction(0, Some("1")));
        assert_ne!(split_fraction(0, Some("1")), split_fraction(1, Some("1")));
        let shares = (0..10_000)
            .filter(|i| split_fraction(42, Some(&i.to_string())) < 0.2)
            .count();
        assert!((1_800..2_200).contains(&shares), "{shares}");
        assert_eq!(
            format!("{:.12}", split_fraction(42, Some("row-7"))),
            "0.417188208853"
        );
    }
}
