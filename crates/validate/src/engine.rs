//! Runs a compiled suite over a stream of record batches in one pass.
//!
//! Expectations are grouped by their `row_condition`; each group filters a batch once,
//! normalises each column it reads once, updates one [`ColumnStats`] per column for
//! all the aggregate expectations on it, and runs its map expectations. Memory is a
//! few batches plus, per column that needs them, exact counts of distinct values
//! (uniqueness, distinct sets, median and quantiles): proportional to the number of
//! distinct values, not rows, except that the keys of uniqueness checks over
//! mostly-distinct integers or tuples go to a [`crate::spill::SortedSpill`] (one chunk in
//! memory, sorted runs in temporary files).

use std::collections::HashMap;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value as Json, json};

use kiln_core::{Error, Result};

use crate::condition::Condition;
use crate::expectations::{
    ColumnStats, MapCheck, Outcome, SUPPORTED, TableCheck, Work, compile, type_problem,
};
use crate::suite::{ExpectationConfig, Suite};
use crate::value::Column;

pub use kiln_core::contracts::validate::{
    ExceptionInfo, ExpectationResult, Statistics, ValidationResult,
};

/// Runs per-row expectations on one batch's columns.
fn run_maps(plans: &mut [&mut Plan], columns: &HashMap<String, Column>) {
    for plan in plans.iter_mut() {
        if let State::Map(m) = &mut plan.state {
            let start = Instant::now();
            let names: Vec<String> = m.columns().into_iter().map(str::to_string).collect();
            let cols: Vec<&Column> = names.iter().filter_map(|c| columns.get(c)).collect();
            m.update(&cols);
            plan.seconds += start.elapsed().as_secs_f64();
        }
    }
}

enum State {
    Done(Outcome),
    Table(TableCheck),
    Aggregate {
        column: String,
        aggregate: crate::expectations::Aggregate,
    },
    Map(MapCheck),
}

struct Plan {
    config: ExpectationConfig,
    group: usize,
    state: State,
    seconds: f64,
}

struct Group {
    condition: Option<Condition>,
    rows: u64,
    stats: Vec<(String, ColumnStats, f64)>,
}

/// A suite compiled against a table's schema, ready to consume batches.
pub struct Validator {
    suite_name: String,
    schema: SchemaRef,
    plans: Vec<Plan>,
    groups: Vec<Group>,
    skipped: Vec<Json>,
    rows: u64,
    started: Instant,
}

impl Validator {
    /// Compiles a suite for a table. Wrong kwargs and (unless `allow_unknown`) unknown
    /// expectation types are usage errors naming the expectation; a missing column is
    /// a failed expectation, as in GE.
    pub fn new(
        suite: &Suite,
        suite_uri: &str,
        schema: SchemaRef,
        allow_unknown: bool,
    ) -> Result<Validator> {
        let mut v = Validator {
            suite_name: suite.name.clone(),
            schema: schema.clone(),
            plans: Vec::new(),
            groups: Vec::new(),
            skipped: Vec::new(),
            rows: 0,
            started: Instant::now(),
        };
        for (i, config) in suite.expectations.iter().enumerate() {
            let bad = |m: String| Error::usage(format!("suite {suite_uri}: expectations[{i}] {m}"));
            let work = match compile(config).map_err(bad)? {
                Some(work) => work,
                None if allow_unknown => {
                    v.skipped
                        .push(json!({"type": config.kind, "reason": "unknown expectation type"}));
                    continue;
                }
                None => {
                    return Err(bad(format!(
                        "{}: unknown expectation type (use --allow-unknown to skip it); supported: {}",
                        config.kind,
                        SUPPORTED.join(", ")
                    )));
                }
            };
            let condition = match config
                .kwargs
                .get("row_condition")
                .and_then(Json::as_str)
                .filter(|s| !s.trim().is_empty())
            {
                Some(text) => {
                    let parser = config
                        .kwargs
                        .get("condition_parser")
                        .and_then(Json::as_str)
                        .unwrap_or("great_expectations");
                    if ![
                        "great_expectations",
                        "great_expectations__experimental__",
                        "pandas",
                    ]
                    .contains(&parser)
                    {
                        return Err(bad(format!(
                            "{}: condition_parser `{parser}` is not supported (great_expectations or pandas)",
                            config.kind
                        )));
                    }
                    Some(Condition::parse(text).map_err(|e| bad(format!("{}: {e}", config.kind)))?)
                }
                None => None,
            };
            let mut missing: Vec<String> = Vec::new();
            let mut columns: Vec<&str> = match &work {
                Work::Aggregate { column, .. } => vec![column],
                Work::Map(m) => m.columns(),
                Work::Table(_) => vec![],
            };
            if let Some(c) = &condition {
                columns.extend(c.columns());
            }
            for c in columns {
                if schema.field_with_name(c).is_err() && !missing.iter().any(|m| m == c) {
                    missing.push(c.to_string());
                }
            }
            let group = match v.groups.iter().position(|g| {
                g.condition.as_ref().map(Condition::text) == condition.as_ref().map(Condition::text)
            }) {
                Some(g) => g,
                None => {
                    v.groups.push(Group {
                        condition,
                        rows: 0,
                        stats: Vec::new(),
                    });
                    v.groups.len() - 1
                }
            };
            let problem = match &work {
                Work::Aggregate { column, .. } => schema
                    .field_with_name(column)
                    .ok()
                    .and_then(|f| type_problem(&work, f.data_type())),
                Work::Map(m) => m
                    .column
                    .as_ref()
                    .and_then(|c| schema.field_with_name(c).ok())
                    .and_then(|f| type_problem(&work, f.data_type())),
                Work::Table(_) => None,
            };
            let state = if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
                State::Done(Outcome::exception(format!(
                    "column {} does not exist",
                    list.join(", ")
                )))
            } else if let Some(problem) = problem {
                State::Done(Outcome::exception(problem))
            } else {
                if let Some((column, needs)) = work.needs() {
                    let stats = &mut v.groups[group].stats;
                    match stats.iter_mut().find(|(c, _, _)| c == column) {
                        Some((_, s, _)) => {
                            if needs.counts && s.counts.is_none() {
                                s.counts = Some(Default::default());
                            }
                            s.want_moments |= needs.moments;
                        }
                        None => stats.push((column.to_string(), ColumnStats::new(needs), 0.0)),
                    }
                }
                match work {
                    Work::Table(t) => State::Table(t),
                    Work::Aggregate { column, aggregate } => State::Aggregate { column, aggregate },
                    Work::Map(m) => State::Map(m),
                }
            };
            v.plans.push(Plan {
                config: config.clone(),
                group,
                state,
                seconds: 0.0,
            });
        }
        Ok(v)
    }

    /// Consumes one batch.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for (g, group) in self.groups.iter_mut().enumerate() {
            let filtered;
            let batch = match &group.condition {
                None => batch,
                Some(c) => {
                    let mask = c.mask(batch).map_err(Error::usage)?;
                    filtered = arrow::compute::filter_record_batch(batch, &mask)?;
                    &filtered
                }
            };
            group.rows += batch.num_rows() as u64;
            let mut columns: HashMap<String, Column> = HashMap::new();
            let mut needed: Vec<String> = group.stats.iter().map(|(c, _, _)| c.clone()).collect();
            for plan in self.plans.iter().filter(|p| p.group == g) {
                if let State::Map(m) = &plan.state {
                    needed.extend(m.columns().into_iter().map(str::to_string));
                }
            }
            for name in needed {
                if !columns.contains_key(&name)
                    && let Some(array) = batch.column_by_name(&name)
                {
                    let column = Column::new(array)?;
                    columns.insert(name, column);
                }
            }
            // Two workers share the batch: one updates the shared column statistics and
            // some of the per-row expectations, the other the rest. The split balances
            // the time each took on the batches so far (longest first, each to the
            // less loaded worker; a small constant stands in for a check not yet timed).
            let columns = &columns;
            let mut maps: Vec<&mut Plan> = self
                .plans
                .iter_mut()
                .filter(|p| p.group == g && matches!(p.state, State::Map(_)))
                .collect();
            const UNTIMED: f64 = 1e-6;
            maps.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
            let mut load = [
                group.stats.iter().map(|(_, _, s)| s + UNTIMED).sum::<f64>(),
                0.0,
            ];
            let (mut first, mut second) = (Vec::new(), Vec::new());
            for plan in maps {
                let cost = plan.seconds + UNTIMED;
                if load[0] <= load[1] {
                    load[0] += cost;
                    first.push(plan);
                } else {
                    load[1] += cost;
                    second.push(plan);
                }
            }
            let (first, second) = (&mut first[..], &mut second[..]);
            let stats = &mut group.stats;
            std::thread::scope(|scope| {
                scope.spawn(move || run_maps(second, columns));
                for (name, stats, seconds) in stats.iter_mut() {
                    let start = Instant::now();
                    if let Some(column) = columns.get(name) {
                        stats.update(column);
                    }
                    *seconds += start.elapsed().as_secs_f64();
                }
                run_maps(first, columns);
            });
        }
        Ok(())
    }

    /// The validation result.
    pub fn finish(self, data_uri: &str) -> ValidationResult {
        let mut results = Vec::with_capacity(self.plans.len());
        let Validator {
            suite_name,
            schema,
            plans,
            groups,
            skipped,
            rows,
            started,
        } = self;
        // Merge what uniqueness checks kept (sorted runs, possibly on disk): the
        // checks' own on one thread, the column statistics' on this one.
        let (mut plans, mut groups) = (plans, groups);
        std::thread::scope(|scope| {
            let maps = &mut plans;
            scope.spawn(move || {
                for plan in maps.iter_mut() {
                    if let State::Map(m) = &mut plan.state {
                        m.seal();
                    }
                }
            });
            for group in &mut groups {
                for (_, stats, _) in &mut group.stats {
                    if let Some(counts) = &mut stats.counts {
                        counts.seal();
                    }
                }
            }
        });
        // Share each column's statistics time among the expectations that read it.
        let mut users: HashMap<(usize, String), usize> = HashMap::new();
        for p in &plans {
            let column = match &p.state {
                State::Aggregate { column, .. } => Some(column.as_str()),
                State::Map(m) => m.needs().map(|(c, _)| c),
                _ => None,
            };
            if let Some(column) = column {
                *users.entry((p.group, column.to_string())).or_default() += 1;
            }
        }
        for plan in plans {
            let start = Instant::now();
            let group = &groups[plan.group];
            let mut shared = 0.0;
            let outcome = match plan.state {
                State::Done(o) => o,
                State::Table(t) => t.finish(&schema, group.rows),
                State::Map(m) => {
                    let column = m.needs().map(|(c, _)| c.to_string());
                    let stats = column
                        .as_ref()
                        .and_then(|c| group.stats.iter().find(|(name, _, _)| name == c));
                    if let (Some((_, _, seconds)), Some(c)) = (stats, column.clone()) {
                        shared = seconds / users.get(&(plan.group, c)).copied().unwrap_or(1) as f64;
                    }
                    m.finish(stats.map(|(_, s, _)| s))
                }
                State::Aggregate { column, aggregate } => {
                    let (_, stats, seconds) = group
                        .stats
                        .iter()
                        .find(|(c, _, _)| *c == column)
                        .expect("stats for every aggregate column");
                    shared =
                        seconds / users.get(&(plan.group, column)).copied().unwrap_or(1) as f64;
                    aggregate.finish(stats)
                }
            };
            let seconds = plan.seconds + shared + start.elapsed().as_secs_f64();
            let mut meta = Map::new();
            meta.insert("kiln".into(), json!({"seconds": seconds}));
            results.push(ExpectationResult {
                success: outcome.success && outcome.error.is_none(),
                expectation_config: plan.config,
                result: outcome.result,
                exception_info: ExceptionInfo {
                    raised_exception: outcome.error.is_some(),
                    exception_message: outcome.error,
                    exception_traceback: None,
                },
                meta,
            });
        }
        let evaluated = results.len() as u64;
        let successful = results.iter().filter(|r| r.success).count() as u64;
        let mut meta = Map::new();
        meta.insert("data".into(), json!(data_uri));
        meta.insert("rows".into(), json!(rows));
        meta.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
        meta.insert(
            "validated_by".into(),
            json!(format!("kiln {}", env!("CARGO_PKG_VERSION"))),
        );
        meta.insert(
            "validation_time".into(),
            json!(chrono::Utc::now().to_rfc3339()),
        );
        meta.insert("skipped_expectations".into(), Json::Array(skipped));
        ValidationResult {
            success: results.iter().all(|r| r.success),
            statistics: Statistics {
                evaluated_expectations: evaluated,
                successful_expectations: successful,
                unsuccessful_expectations: evaluated - successful,
                success_percent: (evaluated > 0)
                    .then(|| successful as f64 / evaluated as f64 * 100.0),
            },
            results,
            suite_name,
            meta,
        }
    }
}
