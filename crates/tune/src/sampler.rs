//! Choosing trial configurations: independent random draws, or the tree-structured
//! Parzen estimator (TPE; Bergstra et al., 2011), univariate like Optuna's default.
//!
//! TPE splits the finished trials into the best quarter ("good") and the rest, fits a
//! Parzen density to each parameter's good values, l(x), and to the others, g(x), and
//! picks, among candidates drawn from l, the one with the largest l(x)/g(x). Floats
//! live in their own space (log space for `log_uniform`), integers as reals rounded at
//! the end, choices as categories with a smoothed count. Every draw comes from a
//! SplitMix64 stream seeded by (seed, trial, parameter), so the search is a function
//! of the seed and the finished trials alone.

use std::collections::BTreeMap;

use kiln_core::spec::Distribution;
use kiln_core::split::SplitMix64;
use serde_json::Value;

/// Candidates drawn from l(x) per parameter.
const CANDIDATES: usize = 24;

/// A finished trial as the sampler sees it: its parameters and a loss (lower is better;
/// pruned trials are never in the good group).
#[derive(Debug, Clone)]
pub struct Observation {
    pub params: BTreeMap<String, Value>,
    pub loss: f64,
    pub pruned: bool,
}

/// The configuration of trial `trial`.
pub fn sample(
    space: &BTreeMap<String, Distribution>,
    seed: u64,
    trial: usize,
    history: &[Observation],
    use_tpe: bool,
) -> BTreeMap<String, Value> {
    let mut ranked: Vec<&Observation> = history.iter().collect();
    // Complete trials by loss first, pruned ones after (by their loss).
    ranked.sort_by(|a, b| a.pruned.cmp(&b.pruned).then(a.loss.total_cmp(&b.loss)));
    let complete = ranked.iter().filter(|o| !o.pruned).count();
    let good_count = complete.div_ceil(4).max(1).min(complete);
    space
        .iter()
        .enumerate()
        .map(|(p, (name, distribution))| {
            let mut rng = SplitMix64::new(
                seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((p as u64) << 48),
            );
            let value = if use_tpe && good_count > 0 {
                let values = |group: &[&Observation]| -> Vec<Value> {
                    group
                        .iter()
                        .filter_map(|o| o.params.get(name).cloned())
                        .collect()
                };
                let (good, bad) = ranked.split_at(good_count);
                tpe(distribution, &values(good), &values(bad), &mut rng)
            } else {
                random(distribution, &mut rng)
            };
            (name.clone(), value)
        })
        .collect()
}

fn random(distribution: &Distribution, rng: &mut SplitMix64) -> Value {
    match distribution {
        Distribution::Choice(values) => values[rng.below(values.len() as u64) as usize].clone(),
        Distribution::Uniform([lo, hi]) => Value::from(lo + rng.uniform() * (hi - lo)),
        Distribution::LogUniform([lo, hi]) => {
            Value::from((lo.ln() + rng.uniform() * (hi.ln() - lo.ln())).exp())
        }
        Distribution::Int([lo, hi]) => Value::from(lo + rng.below((hi - lo + 1) as u64) as i64),
    }
}

fn tpe(distribution: &Distribution, good: &[Value], bad: &[Value], rng: &mut SplitMix64) -> Value {
    match distribution {
        Distribution::Choice(choices) => {
            let index = |v: &Value| choices.iter().position(|c| c == v);
            let weights = |group: &[Value]| -> Vec<f64> {
                // A prior of one observation spread over the choices.
                let mut w = vec![1.0 / choices.len() as f64; choices.len()];
                for i in group.iter().filter_map(index) {
                    w[i] += 1.0;
                }
                let total: f64 = w.iter().sum();
                w.iter().map(|x| x / total).collect()
            };
            let (l, g) = (weights(good), weights(bad));
            let mut best = (f64::NEG_INFINITY, 0);
            for _ in 0..CANDIDATES {
                let mut u = rng.uniform();
                let mut pick = choices.len() - 1;
                for (i, p) in l.iter().enumerate() {
                    if u < *p {
                        pick = i;
                        break;
                    }
                    u -= p;
                }
                let score = l[pick].ln() - g[pick].ln();
                if score > best.0 {
                    best = (score, pick);
                }
            }
            choices[best.1].clone()
        }
        Distribution::Uniform([lo, hi]) => {
            let x = numeric_tpe(*lo, *hi, good, bad, |v| v.as_f64(), rng);
            Value::from(x)
        }
        Distribution::LogUniform([lo, hi]) => {
            let x = numeric_tpe(
                lo.ln(),
                hi.ln(),
                good,
                bad,
                |v| v.as_f64().map(f64::ln),
                rng,
            );
            Value::from(x.exp().clamp(*lo, *hi))
        }
        Distribution::Int([lo, hi]) => {
            let x = numeric_tpe(
                *lo as f64 - 0.5,
                *hi as f64 + 0.5,
                good,
                bad,
                |v| v.as_f64(),
                rng,
            );
            Value::from((x.round() as i64).clamp(*lo, *hi))
        }
    }
}

/// A Parzen estimator over `[lo, hi]`: one Gaussian per observation (bandwidth: the
/// larger gap to a neighbour, clipped) plus a wide prior component.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl Parzen {
    fn new(lo: f64, hi: f64, mut points: Vec<f64>) -> Self {
        let range = (hi - lo).max(1e-12);
        points.sort_by(f64::total_cmp);
        let n = points.len();
        let min_sigma = range / (n as f64 + 1.0).min(100.0);
        let mut mus = Vec::with_capacity(n + 1);
        let mut sigmas = Vec::with_capacity(n + 1);
        for (i, &x) in points.iter().enumerate() {
            let left = if i == 0 { x - lo } else { x - points[i - 1] };
            let right = if i + 1 == n {
                hi - x
            } else {
                points[i + 1] - x
            };
            mus.push(x);
            sigmas.push(left.max(right).clamp(min_sigma, range));
        }
        mus.push((lo + hi) / 2.0);
        sigmas.push(range);
        Parzen {
            mus,
            sigmas,
            lo,
            hi,
        }
    }

    fn draw(&self, rng: &mut SplitMix64) -> f64 {
        let k = rng.below(self.mus.len() as u64) as usize;
        for _ in 0..100 {
            let x = self.mus[k] + self.sigmas[k] * normal(rng);
            if (self.lo..=self.hi).contains(&x) {
                return x;
            }
        }
        self.mus[k].clamp(self.lo, self.hi)
    }

    fn log_density(&self, x: f64) -> f64 {
        let n = self.mus.len() as f64;
        let density: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(mu, s)| {
                let z = (x - mu) / s;
                (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
            })
            .sum::<f64>()
            / n;
        density.max(1e-300).ln()
    }
}

fn numeric_tpe(
    lo: f64,
    hi: f64,
    good: &[Value],
    bad: &[Value],
    internal: impl Fn(&Value) -> Option<f64>,
    rng: &mut SplitMix64,
) -> f64 {
    let l = Parzen::new(lo, hi, good.iter().filter_map(&internal).collect());
    let g = Parzen::new(lo, hi, bad.iter().filter_map(&internal).collect());
    let mut best = (f64::NEG_INFINITY, (lo + hi) / 2.0);
    for _ in 0..CANDIDATES {
        let x = l.draw(rng);
        let score = l.log_density(x) - g.log_density(x);
        if score > best.0 {
            best = (score, x);
        }
    }
    best.1
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = rng.uniform().max(1e-300);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> BTreeMap<String, Distribution> {
        BTreeMap::from([
            (
                "train.learning_rate".into(),
                Distribution::LogUniform([1e-4, 1e-1]),
            ),
            ("train.dropout".into(), Distribution::Uniform([0.0, 0.5])),
            ("train.batch_size".into(), Distribution::Int([64, 1024])),
            (
                "train.hidden".into(),
                Distribution::Choice(vec![serde_json::json!([32]), serde_json::json!([64, 32])]),
            ),
        ])
    }

    #[test]
    fn draws_stay_in_their_ranges_and_repeat_for_a_seed() {
        for trial in 0..200 {
            let p = sample(&space(), 3, trial, &[], false);
            let lr = p["train.learning_rate"].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr));
            let bs = p["train.batch_size"].as_i64().unwrap();
            assert!((64..=1024).contains(&bs));
            assert_eq!(p, sample(&space(), 3, trial, &[], false));
        }
        assert_ne!(
            sample(&space(), 3, 0, &[], false),
            sample(&space(), 4, 0, &[], false)
        );
    }

    #[test]
    fn tpe_concentrates_where_the_loss_is_low() {
        // Loss = |log10(lr) + 3|: the best learning rate is 1e-3.
        let one = BTreeMap::from([(
            "train.learning_rate".to_string(),
            Distribution::LogUniform([1e-5, 1.0]),
        )]);
        let mut history = Vec::new();
        for trial in 0..40 {
            let params = sample(&one, 11, trial, &history, trial >= 8);
            let lr = params["train.learning_rate"].as_f64().unwrap();
            history.push(Observation {
                params,
                loss: (lr.log10() + 3.0).abs(),
                pruned: false,
            });
        }
        let late: Vec<f64> = history[30..].iter().map(|o| o.loss).collect();
        let early: Vec<f64> = history[..8].iter().map(|o| o.loss).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&late) < mean(&early) / 2.0,
            "late {late:?} early {early:?}"
        );
        let best = history.iter().map(|o| o.loss).fold(f64::INFINITY, f64::min);
        assert!(best < 0.15, "best {best}");
    }
}
