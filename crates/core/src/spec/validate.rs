//! Semantic checks that types alone cannot express: every named column exists with a
//! fitting type, splits are consistent, bounds are ordered. Each message names the field.

use std::collections::HashSet;

use super::{
    BucketSpec, ColumnType, DataFormat, EventTimeSpec, FilterOp, PipelineSpec, SplitSpec, TrainSpec,
};

impl PipelineSpec {
    /// Checks the spec's internal consistency; the error names the offending field.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.contains('/') {
            return Err("name: must be non-empty and contain no `/`".into());
        }
        self.check_schema()?;
        self.check_data()?;
        self.check_label()?;
        for (i, name) in self.sensitive.iter().enumerate() {
            self.need_column(&format!("sensitive[{i}]"), name)?;
        }
        self.check_filters()?;
        self.check_transform()?;
        self.check_train()?;
        let e = &self.evaluate;
        if !(0.0..=1.0).contains(&e.threshold) {
            return Err(format!(
                "evaluate.threshold: {} must be in [0, 1]",
                e.threshold
            ));
        }
        if e.calibration_bins == 0 {
            return Err("evaluate.calibration_bins: must be at least 1".into());
        }
        if let Some(m) = &self.fairness.mitigation {
            if !self.sensitive.contains(&m.attribute) {
                return Err(format!(
                    "fairness.mitigation.attribute: `{}` is not a sensitive attribute",
                    m.attribute
                ));
            }
            if !(m.min_ratio > 0.0 && m.min_ratio <= 1.0) {
                return Err(format!(
                    "fairness.mitigation.min_ratio: {} is not in (0, 1]",
                    m.min_ratio
                ));
            }
        }
        for (i, gate) in self.fairness.gates.iter().enumerate() {
            if gate.min.is_none() && gate.max.is_none() {
                return Err(format!("fairness.gates[{i}]: give `min`, `max` or both"));
            }
            if let Some(attribute) = &gate.attribute
                && !self.sensitive.contains(attribute)
                && !attribute.contains(" × ")
            {
                return Err(format!(
                    "fairness.gates[{i}].attribute: `{attribute}` is not a sensitive attribute"
                ));
            }
        }
        match &self.event_time {
            EventTimeSpec::Column(name) => {
                let col = self.need_column("event_time.column", name)?;
                if col.dtype != ColumnType::Timestamp {
                    return Err(format!(
                        "event_time.column: `{name}` must have type timestamp"
                    ));
                }
            }
            EventTimeSpec::Fixed(text) => {
                crate::values::parse_timestamp(text)
                    .ok_or_else(|| format!("event_time.fixed: `{text}` is not an RFC 3339 time"))?;
            }
            EventTimeSpec::IngestTime => {}
        }
        Ok(())
    }

    /// `data.tables` and `data.query` go together, and replace `data.sources`.
    fn check_query(&self) -> Result<(), String> {
        let data = &self.data;
        if data.format == DataFormat::Delta && !data.sources.is_empty() {
            return Err(
                "data.format: a Delta table is read through data.tables and data.query, not data.sources"
                    .into(),
            );
        }
        if data
            .delta_output
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            return Err("data.delta_output: empty".into());
        }
        let Some(query) = &data.query else {
            if let Some(name) = data.tables.keys().next() {
                return Err(format!(
                    "data.tables.{name}: tables are read only by data.query, which is missing"
                ));
            }
            return Ok(());
        };
        if query.trim().is_empty() {
            return Err("data.query: empty query".into());
        }
        if !data.sources.is_empty() {
            return Err(
                "data.sources: not read when data.query is given; name those files under data.tables"
                    .into(),
            );
        }
        if data.tables.is_empty() {
            return Err("data.tables: data.query needs at least one table".into());
        }
        for (name, table) in &data.tables {
            let mut chars = name.chars();
            let identifier = chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !identifier {
                return Err(format!(
                    "data.tables.{name}: a table name must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)"
                ));
            }
            if table.uri.trim().is_empty() {
                return Err(format!("data.tables.{name}.uri: empty"));
            }
            let format = table.format_or(data.format);
            if format != DataFormat::Csv && !table.schema.is_empty() {
                return Err(format!(
                    "data.tables.{name}.schema: only for CSV tables (Parquet files carry their types)"
                ));
            }
            if format == DataFormat::Delta && !table.partitions.is_empty() {
                return Err(format!(
                    "data.tables.{name}.partitions: a Delta table's partitions come from its log"
                ));
            }
            if format != DataFormat::Delta && table.version.is_some() {
                return Err(format!(
                    "data.tables.{name}.version: only a Delta table has versions"
                ));
            }
            if let Some(column) = table
                .partitions
                .iter()
                .find(|p| table.schema.iter().any(|c| &&c.name == p))
            {
                return Err(format!(
                    "data.tables.{name}.partitions: `{column}` is also in the table's schema"
                ));
            }
        }
        Ok(())
    }

    /// Derived columns: new names, over numeric schema columns other than the label.
    fn check_derived(&self) -> Result<(), String> {
        for (i, derived) in self.transform.derived.iter().enumerate() {
            let field = format!("transform.derived[{i}]");
            let name = &derived.name;
            let mut chars = name.chars();
            let identifier = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_');
            if !identifier {
                return Err(format!("{field}.name: `{name}` is not a column name"));
            }
            if self.column(name).is_some() {
                return Err(format!("{field}.name: `{name}` is already a schema column"));
            }
            if self.transform.derived[..i].iter().any(|d| &d.name == name) {
                return Err(format!("{field}.name: `{name}` is derived twice"));
            }
            for input in derived.expr.columns() {
                let col = self.need_column(&format!("{field}.expr"), input)?;
                if !col.dtype.is_numeric() || input == self.label.column {
                    return Err(format!(
                        "{field}.expr: `{input}` is not an int or float feature column"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Lookup features: an int or string key, and schema columns that some feature (or
    /// a derived column) reads, none of them the label or the key.
    fn check_lookup(&self) -> Result<(), String> {
        let Some(lookup) = &self.transform.lookup else {
            return Ok(());
        };
        let key = self.need_column("transform.lookup.key", &lookup.key)?;
        if !matches!(key.dtype, ColumnType::Int | ColumnType::String)
            || key.name == self.label.column
        {
            return Err(format!(
                "transform.lookup.key: `{}` must be an int or string column other than the label",
                key.name
            ));
        }
        if lookup.columns.is_empty() {
            return Err("transform.lookup.columns: name at least one column".into());
        }
        let transform = &self.transform;
        let read: Vec<&str> = transform
            .numeric
            .iter()
            .map(|f| f.column.as_str())
            .chain(transform.categorical.iter().map(|f| f.column.as_str()))
            .chain(transform.derived.iter().flat_map(|d| d.expr.columns()))
            .collect();
        for (i, column) in lookup.columns.iter().enumerate() {
            let field = format!("transform.lookup.columns[{i}]");
            self.need_column(&field, column)?;
            if column == &lookup.key || column == &self.label.column {
                return Err(format!(
                    "{field}: `{column}` is the key or the label, not a feature"
                ));
            }
            if lookup.columns[..i].contains(column) {
                return Err(format!("{field}: `{column}` is listed twice"));
            }
            if !read.contains(&column.as_str()) {
                return Err(format!(
                    "{field}: no feature reads `{column}` (list it under transform.numeric or transform.categorical)"
                ));
            }
        }
        Ok(())
    }

    fn need_column(&self, field: &str, name: &str) -> Result<&super::ColumnSpec, String> {
        self.column(name)
            .ok_or_else(|| format!("{field}: column `{name}` is not in `schema`"))
    }

    fn check_schema(&self) -> Result<(), String> {
        if self.schema.is_empty() {
            return Err("schema: declare at least one column".into());
        }
        let mut seen = HashSet::new();
        for (i, col) in self.schema.iter().enumerate() {
            if col.name.is_empty() {
                return Err(format!("schema[{i}].name: must not be empty"));
            }
            if matches!(col.name.as_str(), "row_id" | "event_timestamp") {
                return Err(format!(
                    "schema[{i}].name: `{}` is reserved for the column prepare adds",
                    col.name
                ));
            }
            if !seen.insert(col.name.as_str()) {
                return Err(format!("schema[{i}].name: duplicate column `{}`", col.name));
            }
        }
        Ok(())
    }

    fn check_data(&self) -> Result<(), String> {
        self.check_query()?;
        if self.data.query.is_none() && self.data.sources.is_empty() {
            return Err(
                "data.sources: name at least one file (or give data.tables and data.query)".into(),
            );
        }
        if self.data.format == DataFormat::Csv && !self.data.csv.delimiter.is_ascii() {
            return Err("data.csv.delimiter: must be one ASCII character".into());
        }
        match &self.split {
            SplitSpec::Files if self.data.query.is_some() => {
                return Err(
                    "split.method: `files` splits by source file; with data.query use `hash`"
                        .into(),
                );
            }
            SplitSpec::Files => {
                for (i, source) in self.data.sources.iter().enumerate() {
                    if source.split.is_none() {
                        return Err(format!(
                            "data.sources[{i}].split: required when split.method is `files` (train or test)"
                        ));
                    }
                }
                for role in [super::SplitRole::Train, super::SplitRole::Test] {
                    if !self.data.sources.iter().any(|s| s.split == Some(role)) {
                        return Err(format!(
                            "data.sources: split.method `files` needs a source with `split: {}`",
                            role.as_str()
                        ));
                    }
                }
            }
            SplitSpec::Hash {
                key, test_fraction, ..
            } => {
                if !(*test_fraction > 0.0 && *test_fraction < 1.0) {
                    return Err(format!(
                        "split.test_fraction: {test_fraction} must be in (0, 1)"
                    ));
                }
                if let Some(key) = key {
                    self.need_column("split.key", key)?;
                }
                if let Some(i) = self.data.sources.iter().position(|s| s.split.is_some()) {
                    return Err(format!(
                        "data.sources[{i}].split: only allowed when split.method is `files`"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_label(&self) -> Result<(), String> {
        let col = self.need_column("label.column", &self.label.column)?;
        if col.dtype != ColumnType::String {
            return Err(format!(
                "label.column: `{}` must have type string (its raw values are mapped to 0/1)",
                col.name
            ));
        }
        if self.label.negative.as_deref() == Some(self.label.positive.as_str()) {
            return Err("label.negative: must differ from label.positive".into());
        }
        Ok(())
    }

    fn check_filters(&self) -> Result<(), String> {
        for (i, filter) in self.filters.iter().enumerate() {
            let field = format!("filters[{i}]");
            let col = self.need_column(&format!("{field}.column"), &filter.column)?;
            let values: Vec<&serde_json::Value> = match filter.op {
                FilterOp::IsNull | FilterOp::NotNull => Vec::new(),
                FilterOp::In | FilterOp::NotIn => filter
                    .values
                    .as_ref()
                    .ok_or_else(|| format!("{field}.values: required for `in` / `not_in`"))?
                    .iter()
                    .collect(),
                _ => vec![
                    filter
                        .value
                        .as_ref()
                        .ok_or_else(|| format!("{field}.value: required for this op"))?,
                ],
            };
            for value in values {
                let fits = match col.dtype {
                    ColumnType::Int => value.as_i64().is_some(),
                    ColumnType::Float => value.as_f64().is_some(),
                    ColumnType::String => value.is_string(),
                    ColumnType::Bool => value.is_boolean(),
                    ColumnType::Timestamp => value
                        .as_str()
                        .and_then(crate::values::parse_timestamp)
                        .is_some(),
                };
                if !fits {
                    return Err(format!(
                        "{field}: value {value} does not fit column `{}` of type {:?}",
                        col.name, col.dtype
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_train(&self) -> Result<(), String> {
        check_train_spec(&self.train)?;
        if let Some(tune) = &self.tune {
            tune.check(&self.train)?;
        }
        Ok(())
    }

    fn check_transform(&self) -> Result<(), String> {
        if self.transform.numeric.is_empty() && self.transform.categorical.is_empty() {
            return Err("transform: name at least one feature".into());
        }
        self.check_derived()?;
        self.check_lookup()?;
        let mut used = HashSet::new();
        for (i, feature) in self.transform.numeric.iter().enumerate() {
            let field = format!("transform.numeric[{i}]");
            let derived = self
                .transform
                .derived
                .iter()
                .any(|d| d.name == feature.column);
            let col = if derived {
                &super::ColumnSpec {
                    name: feature.column.clone(),
                    dtype: ColumnType::Float,
                    nullable: true,
                }
            } else {
                self.need_column(&format!("{field}.column"), &feature.column)?
            };
            if !col.dtype.is_numeric() {
                return Err(format!(
                    "{field}.column: `{}` is not int or float",
                    col.name
                ));
            }
            if !used.insert(("n", feature.column.as_str())) {
                return Err(format!(
                    "{field}.column: `{}` is listed twice",
                    feature.column
                ));
            }
            if feature.column == self.label.column {
                return Err(format!("{field}.column: the label cannot be a feature"));
            }
            if let Some(clip) = &feature.clip {
                if clip.min.is_some() && clip.lower_quantile.is_some()
                    || clip.max.is_some() && clip.upper_quantile.is_some()
                {
                    return Err(format!(
                        "{field}.clip: give a fixed bound or a quantile per side, not both"
                    ));
                }
                for q in [clip.lower_quantile, clip.upper_quantile]
                    .into_iter()
                    .flatten()
                {
                    if !(0.0..=1.0).contains(&q) {
                        return Err(format!("{field}.clip: quantile {q} must be in [0, 1]"));
                    }
                }
                if let (Some(lo), Some(hi)) = (clip.min, clip.max)
                    && lo > hi
                {
                    return Err(format!("{field}.clip: min {lo} is above max {hi}"));
                }
            }
            match &feature.bucketize {
                Some(BucketSpec::Boundaries(edges))
                    if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) =>
                {
                    return Err(format!(
                        "{field}.bucketize.boundaries: must be non-empty and strictly ascending"
                    ));
                }
                Some(BucketSpec::Quantiles(n)) if *n < 2 => {
                    return Err(format!(
                        "{field}.bucketize.quantiles: need at least 2 buckets"
                    ));
                }
                _ => {}
            }
            if let Some(ple) = &feature.piecewise_linear
                && !(2..=1024).contains(&ple.bins)
            {
                return Err(format!(
                    "{field}.piecewise_linear.bins: {} is out of range (2 to 1024)",
                    ple.bins
                ));
            }
        }
        for (i, feature) in self.transform.categorical.iter().enumerate() {
            let field = format!("transform.categorical[{i}]");
            let col = self.need_column(&format!("{field}.column"), &feature.column)?;
            if matches!(col.dtype, ColumnType::Float | ColumnType::Timestamp) {
                return Err(format!(
                    "{field}.column: `{}` is {:?}; categorical features need string, int or bool",
                    col.name, col.dtype
                ));
            }
            if !used.insert(("c", feature.column.as_str())) {
                return Err(format!(
                    "{field}.column: `{}` is listed twice",
                    feature.column
                ));
            }
            if feature.column == self.label.column {
                return Err(format!("{field}.column: the label cannot be a feature"));
            }
            if feature.max_categories == Some(0) {
                return Err(format!("{field}.max_categories: must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A finite number above zero (NaN is not).
fn is_positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// The train section's checks (also run on every tuned configuration).
pub(crate) fn check_train_spec(t: &TrainSpec) -> Result<(), String> {
    if t.hidden.contains(&0) {
        return Err("train.hidden: layer sizes must be at least 1".into());
    }
    if !(0.0..1.0).contains(&t.dropout) {
        return Err(format!("train.dropout: {} must be in [0, 1)", t.dropout));
    }
    if !is_positive(t.learning_rate) {
        return Err(format!(
            "train.learning_rate: {} must be positive",
            t.learning_rate
        ));
    }
    if t.batch_size == 0
        || t.epochs == 0
        || t.embedding_dim == 0
        || t.checkpoint_every == 0
        || t.shards == 0
    {
        return Err(
            "train: batch_size, epochs, embedding_dim, shards and checkpoint_every must be at least 1"
                .into(),
        );
    }
    if t.shards > 64 {
        return Err(format!("train.shards: {} is more than 64", t.shards));
    }
    if let crate::spec::NumericEmbedding::Periodic(p) = &t.numeric_embedding {
        if p.frequencies == 0 || p.dim == 0 {
            return Err(
                "train.numeric_embedding.periodic: frequencies and dim must be at least 1".into(),
            );
        }
        if !(p.sigma.is_finite() && p.sigma > 0.0) {
            return Err(format!(
                "train.numeric_embedding.periodic.sigma: {} must be positive",
                p.sigma
            ));
        }
    }
    if !(t.validation_fraction > 0.0 && t.validation_fraction < 1.0) {
        return Err(format!(
            "train.validation_fraction: {} must be in (0, 1)",
            t.validation_fraction
        ));
    }
    if let super::ClassWeight::Positive(w) = t.class_weight
        && !is_positive(w)
    {
        return Err(format!("train.class_weight.positive: {w} must be positive"));
    }
    match t.lr_schedule {
        super::LrSchedule::Cosine { min_factor } if !(0.0..=1.0).contains(&min_factor) => Err(
            format!("train.lr_schedule.cosine.min_factor: {min_factor} must be in [0, 1]"),
        ),
        super::LrSchedule::Step { every, gamma } if every == 0 || !is_positive(gamma) => {
            Err("train.lr_schedule.step: `every` must be ≥ 1 and `gamma` positive".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::LoadedSpec;

    fn spec_with(extra: &str) -> Result<LoadedSpec, crate::error::Error> {
        let text = format!(
            r#"
name: demo
data:
  format: csv
  sources: [{{uri: a.csv, split: train}}, {{uri: b.csv, split: test}}]
schema:
  - {{name: x, type: float}}
  - {{name: c, type: string}}
  - {{name: y, type: string}}
label: {{column: y, positive: "1"}}
split: {{method: files}}
{extra}
"#
        );
        LoadedSpec::from_text(&text, "spec.yaml", &[])
    }

    fn message(extra: &str) -> String {
        spec_with(extra).unwrap_err().to_string()
    }

    #[test]
    fn valid_spec_passes() {
        spec_with("transform: {numeric: [{column: x}], categorical: [{column: c}]}").unwrap();
        spec_with("transform: {numeric: [{column: x}], lookup: {key: c, columns: [x]}}").unwrap();
    }

    #[test]
    fn each_inconsistency_names_its_field() {
        let cases = [
            (
                "transform: {numeric: [{column: nope}]}",
                "transform.numeric[0].column: column `nope` is not in `schema`",
            ),
            (
                "transform: {numeric: [{column: c}]}",
                "transform.numeric[0].column: `c` is not int or float",
            ),
            (
                "transform: {numeric: [{column: x, clip: {min: 3, max: 1}}]}",
                "min 3 is above max 1",
            ),
            (
                "transform: {numeric: [{column: x, bucketize: {boundaries: [2, 1]}}]}",
                "strictly ascending",
            ),
            (
                "transform: {categorical: [{column: y}]}",
                "the label cannot be a feature",
            ),
            (
                "transform: {numeric: [{column: x}]}\nsensitive: [sex]",
                "sensitive[0]: column `sex` is not in `schema`",
            ),
            (
                "transform: {numeric: [{column: x}]}\nfilters: [{column: x, op: gt, value: abc}]",
                "filters[0]: value \"abc\" does not fit",
            ),
            (
                "transform: {numeric: [{column: x}]}\nfilters: [{column: x, op: in}]",
                "filters[0].values: required",
            ),
            (
                "transform: {numeric: [{column: x}]}\nevent_time: {fixed: yesterday}",
                "event_time.fixed",
            ),
            ("transform: {}", "transform: name at least one feature"),
            (
                "transform: {numeric: [{column: x}], lookup: {key: x, columns: [x]}}",
                "transform.lookup.key: `x` must be an int or string column",
            ),
            (
                "transform: {numeric: [{column: x}], lookup: {key: c, columns: []}}",
                "transform.lookup.columns: name at least one column",
            ),
            (
                "transform: {numeric: [{column: x}], lookup: {key: c, columns: [x, y]}}",
                "transform.lookup.columns[1]: `y` is the key or the label",
            ),
            (
                "transform: {categorical: [{column: c}], lookup: {key: c, columns: [x]}}",
                "transform.lookup.columns[0]: no feature reads `x`",
            ),
            (
                "transform: {numeric: [{column: x}], lookup: {key: c, columns: [x, x]}}",
                "transform.lookup.columns[1]: `x` is listed twice",
            ),
        ];
        for (extra, expected) in cases {
            let msg = message(extra);
            assert!(msg.contains(expected), "for {extra:?}: {msg}");
        }
    }
}
