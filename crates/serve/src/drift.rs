//! Online drift: for each input column, the population stability index (PSI) between
//! the last `window` served rows and the training profile in the bundle.
//!
//! The bins, the bin of a value and the PSI are `kiln_stats::drift`'s, the ones
//! validate's offline drift uses, so both give the same PSI on the same rows. A feature
//! has drifted when its PSI exceeds the threshold (default 0.2, the usual "significant
//! shift" line). Nothing is reported until the window holds `min_rows` rows: a PSI
//! over a handful of rows is noise.
//!
//! The window is a ring of bin indices (2 bytes per feature per row) with running
//! counts, so an update is O(features) and a reading O(bins).

use arrow::record_batch::RecordBatch;
use kiln_stats::drift::FeatureBins;
use kiln_stats::profile::TableProfile;

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

struct FeatureWindow {
    name: String,
    bins: FeatureBins,
    counts: Vec<u64>,
}

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
            let Some(bins) = profile.column(name).and_then(FeatureBins::from_profile) else {
                continue;
            };
            features.push(FeatureWindow {
                name: name.clone(),
                counts: vec![0; bins.len()],
                bins,
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
        let rows = batch.num_rows();
        // Each feature's bin for every row of the batch (a column the batch lacks
        // leaves its feature's window as it was).
        let bins: Vec<Option<Vec<usize>>> = self
            .features
            .iter()
            .map(|f| {
                batch.column_by_name(&f.name).map(|a| {
                    let mut out = Vec::with_capacity(rows);
                    f.bins.bins_of(a.as_ref(), &mut out);
                    out
                })
            })
            .collect();
        for row in 0..rows {
            let slot = self.next * width;
            for (i, feature) in self.features.iter_mut().enumerate() {
                let Some(column) = &bins[i] else {
                    continue;
                };
                let bin = column[row] as u16;
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
            .map(|f| (f.name.clone(), f.bins.psi(&f.counts)))
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
