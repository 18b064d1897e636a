//! `kiln validate --profile`: a starting suite inferred from a table.
//!
//! From one profiling pass: the ordered column list, a row-count range (half to twice
//! the rows seen), each column's type, completeness (not-null, with `mostly` when the
//! column has nulls), value ranges for numbers and dates, and value sets for
//! categorical columns with at most 20 values. Meant to be edited, not trusted blindly.

use arrow::datatypes::Schema;
use serde_json::{Map, Value as Json, json};

use kiln_stats::profile::{ColumnStats, TableProfile};

use crate::suite::{ExpectationConfig, Suite};
use crate::value::type_names;

/// Categorical columns with at most this many values get a value set.
const MAX_SET: u64 = 20;

fn expectation(kind: &str, kwargs: Json) -> ExpectationConfig {
    ExpectationConfig {
        kind: kind.to_string(),
        kwargs: match kwargs {
            Json::Object(m) => m,
            _ => Map::new(),
        },
        meta: Map::new(),
        id: None,
        notes: None,
        severity: None,
    }
}

/// A suite describing `profile` (of a table with `schema`).
pub fn infer_suite(name: &str, schema: &Schema, profile: &TableProfile) -> Suite {
    let mut expectations = vec![
        expectation(
            "expect_table_columns_to_match_ordered_list",
            json!({"column_list": schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()}),
        ),
        expectation(
            "expect_table_row_count_to_be_between",
            json!({"min_value": profile.rows / 2, "max_value": profile.rows.saturating_mul(2)}),
        ),
    ];
    for field in schema.fields() {
        let name = field.name();
        let (type_name, _) = type_names(field.data_type());
        expectations.push(expectation(
            "expect_column_values_to_be_of_type",
            json!({"column": name, "type_": type_name}),
        ));
        let Some(column) = profile.column(name) else {
            continue;
        };
        let rows = column.count + column.nulls;
        if rows > 0 {
            if column.nulls == 0 {
                expectations.push(expectation(
                    "expect_column_values_to_not_be_null",
                    json!({"column": name}),
                ));
            } else if column.count > 0 {
                // Allow a little more missingness than seen, rounded down to 0.1 %.
                let seen = column.count as f64 / rows as f64;
                let mostly = ((seen - 0.01).max(0.0) * 1000.0).floor() / 1000.0;
                expectations.push(expectation(
                    "expect_column_values_to_not_be_null",
                    json!({"column": name, "mostly": mostly}),
                ));
            }
        }
        match &column.stats {
            ColumnStats::Numeric {
                min: Some(min),
                max: Some(max),
                ..
            } => {
                let int = field.data_type().is_integer();
                let (lo, hi) = if int {
                    (json!(*min as i64), json!(*max as i64))
                } else {
                    (json!(min), json!(max))
                };
                expectations.push(expectation(
                    "expect_column_values_to_be_between",
                    json!({"column": name, "min_value": lo, "max_value": hi}),
                ));
            }
            ColumnStats::Categorical {
                distinct,
                distinct_is_lower_bound: false,
                top,
                ..
            } if *distinct <= MAX_SET && *distinct > 0 => {
                let mut values: Vec<&str> = top.iter().map(|(v, _)| v.as_str()).collect();
                values.sort();
                expectations.push(expectation(
                    "expect_column_values_to_be_in_set",
                    json!({"column": name, "value_set": values}),
                ));
            }
            ColumnStats::Timestamp {
                min: Some(min),
                max: Some(max),
            } => {
                let fmt = |t: &chrono::DateTime<chrono::Utc>| {
                    t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()
                };
                expectations.push(expectation(
                    "expect_column_max_to_be_between",
                    json!({"column": name, "min_value": fmt(min), "max_value": fmt(max)}),
                ));
            }
            _ => {}
        }
    }
    let mut meta = Map::new();
    meta.insert(
        "profiled_by".into(),
        json!(format!("kiln {}", env!("CARGO_PKG_VERSION"))),
    );
    meta.insert("profiled_rows".into(), json!(profile.rows));
    Suite {
        name: name.to_string(),
        expectations,
        suite_parameters: Map::new(),
        meta,
        id: None,
        notes: Vec::new(),
    }
}
