//! The multi-column map family: tests of each row across two or more columns.

use super::kwargs::Kwargs;
use super::registry::{ExpectationType, Kwarg, KwargType::*, optional, required};
use super::{Ignore, MapCheck, MapKind, Work};

/// A map expectation over the columns of `column_list`.
fn over_list(k: &Kwargs<'_>, kind: MapKind) -> Result<Work, String> {
    Ok(Work::Map(MapCheck::new(None, kind, k.mostly()?)))
}

fn pair(k: &Kwargs<'_>, equal: bool) -> Result<Work, String> {
    let kind = MapKind::Pair {
        b: k.string("column_B")?,
        or_equal: k.flag("or_equal", false)?,
        equal,
        ignore: k.ignore(Ignore::AllMissing)?,
    };
    Ok(Work::Map(MapCheck::new(
        Some(k.string("column_A")?),
        kind,
        k.mostly()?,
    )))
}

const LIST: &[Kwarg] = &[
    required("column_list", Strings),
    optional("ignore_row_if", Custom),
    optional("mostly", Fraction),
];

/// The multi-column family's rows of the registry.
pub(super) const TYPES: &[ExpectationType] = &[
    ExpectationType {
        name: "expect_column_pair_values_to_be_equal",
        kwargs: &[
            required("column_A", Str),
            required("column_B", Str),
            optional("ignore_row_if", Custom),
            optional("mostly", Fraction),
        ],
        compile: |k| pair(k, true),
    },
    ExpectationType {
        name: "expect_column_pair_values_a_to_be_greater_than_b",
        kwargs: &[
            required("column_A", Str),
            required("column_B", Str),
            optional("ignore_row_if", Custom),
            optional("or_equal", Bool),
            optional("mostly", Fraction),
        ],
        compile: |k| pair(k, false),
    },
    ExpectationType {
        name: "expect_compound_columns_to_be_unique",
        kwargs: LIST,
        compile: |k| {
            let kind = MapKind::Compound {
                columns: k.strings("column_list")?,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            over_list(k, kind)
        },
    },
    ExpectationType {
        name: "expect_select_column_values_to_be_unique_within_record",
        kwargs: LIST,
        compile: |k| {
            let kind = MapKind::WithinRecord {
                columns: k.strings("column_list")?,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            over_list(k, kind)
        },
    },
    ExpectationType {
        name: "expect_multicolumn_sum_to_equal",
        kwargs: &[
            required("column_list", Strings),
            required("sum_total", Number),
            optional("ignore_row_if", Custom),
            optional("mostly", Fraction),
        ],
        compile: |k| {
            let total = k
                .number("sum_total")?
                .ok_or_else(|| k.fail("missing required kwarg `sum_total`"))?;
            let kind = MapKind::Sum {
                columns: k.strings("column_list")?,
                total,
                ignore: k.ignore(Ignore::AllMissing)?,
            };
            over_list(k, kind)
        },
    },
];
