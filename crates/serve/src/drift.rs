//! Online drift: for each input column, the population stability index (PSI) between
//! the last `window` served rows and the training profile in the bundle.
//!
//! Bins: a numeric column uses the profile's equal-width histogram (its exact train
//! counts; values outside the range fall in the first or last bin) plus a bin for
//! missing values; a categorical column uses the profile's listed categories, one
//! bin for all other values and one for missing. PSI = Σ (p − q) · ln(p / q) over the
//! bins, with each share floored at 1e-4 so an empty bin stays finite. A feature has
//! drifted when its PSI exceeds the threshold (default 0.2, the usual "significant
//! shift" line). Nothing is reported until the window holds `min_rows` rows: a PSI
//! over a handful of rows is noise.
//!
//! The window is a ring of bin indices (2 bytes per feature per row) with running
//! counts, so an update is O(features) and a reading O(bins).

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use kiln_stats::profile::{ColumnStats, TableProfile, category_key, numeric_values};

/// Floor of a bin's share in the PSI.
const EPSILON: f64 = 1e-4;

/// Drift settings.
#[derive(Debug, Clone, Copy)]
pub struct DriftOptions {
    /// Served rows in the window.
    pub window: usize,
    /// Rows needed before drift is reported.
    pub min_rows: usize,
    /// With no row served for this long, the window says nothing (no data), instead of
    /// repeating a reading of traffic long gone.
    pub max_idle: std::time::Duration,
    /// PSI above which a feature counts as drifted.
    pub threshold: f64,
}

enum Binning {
    Numeric {
        edges: Vec<f64>,
    },
    Categorical {
        categories: std::collections::HashMap<String, u16>,
    },
}

struct FeatureWindow {
    name: String,
    binning: Binning,
    /// Reference share of each bin (the last bin is "missing").
    reference: Vec<f64>,
    counts: Vec<u64>,
}

impl FeatureWindow {
    fn bins(&self) -> usize {
        self.reference.len()
    }

    fn bin_of(&self, array: &dyn Array, numbers: Option<&[Option<f64>]>, row: usize) -> u16 {
        let missing = (self.bins() - 1) as u16;
        match &self.binning {
            Binning::Numeric { edges } => match numbers.and_then(|n| n[row]) {
                None => missing,
                Some(x) => {
                    let inner = edges.len().saturating_sub(1);
                    let bin = edges.partition_point(|e| *e <= x).saturating_sub(1);
                    bin.min(inner.saturating_sub(1)) as u16
                }
            },
            Binning::Categorical { categories } => match category_key(array, row) {
                None => missing,
                Some(key) => categories
                    .get(&key)
                    .copied()
                    .unwrap_or((self.bins() - 2) as u16),
            },
        }
    }

    fn psi(&self, rows: u64) -> f64 {
        let n = rows.max(1) as f64;
        self.reference
            .iter()
            .zip(&self.counts)
            .map(|(&q, &c)| {
                let p = (c as f64 / n).max(EPSILON);
                let q = q.max(EPSILON);
                (p - q) * (p / q).ln()
            })
            .sum()
    }
}

/// A served column and, for a numeric feature, its values as numbers.
type WindowColumn = (std::sync::Arc<dyn Array>, Option<Vec<Option<f64>>>);

/// The drift window of one model.
pub struct DriftMonitor {
    options: DriftOptions,
    features: Vec<FeatureWindow>,
    /// `window × features` bin indices, a ring.
    ring: Vec<u16>,
    next: usize,
    filled: usize,
    last_row: Option<std::time::Instant>,
}

/// One reading of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReading {
    pub rows: usize,
    /// `(feature, psi)`; empty until the window holds `min_rows` rows.
    pub features: Vec<(String, f64)>,
    /// Share of features above the threshold; `None` without enough recent rows.
    pub drifted_share: Option<f64>,
}

impl DriftMonitor {
    /// Windows for the given columns that the profile describes.
    pub fn new(profile: &TableProfile, columns: &[String], options: DriftOptions) -> Self {
        let mut features = Vec::new();
        for name in columns {
            let Some(column) = profile.column(name) else {
                continue;
            };
            let total = (column.count + column.nulls).max(1) as f64;
            let (binning, mut reference) = match &column.stats {
                ColumnStats::Numeric { histogram, .. } if !histogram.counts.is_empty() => (
                    Binning::Numeric {
                        edges: histogram.edges.clone(),
                    },
                    histogram
                        .counts
                        .iter()
                        .map(|&c| c as f64 / total)
                        .collect::<Vec<_>>(),
                ),
                ColumnStats::Categorical {
                    top, other_count, ..
                } => {
                    let categories = top
                        .iter()
                        .enumerate()
                        .map(|(i, (v, _))| (v.clone(), i as u16))
                        .collect();
                    let mut shares: Vec<f64> = top.iter().map(|(_, c)| *c as f64 / total).collect();
                    shares.push(*other_count as f64 / total);
                    (Binning::Categorical { categories }, shares)
                }
                _ => continue,
            };
            reference.push(column.nulls as f64 / total);
            let bins = reference.len();
            features.push(FeatureWindow {
                name: name.clone(),
                binning,
                reference,
                counts: vec![0; bins],
            });
        }
        let width = features.len();
        DriftMonitor {
            options,
            features,
            ring: vec![0; options.window.max(1) * width],
            next: 0,
            filled: 0,
            last_row: None,
        }
    }

    /// The features the window follows.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Adds a batch of served rows.
    pub fn update(&mut self, batch: &RecordBatch) {
        if batch.num_rows() > 0 {
            self.last_row = Some(std::time::Instant::now());
        }
        let width = self.features.len();
        if width == 0 {
            return;
        }
        let window = self.options.window.max(1);
        let columns: Vec<Option<WindowColumn>> = self
            .features
            .iter()
            .map(|f| {
                batch.column_by_name(&f.name).map(|a| {
                    let numbers = matches!(f.binning, Binning::Numeric { .. })
                        .then(|| numeric_values(a.as_ref()));
                    (a.clone(), numbers)
                })
            })
            .collect();
        for row in 0..batch.num_rows() {
            let slot = self.next * width;
            for (i, feature) in self.features.iter_mut().enumerate() {
                let Some((array, numbers)) = &columns[i] else {
                    continue;
                };
                let bin = feature.bin_of(array.as_ref(), numbers.as_deref(), row);
                if self.filled == window {
                    let old = self.ring[slot + i] as usize;
                    feature.counts[old] -= 1;
                }
                self.ring[slot + i] = bin;
                feature.counts[bin as usize] += 1;
            }
            self.next = (self.next + 1) % window;
            self.filled = (self.filled + 1).min(window);
        }
    }

    /// The current PSI of each feature and the drifted share: nothing (no data) until
    /// the window holds `min_rows` rows, and again once no row came for `max_idle`.
    pub fn reading(&self) -> DriftReading {
        let idle = self
            .last_row
            .is_none_or(|t| t.elapsed() > self.options.max_idle);
        if idle || self.filled < self.options.min_rows.max(1) || self.features.is_empty() {
            return DriftReading {
                rows: self.filled,
                features: Vec::new(),
                drifted_share: None,
            };
        }
        let features: Vec<(String, f64)> = self
            .features
            .iter()
            .map(|f| (f.name.clone(), f.psi(self.filled as u64)))
            .collect();
        let drifted = features
            .iter()
            .filter(|(_, psi)| *psi > self.options.threshold)
            .count();
        DriftReading {
            rows: self.filled,
            drifted_share: Some(drifted as f64 / features.len() as f64),
            features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use kiln_stats::profile::TableProfiler;
    use std::sync::Arc;

    fn batch(xs: Vec<f64>, cs: Vec<&str>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("c", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(xs)),
                Arc::new(StringArray::from(cs)),
            ],
        )
        .unwrap()
    }

    fn reference() -> (TableProfile, RecordBatch) {
        let xs: Vec<f64> = (0..2000).map(|i| (i % 100) as f64).collect();
        let cs: Vec<&str> = (0..2000)
            .map(|i| if i % 4 == 0 { "b" } else { "a" })
            .collect();
        let b = batch(xs, cs);
        let mut profiler = TableProfiler::new(&b.schema(), &["x", "c"]);
        profiler.update(&b).unwrap();
        (profiler.finish(), b)
    }

    #[test]
    fn same_distribution_is_not_drift_and_a_shift_is() {
        let (profile, same) = reference();
        let options = DriftOptions {
            window: 1000,
            min_rows: 200,
            max_idle: std::time::Duration::from_secs(300),
            threshold: 0.2,
        };
        let columns = vec!["x".to_string(), "c".to_string()];
        let mut monitor = DriftMonitor::new(&profile, &columns, options);
        monitor.update(&same.slice(0, 100));
        assert_eq!(monitor.reading().drifted_share, None, "below the row guard");
        monitor.update(&same.slice(100, 900));
        let reading = monitor.reading();
        assert_eq!(reading.rows, 1000);
        assert!(
            reading.features.iter().all(|(_, psi)| *psi < 0.05),
            "{reading:?}"
        );
        assert_eq!(reading.drifted_share, Some(0.0));
        // Shift x far right and flip the categories: both drift, the window forgets.
        let shifted = batch(vec![500.0; 1000], vec!["b"; 1000]);
        monitor.update(&shifted);
        let reading = monitor.reading();
        assert!(
            reading.features.iter().all(|(_, psi)| *psi > 1.0),
            "{reading:?}"
        );
        assert_eq!(reading.drifted_share, Some(1.0));
        monitor.update(&same.slice(0, 1000));
        assert_eq!(monitor.reading().drifted_share, Some(0.0));
    }

    #[test]
    fn a_window_without_recent_rows_reads_no_data() {
        let (profile, same) = reference();
        let options = DriftOptions {
            window: 1000,
            min_rows: 200,
            max_idle: std::time::Duration::from_millis(50),
            threshold: 0.2,
        };
        let columns = vec!["x".to_string(), "c".to_string()];
        let mut monitor = DriftMonitor::new(&profile, &columns, options);
        assert_eq!(monitor.reading().drifted_share, None, "nothing served yet");
        monitor.update(&same.slice(0, 1000));
        assert_eq!(monitor.reading().drifted_share, Some(0.0));
        std::thread::sleep(std::time::Duration::from_millis(80));
        let idle = monitor.reading();
        assert_eq!(
            idle.drifted_share, None,
            "idle: no data, not the last value"
        );
        assert!(idle.features.is_empty());
        monitor.update(&same.slice(0, 1));
        assert_eq!(monitor.reading().drifted_share, Some(0.0), "traffic again");
    }
}
