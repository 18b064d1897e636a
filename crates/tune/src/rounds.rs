//! The search's rounds replayed from the trial cache. Round `r` is sampled from the
//! trials of rounds `0..r`, so walking the rounds in order with the finished trials
//! gives, at any moment, the same configurations the search gave when it ran: the
//! in-process search, the Argo fan-out's planner and each fanned-out trial pod all
//! derive the round they work on this way, and so agree without talking to each other.

use std::collections::BTreeMap;

use kiln_core::spec::{TrainSpec, TuneSpec};
use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::search::{self, TUNE_FORMAT, TrialPlan, TrialRecord};

/// The cache of finished trials: `tune/trials/<index:04>-<key>.json`, keyed by the
/// step's inputs and spec sections.
pub(crate) struct TrialCache {
    pub dir: ArtifactStore,
    pub key: String,
}

impl TrialCache {
    pub fn file(&self, index: usize) -> String {
        format!("{index:04}-{}.json", self.key)
    }

    /// The finished trial for `plan`, if one was kept with the same parameters.
    pub async fn get(&self, plan: &TrialPlan) -> Result<Option<TrialRecord>> {
        let name = self.file(plan.index);
        if !self.dir.exists(&name).await? {
            return Ok(None);
        }
        #[expect(clippy::disallowed_methods, reason = "the search's own trial record")]
        let record: TrialRecord = self.dir.get_json(&name).await?;
        Ok(
            (record.format_version == TUNE_FORMAT && record.params == plan.params)
                .then_some(record),
        )
    }

    pub async fn put(&self, record: &TrialRecord) -> Result<()> {
        self.dir.put_json(&self.file(record.index), record).await?;
        Ok(())
    }
}

/// Where the search stands: the finished trials of the rounds before `round`, and the
/// trials of `round` that have not finished (`round == rounds` when all have).
pub(crate) struct Position {
    pub finished: Vec<TrialRecord>,
    pub round: usize,
    pub todo: Vec<TrialPlan>,
    /// Trials taken from the cache on the way.
    pub reused: usize,
}

/// Walks rounds from `from` (with `finished` holding every trial before it) until one
/// has unfinished trials; that round's finished trials are in `finished` too.
pub(crate) async fn advance(
    tune: &TuneSpec,
    base: &TrainSpec,
    cache: &TrialCache,
    mut finished: Vec<TrialRecord>,
    from: usize,
) -> Result<Position> {
    let rounds = tune.trials.div_ceil(tune.parallelism);
    let mut reused = 0;
    for round in from..rounds {
        let mut todo = Vec::new();
        let mut kept = Vec::new();
        for plan in search::plan_round(tune, base, round, &finished)? {
            match cache.get(&plan).await? {
                Some(record) => kept.push(record),
                None => todo.push(plan),
            }
        }
        reused += kept.len();
        finished.extend(kept);
        if !todo.is_empty() {
            return Ok(Position {
                finished,
                round,
                todo,
                reused,
            });
        }
    }
    Ok(Position {
        finished,
        round: rounds,
        todo: Vec::new(),
        reused,
    })
}

/// The next round to fan out (`kiln-tune --plan-round FILE`), for Argo's `withParam`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundPlan {
    /// The round (0-based); equal to `rounds` when every trial has finished.
    pub round: usize,
    pub rounds: usize,
    /// Whether nothing is left after this round's trials.
    pub last: bool,
    /// This round's unfinished trials (empty when the search is done).
    pub trials: Vec<PlannedTrial>,
}

/// One trial of a fanned-out round: its index and the `train.*` values it tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTrial {
    pub index: usize,
    /// The sampled parameters as a JSON object (`{"train.learning_rate": 0.003, …}`);
    /// the trial pod checks that it samples the same before it trains.
    pub params: String,
}

impl RoundPlan {
    pub(crate) fn of(tune: &TuneSpec, position: &Position) -> RoundPlan {
        let rounds = tune.trials.div_ceil(tune.parallelism);
        RoundPlan {
            round: position.round,
            rounds,
            last: position.round + 1 >= rounds,
            trials: position
                .todo
                .iter()
                .map(|plan| PlannedTrial {
                    index: plan.index,
                    params: params_text(&plan.params),
                })
                .collect(),
        }
    }
}

/// The parameters as one line of JSON (keys sorted).
pub fn params_text(params: &BTreeMap<String, Value>) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

/// Checks a planned trial's parameters (`--trial-params`) against what the trial pod
/// sampled itself: they differ only if the spec or the finished trials changed between
/// the plan and the trial.
pub(crate) fn check_expected(plan: &TrialPlan, expected: &str) -> Result<()> {
    let parsed: BTreeMap<String, Value> = serde_json::from_str(expected).map_err(|e| {
        Error::usage(format!(
            "tune: --trial-params is not a JSON object of parameters: {e}"
        ))
    })?;
    if parsed != plan.params {
        return Err(Error::usage(format!(
            "tune: trial {} samples {} now, not the planned {expected} (the spec or the \
             finished trials changed since the round was planned; plan it again)",
            plan.index,
            params_text(&plan.params)
        )));
    }
    Ok(())
}
