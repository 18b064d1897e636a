//! Derived columns over record batches: each row through [`Expr::eval`], the evaluator
//! the model server applies to one JSON record ([`crate::FittedTransform::apply_record`]).

use arrow::record_batch::RecordBatch;

use kiln_core::error::{Error, Result};
use kiln_core::spec::{DerivedSpec, Expr};
use kiln_stats::profile::numeric_values;

/// The values of one derived column for every row of `batch`.
pub fn derive_batch(batch: &RecordBatch, derived: &DerivedSpec) -> Result<Vec<Option<f64>>> {
    let inputs: Vec<(&str, Vec<Option<f64>>)> = derived
        .expr
        .columns()
        .into_iter()
        .map(|name| {
            let array = batch.column_by_name(name).ok_or_else(|| {
                Error::usage(format!(
                    "derived column `{}`: input column `{name}` is missing",
                    derived.name
                ))
            })?;
            let values = numeric_values(array.as_ref());
            if values.len() != batch.num_rows() {
                return Err(Error::usage(format!(
                    "derived column `{}`: input column `{name}` has type {}, expected int or float",
                    derived.name,
                    array.data_type()
                )));
            }
            Ok((name, values))
        })
        .collect::<Result<_>>()?;
    Ok((0..batch.num_rows())
        .map(|row| eval_row(&derived.expr, &inputs, row))
        .collect())
}

fn eval_row(expr: &Expr, inputs: &[(&str, Vec<Option<f64>>)], row: usize) -> Option<f64> {
    expr.eval(&|name| {
        inputs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, values)| values[row])
    })
}
