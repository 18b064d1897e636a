//! The table family: checks decided from the schema and the row count alone.

use arrow::datatypes::Schema;
use serde_json::{Map, Value as Json, json};

use super::registry::{ExpectationType, Kwarg, KwargType::*, optional, required};
use super::{Bounds, Outcome, Work};
use crate::value::{Val, type_names};

const TABLE_BETWEEN: &[Kwarg] = &[
    optional("min_value", Bound),
    optional("max_value", Bound),
    optional("strict_min", Bool),
    optional("strict_max", Bool),
];

/// The table family's rows of the registry.
pub(super) const TYPES: &[ExpectationType] = &[
    ExpectationType {
        name: "expect_table_row_count_to_be_between",
        kwargs: TABLE_BETWEEN,
        compile: |k| Ok(Work::Table(TableCheck::RowCount(k.bounds(false, false)?))),
    },
    ExpectationType {
        name: "expect_table_row_count_to_equal",
        kwargs: &[required("value", Count)],
        compile: |k| Ok(Work::Table(TableCheck::RowCount(k.equal("value")?))),
    },
    ExpectationType {
        name: "expect_table_column_count_to_be_between",
        kwargs: TABLE_BETWEEN,
        compile: |k| {
            Ok(Work::Table(TableCheck::ColumnCount(
                k.bounds(false, false)?,
            )))
        },
    },
    ExpectationType {
        name: "expect_table_column_count_to_equal",
        kwargs: &[required("value", Count)],
        compile: |k| Ok(Work::Table(TableCheck::ColumnCount(k.equal("value")?))),
    },
    ExpectationType {
        name: "expect_table_columns_to_match_ordered_list",
        kwargs: &[required("column_list", Strings)],
        compile: |k| {
            Ok(Work::Table(TableCheck::ColumnsOrdered(
                k.strings("column_list")?,
            )))
        },
    },
    ExpectationType {
        name: "expect_table_columns_to_match_set",
        kwargs: &[
            required("column_set", Strings),
            optional("exact_match", Bool),
        ],
        compile: |k| {
            Ok(Work::Table(TableCheck::ColumnsSet {
                set: k.strings("column_set")?,
                exact: k.flag("exact_match", true)?,
            }))
        },
    },
    ExpectationType {
        name: "expect_column_to_exist",
        kwargs: &[required("column", Str), optional("column_index", Count)],
        compile: |k| {
            Ok(Work::Table(TableCheck::ColumnExists {
                column: k.string("column")?,
                index: k.count("column_index")?.map(|i| i as usize),
            }))
        },
    },
    ExpectationType {
        name: "expect_column_values_to_be_of_type",
        kwargs: &[
            required("column", Str),
            required("type_", Str),
            optional("mostly", Fraction),
        ],
        compile: |k| {
            Ok(Work::Table(TableCheck::OfType {
                column: k.string("column")?,
                types: vec![k.string("type_")?],
            }))
        },
    },
    ExpectationType {
        name: "expect_column_values_to_be_in_type_list",
        kwargs: &[
            required("column", Str),
            required("type_list", Strings),
            optional("mostly", Fraction),
        ],
        compile: |k| {
            Ok(Work::Table(TableCheck::OfType {
                column: k.string("column")?,
                types: k.strings("type_list")?,
            }))
        },
    },
];

/// A check decided from the schema and the row count alone.
pub enum TableCheck {
    RowCount(Bounds),
    ColumnCount(Bounds),
    ColumnsOrdered(Vec<String>),
    ColumnsSet {
        set: Vec<String>,
        exact: bool,
    },
    ColumnExists {
        column: String,
        index: Option<usize>,
    },
    OfType {
        column: String,
        types: Vec<String>,
    },
}

impl TableCheck {
    pub fn finish(&self, schema: &Schema, rows: u64) -> Outcome {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let count = |n: usize| Outcome::observed(true, json!(n));
        match self {
            TableCheck::RowCount(b) => {
                let mut o = count(rows as usize);
                o.success = b.contains(&Val::Int(rows as i64)).unwrap_or(false);
                o
            }
            TableCheck::ColumnCount(b) => {
                let mut o = count(names.len());
                o.success = b.contains(&Val::Int(names.len() as i64)).unwrap_or(false);
                o
            }
            TableCheck::ColumnsOrdered(expected) => {
                let ok = names.len() == expected.len()
                    && names.iter().zip(expected).all(|(a, b)| a == b);
                let mut o = Outcome::observed(ok, json!(names));
                if !ok {
                    let mismatched: Vec<Json> = (0..names.len().max(expected.len()))
                        .filter(|&i| names.get(i).copied() != expected.get(i).map(String::as_str))
                        .map(|i| json!({"Expected Column Position": i, "Expected": expected.get(i), "Found": names.get(i)}))
                        .collect();
                    o.result
                        .insert("details".into(), json!({"mismatched": mismatched}));
                }
                o
            }
            TableCheck::ColumnsSet { set, exact } => {
                let unexpected: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !set.iter().any(|s| s == n))
                    .collect();
                let missing: Vec<&str> = set
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !names.contains(s))
                    .collect();
                let ok = missing.is_empty() && (!exact || unexpected.is_empty());
                let mut sorted = names.clone();
                sorted.sort();
                let mut o = Outcome::observed(ok, json!(sorted));
                if !ok {
                    o.result.insert(
                        "details".into(),
                        json!({"mismatched": {"unexpected": unexpected, "missing": missing}}),
                    );
                }
                o
            }
            TableCheck::ColumnExists { column, index } => {
                let at = names.iter().position(|n| n == column);
                let ok = match (at, index) {
                    (Some(a), Some(i)) => a == *i,
                    (Some(_), None) => true,
                    _ => false,
                };
                Outcome {
                    success: ok,
                    result: Map::new(),
                    error: None,
                }
            }
            TableCheck::OfType { column, types } => match schema.field_with_name(column) {
                Err(_) => Outcome::exception(format!("column `{column}` does not exist")),
                Ok(field) => {
                    let (observed, accepted) = type_names(field.data_type());
                    let ok = types.iter().any(|t| accepted.contains(&t.as_str()));
                    Outcome::observed(ok, json!(observed))
                }
            },
        }
    }
}
