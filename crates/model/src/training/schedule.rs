//! Learning rate per epoch, and the deterministic shuffles and seeds of training.

use kiln_core::spec::LrSchedule;
use kiln_core::split::SplitMix64;

/// The learning rate for an epoch (0-based) of `epochs`.
pub fn learning_rate(base: f64, schedule: &LrSchedule, epoch: usize, epochs: usize) -> f64 {
    match schedule {
        LrSchedule::Constant => base,
        LrSchedule::Cosine { min_factor } => {
            let progress = epoch as f64 / epochs.max(1) as f64;
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            base * (min_factor + (1.0 - min_factor) * cosine)
        }
        LrSchedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(&1)) as i32),
    }
}

/// A seed derived from the run seed and a position, so that every epoch and batch has
/// its own stream and a resumed run replays exactly the same randomness.
pub fn derive_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mut rng = SplitMix64::new(
        seed ^ (epoch as u64).wrapping_mul(0x1000_0000_01b3) ^ ((batch as u64) << 40),
    );
    rng.next_u64()
}

/// The row order of an epoch: a Fisher–Yates shuffle seeded by (seed, epoch).
pub fn epoch_order(rows: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = rows.to_vec();
    let mut rng = SplitMix64::new(derive_seed(seed, epoch, usize::MAX >> 24));
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(learning_rate(0.1, &LrSchedule::Constant, 5, 10), 0.1);
        let cosine = LrSchedule::Cosine { min_factor: 0.1 };
        assert!((learning_rate(1.0, &cosine, 0, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, &cosine, 5, 10) - 0.55).abs() < 1e-12);
        let step = LrSchedule::Step {
            every: 2,
            gamma: 0.5,
        };
        assert_eq!(learning_rate(1.0, &step, 3, 10), 0.5);
        assert_eq!(learning_rate(1.0, &step, 4, 10), 0.25);
    }

    #[test]
    fn shuffles_are_permutations_and_reproducible() {
        let rows: Vec<usize> = (0..100).collect();
        let a = epoch_order(&rows, 7, 3);
        assert_eq!(a, epoch_order(&rows, 7, 3));
        assert_ne!(a, epoch_order(&rows, 7, 4));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, rows);
    }
}
