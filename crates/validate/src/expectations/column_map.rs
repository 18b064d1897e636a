//! The column map family: a test of each row of one column, its unexpected rows
//! counted as GE counts them.

use super::kwargs::Kwargs;
use super::registry::{
    COLUMN_BETWEEN, COLUMN_BETWEEN_NUMBERS, ExpectationType, Kwarg, KwargType::*, optional,
    required,
};
use super::{MapCheck, MapKind, RowTest, Work};
use crate::value::ValueSet;

/// A map expectation on the kwargs' `column`.
fn map(k: &Kwargs<'_>, kind: MapKind) -> Result<Work, String> {
    Ok(Work::Map(MapCheck::new(
        Some(k.string("column")?),
        kind,
        k.mostly()?,
    )))
}

fn values(k: &Kwargs<'_>, test: RowTest) -> Result<Work, String> {
    map(k, MapKind::Values(test))
}

fn set(k: &Kwargs<'_>) -> Result<ValueSet, String> {
    Ok(ValueSet::new(&k.required_list("value_set")?))
}

fn regexes(k: &Kwargs<'_>) -> Result<Vec<regex::Regex>, String> {
    k.strings("regex_list")?
        .iter()
        .map(|r| k.regex(r))
        .collect()
}

const COLUMN_MOSTLY: &[Kwarg] = &[required("column", Str), optional("mostly", Fraction)];
const SET_MOSTLY: &[Kwarg] = &[
    required("column", Str),
    required("value_set", List),
    optional("mostly", Fraction),
    optional("parse_strings_as_datetimes", Bool),
];
const REGEX: &[Kwarg] = &[
    required("column", Str),
    required("regex", Str),
    optional("mostly", Fraction),
];

/// The column map family's rows of the registry.
pub(super) const TYPES: &[ExpectationType] = &[
    ExpectationType {
        name: "expect_column_values_to_not_be_null",
        kwargs: COLUMN_MOSTLY,
        compile: |k| map(k, MapKind::NotNull),
    },
    ExpectationType {
        name: "expect_column_values_to_be_null",
        kwargs: COLUMN_MOSTLY,
        compile: |k| map(k, MapKind::IsNull),
    },
    ExpectationType {
        name: "expect_column_values_to_be_unique",
        kwargs: COLUMN_MOSTLY,
        compile: |k| map(k, MapKind::Unique),
    },
    ExpectationType {
        name: "expect_column_values_to_be_between",
        kwargs: &[
            COLUMN_BETWEEN[0],
            COLUMN_BETWEEN[1],
            COLUMN_BETWEEN[2],
            COLUMN_BETWEEN[3],
            COLUMN_BETWEEN[4],
            optional("mostly", Fraction),
        ],
        compile: |k| values(k, RowTest::Between(k.bounds(true, true)?)),
    },
    ExpectationType {
        name: "expect_column_values_to_be_in_set",
        kwargs: SET_MOSTLY,
        compile: |k| values(k, RowTest::InSet(set(k)?)),
    },
    ExpectationType {
        name: "expect_column_values_to_not_be_in_set",
        kwargs: SET_MOSTLY,
        compile: |k| values(k, RowTest::NotInSet(set(k)?)),
    },
    ExpectationType {
        name: "expect_column_values_to_match_regex",
        kwargs: REGEX,
        compile: |k| values(k, RowTest::Regex(k.regex(&k.string("regex")?)?)),
    },
    ExpectationType {
        name: "expect_column_values_to_not_match_regex",
        kwargs: REGEX,
        compile: |k| values(k, RowTest::NotRegex(k.regex(&k.string("regex")?)?)),
    },
    ExpectationType {
        name: "expect_column_values_to_match_regex_list",
        kwargs: &[
            required("column", Str),
            required("regex_list", Strings),
            optional("match_on", Custom),
            optional("mostly", Fraction),
        ],
        compile: |k| {
            let list = regexes(k)?;
            let test = match k.get("match_on").map(|v| v.as_str()) {
                None | Some(Some("any")) => RowTest::RegexAny(list),
                Some(Some("all")) => RowTest::RegexAll(list),
                Some(other) => {
                    return Err(k.fail(format!(
                        "`match_on` must be \"any\" or \"all\", got {other:?}"
                    )));
                }
            };
            values(k, test)
        },
    },
    ExpectationType {
        name: "expect_column_values_to_not_match_regex_list",
        kwargs: &[
            required("column", Str),
            required("regex_list", Strings),
            optional("mostly", Fraction),
        ],
        compile: |k| values(k, RowTest::NotRegexAny(regexes(k)?)),
    },
    ExpectationType {
        name: "expect_column_value_lengths_to_be_between",
        kwargs: &[
            COLUMN_BETWEEN_NUMBERS[0],
            COLUMN_BETWEEN_NUMBERS[1],
            COLUMN_BETWEEN_NUMBERS[2],
            COLUMN_BETWEEN_NUMBERS[3],
            COLUMN_BETWEEN_NUMBERS[4],
            optional("mostly", Fraction),
        ],
        compile: |k| values(k, RowTest::LengthBetween(k.bounds(false, true)?)),
    },
    ExpectationType {
        name: "expect_column_value_lengths_to_equal",
        kwargs: &[
            required("column", Str),
            required("value", Count),
            optional("mostly", Fraction),
        ],
        compile: |k| values(k, RowTest::LengthEqual(k.required_count("value")?)),
    },
];
