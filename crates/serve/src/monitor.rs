//! What the scoring threads record about every served batch: decisions by label and
//! by group, the score distribution, the drift window and the prediction log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use chrono::Utc;
use prometheus::IntCounter;

use crate::drift::{DriftMonitor, DriftOptions};
use crate::engine::JobContext;
use crate::metrics::Metrics;
use crate::model::{Scored, ServedModel};
use crate::predlog::{LogRecord, LogSender};

/// The group label for values the policy does not list (keeps label sets bounded).
const OTHER_GROUP: &str = "other";

pub struct Monitor {
    metrics: Arc<Metrics>,
    drift: Mutex<DriftMonitor>,
    log: Mutex<Option<LogSender>>,
    decisions: [IntCounter; 2],
    /// Policy attribute and, per known group, its two decision counters.
    groups: Option<(String, HashMap<String, [IntCounter; 2]>)>,
}

impl Monitor {
    pub fn new(
        model: &ServedModel,
        metrics: Arc<Metrics>,
        drift: DriftOptions,
        log: Option<LogSender>,
    ) -> Self {
        let version = model.version.as_str();
        let decisions = [
            metrics.decisions.with_label_values(&[version, "0"]),
            metrics.decisions.with_label_values(&[version, "1"]),
        ];
        let groups = model.policy.groups.as_ref().map(|g| {
            let mut known: Vec<&str> = g.thresholds.keys().map(String::as_str).collect();
            known.push(OTHER_GROUP);
            let counters = known
                .into_iter()
                .map(|group| {
                    let pair = [
                        metrics
                            .group_decisions
                            .with_label_values(&[&g.attribute, group, "0"]),
                        metrics
                            .group_decisions
                            .with_label_values(&[&g.attribute, group, "1"]),
                    ];
                    (group.to_string(), pair)
                })
                .collect();
            (g.attribute.clone(), counters)
        });
        let columns: Vec<String> = model
            .inputs
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        Monitor {
            drift: Mutex::new(DriftMonitor::new(&model.reference, &columns, drift)),
            metrics,
            log: Mutex::new(log),
            decisions,
            groups,
        }
    }

    /// Records one scored job (called on a scoring thread).
    pub fn observe(&self, rows: &RecordBatch, scored: &Scored, context: &JobContext) {
        for (&p, &label) in scored.probabilities.iter().zip(&scored.labels) {
            self.metrics.scores.observe(f64::from(p));
            self.decisions[usize::from(label.min(1))].inc();
        }
        if let Some((attribute, counters)) = &self.groups
            && let Some(column) = rows.column_by_name(attribute)
        {
            for (row, &label) in scored.labels.iter().enumerate() {
                let group = kiln_stats::profile::category_key(column.as_ref(), row);
                let pair = group
                    .as_deref()
                    .and_then(|g| counters.get(g))
                    .or_else(|| counters.get(OTHER_GROUP));
                if let Some(pair) = pair {
                    pair[usize::from(label.min(1))].inc();
                }
            }
        }
        if let Ok(mut drift) = self.drift.lock() {
            drift.update(rows);
        }
        let log = self.log.lock().ok().and_then(|l| l.clone());
        if let Some(log) = log {
            log.send(LogRecord {
                rows: rows.clone(),
                scored: scored.clone(),
                request_id: context.request_id.clone(),
                protocol: context.protocol,
                served_at: Utc::now(),
            });
        }
    }

    /// Refreshes the drift gauges (at scrape time). Without a reading (too few rows, or
    /// none served for `--drift-max-idle`) every drift gauge is NaN: no data, which
    /// the drift SLO leaves out instead of counting it as good time.
    pub fn refresh_drift(&self) {
        let Ok(drift) = self.drift.lock() else {
            return;
        };
        let reading = drift.reading();
        let names: Vec<String> = if reading.drifted_share.is_none() {
            drift.feature_names().map(str::to_string).collect()
        } else {
            Vec::new()
        };
        drop(drift);
        self.metrics.drift_samples.set(reading.rows as i64);
        for (feature, psi) in &reading.features {
            self.metrics
                .feature_drift
                .with_label_values(&[feature])
                .set(*psi);
        }
        for feature in &names {
            self.metrics
                .feature_drift
                .with_label_values(&[feature])
                .set(f64::NAN);
        }
        self.metrics
            .drifted_share
            .set(reading.drifted_share.unwrap_or(f64::NAN));
    }

    /// Drops the log sender so the writer can finish.
    pub fn close_log(&self) {
        if let Ok(mut log) = self.log.lock() {
            *log = None;
        }
    }
}
