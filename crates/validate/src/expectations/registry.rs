//! The registry: one row per supported expectation type — its name, its kwargs with
//! their types, and the function that compiles it. The rows live with their family
//! (table, column map, multi-column map, aggregate); this file only gathers them.

use super::kwargs::Kwargs;
use super::{Work, aggregate, column_map, multicolumn, table};

/// How a kwarg's value is read (a wrong type is a suite error that names the kwarg).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KwargType {
    /// A string.
    Str,
    /// A list of strings.
    Strings,
    /// A list of any values.
    List,
    /// `true` or `false`.
    Bool,
    /// Any number.
    Number,
    /// A whole number, at least 0 (`3.0` is accepted, `3.5` is not).
    Count,
    /// A number between 0 and 1.
    Fraction,
    /// A number, the bound of a range.
    Bound,
    /// A number or a date (text), the bound of a range on a column that may hold dates.
    BoundOrDate,
    /// An object (`quantile_ranges`).
    Object,
    /// Read by the compile function itself (several accepted shapes).
    Custom,
}

/// One kwarg an expectation type accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kwarg {
    pub name: &'static str,
    pub kind: KwargType,
    pub required: bool,
}

/// A kwarg that must be given.
pub const fn required(name: &'static str, kind: KwargType) -> Kwarg {
    Kwarg {
        name,
        kind,
        required: true,
    }
}

/// A kwarg that may be left out (or null).
pub const fn optional(name: &'static str, kind: KwargType) -> Kwarg {
    Kwarg {
        name,
        kind,
        required: false,
    }
}

/// One supported expectation type.
pub struct ExpectationType {
    pub name: &'static str,
    /// The kwargs it accepts besides [`COMMON`](super::COMMON).
    pub kwargs: &'static [Kwarg],
    /// Builds the work from kwargs already checked against [`kwargs`](Self::kwargs).
    pub compile: fn(&Kwargs<'_>) -> Result<Work, String>,
}

/// Every supported type, family by family.
pub fn registry() -> impl Iterator<Item = &'static ExpectationType> {
    table::TYPES
        .iter()
        .chain(column_map::TYPES)
        .chain(multicolumn::TYPES)
        .chain(aggregate::TYPES)
}

/// The row of a type name.
pub fn find(name: &str) -> Option<&'static ExpectationType> {
    registry().find(|t| t.name == name)
}

/// The supported type names, sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = registry().map(|t| t.name).collect();
    names.sort_unstable();
    names
}

/// The bounds kwargs of a `…_to_be_between` type on a column.
pub const COLUMN_BETWEEN: &[Kwarg] = &[
    required("column", KwargType::Str),
    optional("min_value", KwargType::BoundOrDate),
    optional("max_value", KwargType::BoundOrDate),
    optional("strict_min", KwargType::Bool),
    optional("strict_max", KwargType::Bool),
];

/// [`COLUMN_BETWEEN`] with numbers only.
pub const COLUMN_BETWEEN_NUMBERS: &[Kwarg] = &[
    required("column", KwargType::Str),
    optional("min_value", KwargType::Bound),
    optional("max_value", KwargType::Bound),
    optional("strict_min", KwargType::Bool),
    optional("strict_max", KwargType::Bool),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_types_each_named_once_with_distinct_kwargs() {
        let names = names();
        assert_eq!(names.len(), 40);
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names, "a type is registered twice");
        for row in registry() {
            assert!(row.name.starts_with("expect_"), "{}", row.name);
            let mut kwargs: Vec<&str> = row.kwargs.iter().map(|k| k.name).collect();
            kwargs.sort_unstable();
            let before = kwargs.len();
            kwargs.dedup();
            assert_eq!(
                kwargs.len(),
                before,
                "{}: a kwarg is listed twice",
                row.name
            );
            for kwarg in &kwargs {
                assert!(
                    !super::super::COMMON.contains(kwarg),
                    "{}: {kwarg} is common to every type",
                    row.name
                );
            }
        }
    }
}
