//! Features a request does not carry (`transform.lookup`): an entity's history
//! aggregates come from a feature table keyed by the entity, not from the request.
//!
//! The table is a Parquet file (prepare's `features.parquet`, or any job's output with
//! the key and the looked-up columns), local or on S3 through Kiln's object store. The
//! server loads it whole into memory (an index from key to row and one typed array per
//! column), checks its version every `--feature-refresh` seconds without reading it
//! (the store's ETag, else size and modification time), and swaps in a new version
//! once it has been read and checked in full: a request sees one version or the other,
//! never a mix, and a broken new file leaves the old one serving.
//!
//! A request gives the key (and the request-time columns); a looked-up column it leaves
//! out is taken from the key's row. A column it does give is used as given (a backfill,
//! a what-if). A key the table does not have gives missing values, which the transform
//! imputes as it imputed them in training, and counts as a miss in
//! `kiln_feature_lookups_total{result="miss"}`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use bytes::Bytes;
use kiln_core::spec::LookupSpec;
use kiln_core::store::ObjectRef;
use kiln_core::{Error, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::ServeError;
use crate::metrics::Metrics;

/// The key's values, indexed to their row in the table.
enum KeyIndex {
    Int(HashMap<i64, u32>),
    Text(HashMap<Box<str>, u32>),
}

/// One loaded version of the feature table.
pub struct FeatureTable {
    /// The store's version of the file this was read from.
    pub version: String,
    pub rows: usize,
    index: KeyIndex,
    /// One array per looked-up column (in [`LookupSpec::columns`] order), already of
    /// the type the request's column has.
    columns: Vec<ArrayRef>,
}

impl FeatureTable {
    /// Reads and checks a whole table: the key and every looked-up column present and
    /// castable to the request's types, one row per key.
    fn read(
        bytes: Bytes,
        version: String,
        uri: &str,
        lookup: &LookupSpec,
        key_type: &DataType,
        types: &[DataType],
    ) -> Result<FeatureTable> {
        let bad = |message: String| Error::usage(format!("feature table {uri}: {message}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(65_536).build())
            .map_err(|e| bad(format!("not a Parquet file: {e}")))?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let table = concat_batches(&schema, &batches).map_err(|e| bad(e.to_string()))?;
        let column = |name: &str, to: &DataType| -> Result<ArrayRef> {
            let array = table.column_by_name(name).ok_or_else(|| {
                bad(format!(
                    "no column `{name}` (the model looks up {} by `{}`)",
                    lookup.columns.join(", "),
                    lookup.key
                ))
            })?;
            cast(array, to).map_err(|e| {
                bad(format!(
                    "column `{name}`: cannot read {} as {to}: {e}",
                    array.data_type()
                ))
            })
        };
        let keys = column(&lookup.key, key_type)?;
        let rows = table.num_rows();
        if rows > u32::MAX as usize {
            return Err(bad(format!("{rows} rows is more than one server holds")));
        }
        let duplicate = |shown: String| bad(format!("key {shown} is on more than one row"));
        let index = match key_type {
            DataType::Int64 => {
                let keys = keys.as_primitive::<Int64Type>();
                let mut index = HashMap::with_capacity(rows);
                for (row, key) in keys.iter().enumerate() {
                    if let Some(key) = key
                        && index.insert(key, row as u32).is_some()
                    {
                        return Err(duplicate(key.to_string()));
                    }
                }
                KeyIndex::Int(index)
            }
            _ => {
                let keys = keys.as_string::<i32>();
                let mut index = HashMap::with_capacity(rows);
                for (row, key) in keys.iter().enumerate() {
                    if let Some(key) = key
                        && index.insert(Box::from(key), row as u32).is_some()
                    {
                        return Err(duplicate(format!("{key:?}")));
                    }
                }
                KeyIndex::Text(index)
            }
        };
        let columns = lookup
            .columns
            .iter()
            .zip(types)
            .map(|(name, to)| column(name, to))
            .collect::<Result<Vec<_>>>()?;
        Ok(FeatureTable {
            version,
            rows,
            index,
            columns,
        })
    }

    /// The table's row for each request key (null where the key is null or unknown),
    /// and how many keys were found.
    fn rows_of(&self, keys: &dyn Array) -> (UInt32Array, usize) {
        let rows: UInt32Array = match (&self.index, keys.data_type()) {
            (KeyIndex::Int(index), DataType::Int64) => keys
                .as_primitive::<Int64Type>()
                .iter()
                .map(|k| k.and_then(|k| index.get(&k).copied()))
                .collect(),
            (KeyIndex::Text(index), DataType::Utf8) => keys
                .as_string::<i32>()
                .iter()
                .map(|k| k.and_then(|k| index.get(k).copied()))
                .collect(),
            _ => std::iter::repeat_n(None, keys.len()).collect(),
        };
        let found = rows.len() - rows.null_count();
        (rows, found)
    }
}

/// The served feature table: the current version, and where it comes from.
pub struct FeatureStore {
    object: ObjectRef,
    lookup: LookupSpec,
    key_type: DataType,
    types: Vec<DataType>,
    current: RwLock<Arc<FeatureTable>>,
    metrics: OnceLock<Arc<Metrics>>,
}

impl std::fmt::Debug for FeatureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureStore")
            .field("uri", &self.object.uri())
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

impl FeatureStore {
    /// Loads the table for a model whose key and looked-up columns have these request
    /// types; a table that does not fit is a usage error naming the file and column.
    pub async fn open(
        uri: &str,
        lookup: LookupSpec,
        key_type: DataType,
        types: Vec<DataType>,
    ) -> Result<FeatureStore> {
        let object = ObjectRef::parse(uri)?;
        let version = object.version().await?;
        let table = read_table(&object, version, &lookup, &key_type, &types).await?;
        tracing::info!(uri, rows = table.rows, version = %table.version, "feature table loaded");
        Ok(FeatureStore {
            object,
            lookup,
            key_type,
            types,
            current: RwLock::new(Arc::new(table)),
            metrics: OnceLock::new(),
        })
    }

    /// The version requests are served from now.
    pub fn table(&self) -> Arc<FeatureTable> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Where the server's counters go (set once, when the server starts).
    pub fn attach(&self, metrics: Arc<Metrics>) {
        let table = self.table();
        metrics.feature_table_rows.set(table.rows as i64);
        metrics
            .feature_table_loaded
            .set(chrono::Utc::now().timestamp() as f64);
        let _ = self.metrics.set(metrics);
    }

    /// Reads the table again if its version changed; `Ok(true)` when a new one serves.
    pub async fn refresh(&self) -> Result<bool> {
        let version = self.object.version().await?;
        if version == self.table().version {
            return Ok(false);
        }
        let table = read_table(
            &self.object,
            version,
            &self.lookup,
            &self.key_type,
            &self.types,
        )
        .await?;
        tracing::info!(uri = self.object.uri(), rows = table.rows, version = %table.version, "feature table refreshed");
        if let Some(metrics) = self.metrics.get() {
            metrics.feature_table_rows.set(table.rows as i64);
            metrics
                .feature_table_loaded
                .set(chrono::Utc::now().timestamp() as f64);
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(true)
    }

    /// Checks for a new version every `every` until the task is dropped; a failed
    /// refresh is logged and counted, and the loaded version keeps serving.
    pub async fn refresh_every(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(uri = self.object.uri(), error = %e, "feature table refresh failed; the loaded version keeps serving");
                if let Some(metrics) = self.metrics.get() {
                    metrics.feature_table_refresh_errors.inc();
                }
            }
        }
    }

    fn count(&self, found: usize, missed: usize) {
        if let Some(metrics) = self.metrics.get() {
            let lookups = &metrics.feature_lookups;
            lookups.with_label_values(&["hit"]).inc_by(found as u64);
            lookups.with_label_values(&["miss"]).inc_by(missed as u64);
        }
    }
}

/// Downloads (async) and decodes (on a blocking thread) one version of the table.
async fn read_table(
    object: &ObjectRef,
    version: String,
    lookup: &LookupSpec,
    key_type: &DataType,
    types: &[DataType],
) -> Result<FeatureTable> {
    let bytes = object.get().await?;
    let (uri, lookup, key_type, types) = (
        object.uri().to_string(),
        lookup.clone(),
        key_type.clone(),
        types.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        FeatureTable::read(bytes, version, &uri, &lookup, &key_type, &types)
    })
    .await
    .map_err(|e| Error::Invalid(format!("reading the feature table: {e}")))?
}

/// The model's lookup as the request decoder sees it: which input columns are the key
/// and the looked-up ones, and the table (none when the server was given none).
#[derive(Debug, Clone)]
pub struct Lookup {
    pub key: usize,
    /// Input column indices, in [`LookupSpec::columns`] order.
    pub columns: Vec<usize>,
    pub key_name: String,
    pub store: Option<Arc<FeatureStore>>,
}

impl Lookup {
    /// Whether input column `index` may be left out of a request.
    pub fn is_looked_up(&self, index: usize) -> bool {
        self.columns.contains(&index)
    }

    /// Why a request cannot leave `column` out.
    pub fn no_table(&self, column: &str) -> ServeError {
        ServeError::bad(format!(
            "missing column `{column}`: it is looked up by `{}` in a feature table, and this server has none (--feature-table); send its value",
            self.key_name
        ))
    }

    /// Fills the rows a request left out (`absent[i][row]` for the i-th looked-up
    /// column) from the key's row of the table.
    pub fn fill(
        &self,
        batch: RecordBatch,
        absent: &[(usize, Vec<bool>)],
    ) -> std::result::Result<RecordBatch, ServeError> {
        if !absent.iter().any(|(_, rows)| rows.contains(&true)) {
            return Ok(batch);
        }
        let Some(store) = &self.store else {
            let (index, _) = absent
                .iter()
                .find(|(_, rows)| rows.contains(&true))
                .expect("checked above");
            return Err(self.no_table(batch.schema().field(*index).name()));
        };
        let table = store.table();
        let (rows, found) = table.rows_of(batch.column(self.key).as_ref());
        store.count(found, rows.len() - found);
        let mut columns = batch.columns().to_vec();
        for (index, left_out) in absent {
            if !left_out.contains(&true) {
                continue;
            }
            let position = self
                .columns
                .iter()
                .position(|c| c == index)
                .expect("only looked-up columns may be absent");
            let internal =
                |e: arrow::error::ArrowError| ServeError::Internal(format!("feature lookup: {e}"));
            let looked_up =
                take(table.columns[position].as_ref(), &rows, None).map_err(internal)?;
            let mask = BooleanArray::from(left_out.clone());
            columns[*index] = zip(&mask, &looked_up, &columns[*index]).map_err(internal)?;
        }
        RecordBatch::try_new(batch.schema(), columns)
            .map_err(|e| ServeError::Internal(format!("feature lookup: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    fn parquet(batch: &RecordBatch) -> Bytes {
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        Bytes::from(out)
    }

    fn lookup() -> LookupSpec {
        LookupSpec {
            key: "id".into(),
            columns: vec!["count".into()],
        }
    }

    fn table(ids: Vec<i64>, counts: Vec<Option<i64>>) -> Result<FeatureTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("count", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int64Array::from(counts)),
            ],
        )
        .unwrap();
        FeatureTable::read(
            parquet(&batch),
            "v1".into(),
            "features.parquet",
            &lookup(),
            &DataType::Int64,
            &[DataType::Float64],
        )
    }

    #[test]
    fn left_out_values_come_from_the_keys_row_and_given_ones_stay() {
        let table = table(vec![7, 3], vec![Some(70), None]).unwrap();
        let store = FeatureStore {
            object: ObjectRef::parse("memory://t/features.parquet").unwrap(),
            lookup: lookup(),
            key_type: DataType::Int64,
            types: vec![DataType::Float64],
            current: RwLock::new(Arc::new(table)),
            metrics: OnceLock::new(),
        };
        let lookup = Lookup {
            key: 0,
            columns: vec![1],
            key_name: "id".into(),
            store: Some(Arc::new(store)),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("count", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(3),
                    Some(7),
                    Some(9),
                    None,
                    Some(7),
                ])),
                Arc::new(Float64Array::from(vec![None, None, None, None, Some(1.5)])),
            ],
        )
        .unwrap();
        let absent = vec![(1, vec![true, true, true, true, false])];
        let filled = lookup.fill(batch, &absent).unwrap();
        let counts: Vec<Option<f64>> = filled
            .column(1)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .collect();
        // 3 → its row's null; 7 → 70; 9 unknown and a null key → missing; given 1.5 stays.
        assert_eq!(counts, vec![None, Some(70.0), None, None, Some(1.5)]);
    }

    #[test]
    fn a_table_that_does_not_fit_is_refused_with_its_file_and_column() {
        let err = table(vec![1, 1], vec![Some(1), Some(2)])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("features.parquet: key 1 is on more than one row"),
            "{err}"
        );
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
        let err = FeatureTable::read(
            parquet(&batch),
            "v".into(),
            "f.parquet",
            &lookup(),
            &DataType::Utf8,
            &[DataType::Float64],
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("f.parquet: no column `count`"), "{err}");
        let err = FeatureTable::read(
            Bytes::from_static(b"nope"),
            "v".into(),
            "f.parquet",
            &lookup(),
            &DataType::Int64,
            &[DataType::Float64],
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("f.parquet: not a Parquet file"), "{err}");
    }
}
