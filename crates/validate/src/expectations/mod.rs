//! Each supported expectation type: its kwargs, checked strictly, and what it computes.
//!
//! [`registry`] has one row per type (name, typed kwargs, compile function); the rows
//! live with their family: [`table`], [`column_map`], [`multicolumn`] and
//! [`aggregate`]. Expectations compile to one of three kinds of work:
//! - [`Work::Table`]: decided from the schema and the row count;
//! - [`Work::Aggregate`]: reads a column's shared [`ColumnStats`] (count, nulls, min,
//!   max, sum, moments, exact value counts), computed once per column for all the
//!   expectations that need it;
//! - [`Work::Map`]: a per-row test whose unexpected rows are counted as GE's column map
//!   expectations count them.

pub mod aggregate;
pub mod column_map;
pub mod kwargs;
pub mod map;
pub mod multicolumn;
pub mod registry;
pub mod rows;
pub mod stats;
pub mod table;

use std::sync::LazyLock;

use arrow::datatypes::DataType;
use serde_json::{Map, Value as Json};

pub use aggregate::Aggregate;
pub use map::{MapCheck, MapKind};
pub use rows::{Ignore, RowTest};
pub use stats::ColumnStats;
pub use table::TableCheck;

use crate::suite::ExpectationConfig;
use crate::value::{Val, parse_ts};

/// The expectation types Kiln runs, sorted (the names of the [`registry`]).
pub static SUPPORTED: LazyLock<Vec<&'static str>> = LazyLock::new(registry::names);

/// Kwargs every expectation accepts (they change reporting, not the verdict).
pub(crate) const COMMON: &[&str] = &[
    "result_format",
    "catch_exceptions",
    "include_config",
    "row_condition",
    "condition_parser",
    "batch_id",
];

/// How many unexpected values a result lists (GE's SUMMARY default).
pub const PARTIAL_UNEXPECTED: usize = 20;

/// What one expectation needs from a column's shared statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Needs {
    pub counts: bool,
    pub moments: bool,
}

/// A lower and upper bound, each optional, with strictness.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub min: Option<Json>,
    pub max: Option<Json>,
    pub strict_min: bool,
    pub strict_max: bool,
}

impl Bounds {
    /// Whether a number (or a timestamp, compared with dates given as text) is inside.
    pub(crate) fn contains(&self, v: &Val<'_>) -> Result<bool, String> {
        let check = |bound: &Json| -> Result<std::cmp::Ordering, String> {
            let ord = match (v, bound) {
                (Val::Ts(t), Json::String(s)) => {
                    let b =
                        parse_ts(s).ok_or_else(|| format!("`{s}` is not a date or date-time"))?;
                    Some(t.cmp(&b))
                }
                (Val::Str(a), Json::String(b)) => Some((*a).cmp(b.as_str())),
                (_, Json::Number(n)) => v
                    .as_f64()
                    .zip(n.as_f64())
                    .and_then(|(a, b)| a.partial_cmp(&b)),
                _ => None,
            };
            ord.ok_or_else(|| format!("cannot compare {} with {bound}", v.to_json()))
        };
        use std::cmp::Ordering::*;
        if let Some(min) = &self.min {
            let o = check(min)?;
            if o == Less || (self.strict_min && o == Equal) {
                return Ok(false);
            }
        }
        if let Some(max) = &self.max {
            let o = check(max)?;
            if o == Greater || (self.strict_max && o == Equal) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The verdict of one expectation, before it is dressed as GE's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub success: bool,
    pub result: Map<String, Json>,
    /// An exception GE would report in `exception_info` (the expectation fails).
    pub error: Option<String>,
}

impl Outcome {
    pub fn observed(success: bool, value: Json) -> Outcome {
        let mut result = Map::new();
        result.insert("observed_value".into(), value);
        Outcome {
            success,
            result,
            error: None,
        }
    }

    pub fn exception(message: impl Into<String>) -> Outcome {
        Outcome {
            success: false,
            result: Map::new(),
            error: Some(message.into()),
        }
    }
}

/// What running one expectation takes.
pub enum Work {
    Table(TableCheck),
    Aggregate {
        column: String,
        aggregate: Aggregate,
    },
    Map(MapCheck),
}

impl Work {
    /// What the aggregate needs from its column's statistics.
    pub fn needs(&self) -> Option<(&str, Needs)> {
        match self {
            Work::Aggregate { column, aggregate } => Some((column, aggregate.needs())),
            Work::Map(m) => m.needs(),
            Work::Table(_) => None,
        }
    }
}

/// Compiles one expectation; `Ok(None)` for an unknown type (the caller decides
/// whether that is an error).
pub fn compile(config: &ExpectationConfig) -> Result<Option<Work>, String> {
    let Some(row) = registry::find(&config.kind) else {
        return Ok(None);
    };
    let kwargs = kwargs::Kwargs::new(config);
    kwargs.check(row)?;
    (row.compile)(&kwargs).map(Some)
}

/// Whether a column type suits an aggregate or a row test (GE fails such an
/// expectation with an exception; so do we, before reading any data).
pub fn type_problem(work: &Work, data_type: &DataType) -> Option<String> {
    let numeric = data_type.is_numeric() || matches!(data_type, DataType::Boolean);
    let temporal = matches!(
        data_type,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    );
    let needs_number = match work {
        Work::Aggregate { aggregate, .. } => matches!(
            aggregate,
            Aggregate::Mean(_)
                | Aggregate::Median(_)
                | Aggregate::Stdev(_)
                | Aggregate::Sum(_)
                | Aggregate::Quantiles { .. }
        ),
        _ => false,
    };
    if needs_number && !numeric {
        return Some(format!("needs a numeric column, the column is {data_type}"));
    }
    let needs_order = match work {
        Work::Aggregate {
            aggregate: Aggregate::Min(_) | Aggregate::Max(_),
            ..
        } => true,
        Work::Map(m) => matches!(m.kind, MapKind::Values(RowTest::Between(_))),
        _ => false,
    };
    if needs_order && !(numeric || temporal) {
        return Some(format!(
            "needs a numeric or date column, the column is {data_type}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(kind: &str, kwargs: Json) -> Result<Option<Work>, String> {
        let config: ExpectationConfig =
            serde_json::from_value(serde_json::json!({"type": kind, "kwargs": kwargs})).unwrap();
        compile(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_number_kwargs_refuse_fractions_and_negatives() {
        let kind = "expect_table_row_count_to_equal";
        assert!(compiled(kind, serde_json::json!({"value": 3})).is_ok());
        assert!(compiled(kind, serde_json::json!({"value": 3.0})).is_ok());
        for bad in [
            serde_json::json!(3.5),
            serde_json::json!(-1),
            serde_json::json!("3"),
        ] {
            let err = compiled(kind, serde_json::json!({ "value": bad }))
                .err()
                .unwrap();
            assert_eq!(
                err,
                format!("{kind}: `value` must be a whole number, got {bad}")
            );
        }
        let err = compiled(
            "expect_column_to_exist",
            serde_json::json!({"column": "a", "column_index": 1.5}),
        )
        .err()
        .unwrap();
        assert!(
            err.contains("`column_index` must be a whole number"),
            "{err}"
        );
    }

    #[test]
    fn unknown_types_compile_to_nothing_and_typed_kwargs_name_the_kwarg() {
        assert!(matches!(
            compiled("expect_the_moon", serde_json::json!({})),
            Ok(None)
        ));
        let err = compiled(
            "expect_column_values_to_be_in_set",
            serde_json::json!({"column": "a", "value_set": "x"}),
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            "expect_column_values_to_be_in_set: `value_set` must be a list, got \"x\""
        );
        let err = compiled(
            "expect_table_columns_to_match_set",
            serde_json::json!({"column_set": ["a"], "exact_match": "yes"}),
        )
        .err()
        .unwrap();
        assert!(err.contains("`exact_match` must be true or false"), "{err}");
    }
}
