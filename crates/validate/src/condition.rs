//! `row_condition`: the rows an expectation looks at.
//!
//! Supported: one comparison or several joined by `and` / `&`, each
//! `COLUMN OP LITERAL`, where COLUMN is `col("name")` (GE's own parser), a bare name or
//! a back-quoted name (pandas' `query` syntax), OP is one of `== != > >= < <=`, and
//! LITERAL is a number, a quoted string, `True`/`False`, or `None`/`null` (only with
//! `==`/`!=`, meaning "is missing"/"is not missing"). `or`, parentheses and arithmetic
//! are not supported and are reported as such.

use arrow::array::BooleanArray;
use arrow::record_batch::RecordBatch;
use serde_json::Value as Json;

use crate::value::{Column, Val, equals_json, parse_ts};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    column: String,
    op: Op,
    literal: Json,
}

/// A parsed row condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    terms: Vec<Comparison>,
}

impl Condition {
    /// Parses a condition; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let mut terms = Vec::new();
        for part in split_and(text) {
            terms.push(parse_term(part.trim())?);
        }
        if terms.is_empty() {
            return Err("empty row_condition".into());
        }
        Ok(Condition {
            text: text.to_string(),
            terms,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Columns the condition reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.column.as_str())
    }

    /// The rows of `batch` that satisfy the condition.
    pub fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let mut keep = vec![true; batch.num_rows()];
        for term in &self.terms {
            let array = batch
                .column_by_name(&term.column)
                .ok_or_else(|| format!("row_condition: no column `{}`", term.column))?;
            let column = Column::new(array).map_err(|e| e.to_string())?;
            for (i, k) in keep.iter_mut().enumerate() {
                if *k {
                    *k = term.holds(&column.get(i));
                }
            }
        }
        Ok(BooleanArray::from(keep))
    }
}

impl Comparison {
    fn holds(&self, v: &Val<'_>) -> bool {
        if self.literal.is_null() {
            return match self.op {
                Op::Eq => v.is_null(),
                _ => !v.is_null(),
            };
        }
        if v.is_null() {
            // pandas: NaN compares false, except `!=`.
            return self.op == Op::Ne;
        }
        let ordering = match (v, &self.literal) {
            (Val::Str(s), Json::String(t)) => Some((*s).cmp(t.as_str())),
            (Val::Ts(a), Json::String(t)) => parse_ts(t).map(|b| a.cmp(&b)),
            (_, Json::Number(n)) => v
                .as_f64()
                .zip(n.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
            (_, Json::Bool(_)) => {
                return match self.op {
                    Op::Eq => equals_json(v, &self.literal),
                    Op::Ne => !equals_json(v, &self.literal),
                    _ => false,
                };
            }
            _ => None,
        };
        let Some(ordering) = ordering else {
            return self.op == Op::Ne;
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
        }
    }
}

/// Splits on ` and ` / `&` outside quotes.
fn split_and(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None::<char>);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = bytes[i] as char;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '&' => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            None if text[i..].starts_with(" and ") => {
                parts.push(&text[start..i]);
                start = i + 5;
                i += 4;
            }
            None => {}
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

fn parse_term(term: &str) -> Result<Comparison, String> {
    let term = term
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let unsupported = || {
        format!(
            "row_condition `{term}` is not supported: use `col(\"x\") > 5` or `x == 'a'` terms joined by `and`"
        )
    };
    let (column, rest) = if let Some(rest) = term.strip_prefix("col(") {
        let close = rest.find(')').ok_or_else(unsupported)?;
        let name = rest[..close].trim().trim_matches(|c| c == '"' || c == '\'');
        (name.to_string(), &rest[close + 1..])
    } else if let Some(rest) = term.strip_prefix('`') {
        let close = rest.find('`').ok_or_else(unsupported)?;
        (rest[..close].to_string(), &rest[close + 1..])
    } else {
        let end = term
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(term.len());
        (term[..end].to_string(), &term[end..])
    };
    if column.is_empty() {
        return Err(unsupported());
    }
    let rest = rest.trim();
    let (op, literal) = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
    ]
    .iter()
    .find_map(|(text, op)| rest.strip_prefix(text).map(|l| (*op, l.trim())))
    .ok_or_else(unsupported)?;
    let literal = match literal {
        "True" | "true" => Json::Bool(true),
        "False" | "false" => Json::Bool(false),
        "None" | "null" | "NULL" => Json::Null,
        l if (l.starts_with('"') && l.ends_with('"')
            || l.starts_with('\'') && l.ends_with('\''))
            && l.len() >= 2 =>
        {
            Json::String(l[1..l.len() - 1].to_string())
        }
        l => serde_json::from_str::<serde_json::Number>(l)
            .map(Json::Number)
            .map_err(|_| unsupported())?,
    };
    if literal.is_null() && !matches!(op, Op::Eq | Op::Ne) {
        return Err(unsupported());
    }
    Ok(Comparison {
        column,
        op,
        literal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "age",
                Arc::new(Int64Array::from(vec![Some(20), Some(40), None, Some(60)])) as ArrayRef,
            ),
            (
                "sex",
                Arc::new(StringArray::from(vec!["F", "M", "F", "F"])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn rows(text: &str) -> Vec<bool> {
        let mask = Condition::parse(text).unwrap().mask(&batch()).unwrap();
        mask.iter().map(|v| v.unwrap()).collect()
    }

    #[test]
    fn ge_and_pandas_forms() {
        assert_eq!(rows(r#"col("age") > 30"#), [false, true, false, true]);
        assert_eq!(rows("age>=40 and sex == 'F'"), [false, false, false, true]);
        assert_eq!(rows("`sex`!=\"F\""), [false, true, false, false]);
        assert_eq!(rows(r#"col("age") != None"#), [true, true, false, true]);
        assert_eq!(
            rows(r#"col("sex")=="F" & col("age")<30"#),
            [true, false, false, false]
        );
    }

    #[test]
    fn unsupported_forms_say_so() {
        for text in ["age > 3 or age < 1", "age + 1 > 3", "age > foo", ""] {
            assert!(Condition::parse(text).is_err(), "{text}");
        }
    }
}
