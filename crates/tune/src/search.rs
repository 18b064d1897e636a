//! The search: rounds of `parallelism` trials, each round sampled from the results of
//! the rounds before it, trained on one thread per trial, pruned by successive halving
//! against earlier rounds' trials at the same epoch. Given the seed, the finished
//! trials and the data, every choice is fixed, so a rerun repeats the same trials.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

pub use kiln_core::spec::{BEST_CONFIG_FORMAT as TUNE_FORMAT, BestConfig};
use kiln_core::spec::{PruningSpec, TrainSpec, TuneMetric, TuneSpec, apply_params};
use kiln_core::{Error, Result};
use kiln_features::FittedTransform;
use kiln_model::device::DeviceKind;
use kiln_model::training::{Control, Dataset, EpochRecord, fit_on, plan};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sampler::Observation;

/// One finished trial (`tune/trials/<index>-<key>.json` and an entry of `trials.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub format_version: u32,
    pub index: usize,
    pub round: usize,
    pub params: BTreeMap<String, Value>,
    /// The metric at the trial's best epoch (lowest validation loss).
    pub value: f64,
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// Stopped by successive halving.
    pub pruned: bool,
    pub history: Vec<EpochRecord>,
    pub seconds: f64,
}

/// The metric of an epoch record (`None` when AUC is undefined).
pub fn metric_of(metric: TuneMetric, record: &EpochRecord) -> Option<f64> {
    match metric {
        TuneMetric::ValAuc => record.val_auc,
        TuneMetric::ValLoss => Some(record.val_loss),
    }
}

/// The loss the sampler minimises.
pub fn loss_of(metric: TuneMetric, value: f64) -> f64 {
    if metric.maximize() { -value } else { value }
}

/// The rung epochs of successive halving up to `epochs`.
pub fn rungs(pruning: &PruningSpec, epochs: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = pruning.min_epochs;
    while at < epochs {
        out.push(at);
        at = at.saturating_mul(pruning.reduction);
    }
    out
}

/// The best value (in the metric's direction) of `history`'s first `epochs` epochs.
fn best_up_to(metric: TuneMetric, history: &[EpochRecord], epochs: usize) -> Option<f64> {
    let values = history
        .iter()
        .take(epochs)
        .filter_map(|r| metric_of(metric, r));
    if metric.maximize() {
        values.reduce(f64::max)
    } else {
        values.reduce(f64::min)
    }
}

/// Whether a trial at `value` on a rung continues: it must be within the best
/// `1/reduction` of `earlier` (the values of earlier rounds' trials at that rung).
/// With fewer than `reduction` earlier values every trial continues.
pub fn survives(metric: TuneMetric, reduction: usize, value: f64, earlier: &[f64]) -> bool {
    if earlier.len() < reduction {
        return true;
    }
    let mut losses: Vec<f64> = earlier.iter().map(|v| loss_of(metric, *v)).collect();
    losses.sort_by(f64::total_cmp);
    let keep = (losses.len() / reduction).max(1);
    loss_of(metric, value) <= losses[keep - 1]
}

/// What one trial needs.
#[derive(Debug, Clone)]
pub struct TrialPlan {
    pub index: usize,
    pub round: usize,
    pub params: BTreeMap<String, Value>,
    pub train: TrainSpec,
}

/// The configurations of round `round` given the finished trials.
pub fn plan_round(
    tune: &TuneSpec,
    base: &TrainSpec,
    round: usize,
    finished: &[TrialRecord],
) -> Result<Vec<TrialPlan>> {
    let history: Vec<Observation> = finished
        .iter()
        .map(|t| Observation {
            params: t.params.clone(),
            loss: loss_of(tune.metric, t.value),
            pruned: t.pruned,
        })
        .collect();
    let first = round * tune.parallelism;
    let last = (first + tune.parallelism).min(tune.trials);
    let use_tpe = tune.sampler == kiln_core::spec::Sampler::Tpe
        && first >= kiln_core::spec::startup_trials(tune);
    (first..last)
        .map(|index| {
            let params = crate::sampler::sample(&tune.space, tune.seed, index, &history, use_tpe);
            let mut train = apply_params(base, &params).map_err(Error::usage)?;
            if tune.parallelism > 1 && !params.contains_key("train.shards") {
                // The cores go to parallel trials; the final training uses the spec's shards.
                train.shards = 1;
            }
            Ok(TrialPlan {
                index,
                round,
                params,
                train,
            })
        })
        .collect()
}

/// Trains one trial (on the calling thread).
pub fn run_trial(
    tune: &TuneSpec,
    trial: &TrialPlan,
    dataset: &Dataset,
    transform: &FittedTransform,
    rung_values: &BTreeMap<usize, Vec<f64>>,
    device: DeviceKind,
    stop: &AtomicBool,
) -> Result<TrialRecord> {
    let started = std::time::Instant::now();
    let (data, config) = plan(dataset, transform, &trial.train)?;
    let history = std::sync::Mutex::new(Vec::<EpochRecord>::new());
    let hook = |record: &EpochRecord| -> bool {
        let mut seen = history.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(record.clone());
        let Some(pruning) = &tune.pruning else {
            return true;
        };
        let epoch = record.epoch;
        match (
            rung_values.get(&epoch),
            best_up_to(tune.metric, &seen, epoch),
        ) {
            (Some(earlier), Some(value)) => {
                survives(tune.metric, pruning.reduction, value, earlier)
            }
            _ => true,
        }
    };
    let control = Control {
        stop,
        on_epoch: Some(&hook),
    };
    let result = fit_on(device, &trial.train, &config, &data, None, &control)?;
    let best = result.best;
    let value = match tune.metric {
        TuneMetric::ValAuc => best.val_auc.ok_or_else(|| {
            Error::usage("tune: validation AUC is undefined (one class only); use metric val_loss")
        })?,
        TuneMetric::ValLoss => best.val_loss,
    };
    Ok(TrialRecord {
        format_version: TUNE_FORMAT,
        index: trial.index,
        round: trial.round,
        params: trial.params.clone(),
        value,
        best_epoch: best.epoch,
        epochs_run: result.history.len(),
        pruned: result.pruned,
        history: result.history,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Each rung's values from the trials of rounds before `round` (what `round`'s trials
/// are compared with; trials of the same round never judge each other, so a round
/// resumed with some of its trials kept prunes as it did uninterrupted).
pub fn rung_values(
    tune: &TuneSpec,
    finished: &[TrialRecord],
    round: usize,
) -> BTreeMap<usize, Vec<f64>> {
    let finished: Vec<&TrialRecord> = finished.iter().filter(|t| t.round < round).collect();
    let mut out = BTreeMap::new();
    if let Some(pruning) = &tune.pruning {
        let max_epochs = finished.iter().map(|t| t.history.len()).max().unwrap_or(0) + 1;
        for rung in rungs(pruning, max_epochs.max(pruning.min_epochs + 1)) {
            let values: Vec<f64> = finished
                .iter()
                .filter(|t| t.history.len() >= rung)
                .filter_map(|t| best_up_to(tune.metric, &t.history, rung))
                .collect();
            out.insert(rung, values);
        }
    }
    out
}

/// The best finished trial that was not pruned (ties: the earlier trial).
pub fn best_trial(metric: TuneMetric, trials: &[TrialRecord]) -> Option<&TrialRecord> {
    trials.iter().filter(|t| !t.pruned).min_by(|a, b| {
        loss_of(metric, a.value)
            .total_cmp(&loss_of(metric, b.value))
            .then(a.index.cmp(&b.index))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_halving_keeps_the_best_share() {
        let p = PruningSpec {
            min_epochs: 2,
            reduction: 3,
        };
        assert_eq!(rungs(&p, 30), vec![2, 6, 18]);
        let earlier = [0.80, 0.85, 0.90, 0.70, 0.75, 0.88];
        // Keep the best 6/3 = 2: 0.90 and 0.88.
        assert!(survives(TuneMetric::ValAuc, 3, 0.89, &earlier));
        assert!(survives(TuneMetric::ValAuc, 3, 0.88, &earlier));
        assert!(!survives(TuneMetric::ValAuc, 3, 0.87, &earlier));
        // Losses: lower is better.
        assert!(survives(TuneMetric::ValLoss, 3, 0.71, &earlier));
        assert!(!survives(TuneMetric::ValLoss, 3, 0.76, &earlier));
        // Too few to judge.
        assert!(survives(TuneMetric::ValAuc, 3, 0.1, &[0.9, 0.8]));
    }
}
