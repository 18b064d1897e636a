//! The prediction log: served rows, their outputs, the model version, the request id
//! and the time, as Parquet files in the object store (what KServe's InferenceLogger
//! gives its users, in a form offline drift and feedback jobs read directly).
//!
//! Off the request path: scoring threads hand records to a bounded buffer; one task
//! gathers them and writes a file every `batch_rows` rows or `flush_interval`, whichever
//! comes first, encoding on the blocking pool. A full buffer or a failed write drops
//! records, and every dropped row is counted in `kiln_prediction_log_rows_total{outcome="dropped"}`:
//! never silently lost. On shutdown the buffer is drained and written.
//!
//! Files: `<uri>/date=YYYY-MM-DD/<model>-<version>-<unix ms>-<seq>.parquet`, each
//! complete or absent (the store's writes are atomic).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use kiln_core::store::ArtifactStore;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::model::Scored;

/// Prediction-log settings.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Folder or URI the files go under.
    pub uri: String,
    /// Rows per file (at most).
    pub batch_rows: usize,
    /// Longest a row waits before its file is written.
    pub flush_interval: Duration,
    /// Records (one per request) the buffer holds before new ones are dropped.
    pub buffer_records: usize,
}

/// One served request.
pub struct LogRecord {
    pub rows: RecordBatch,
    pub scored: Scored,
    pub request_id: String,
    pub protocol: &'static str,
    pub served_at: DateTime<Utc>,
}

/// The sending side, used by the scoring threads.
#[derive(Clone)]
pub struct LogSender {
    tx: mpsc::Sender<LogRecord>,
    metrics: Arc<Metrics>,
}

impl LogSender {
    /// Hands a record to the writer; counts it as dropped when the buffer is full.
    pub fn send(&self, record: LogRecord) {
        let rows = record.rows.num_rows() as u64;
        if self.tx.try_send(record).is_err() {
            self.metrics
                .log_rows
                .with_label_values(&["dropped"])
                .inc_by(rows);
        }
    }
}

/// The writer task's handle. [`LogWriter::finish`] closes the buffer and writes what it
/// holds, whether or not every [`LogSender`] is gone.
pub struct LogWriter {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl LogWriter {
    /// Closes the buffer (a record sent after this is counted as dropped, never lost
    /// unseen), writes every record it already holds, and ends the writer. What a failed
    /// write could not keep is counted as dropped too.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts the writer. `inputs` is the schema of the served rows.
pub fn start(
    options: LogOptions,
    inputs: SchemaRef,
    model_name: String,
    model_version: String,
    metrics: Arc<Metrics>,
) -> kiln_core::Result<(LogSender, LogWriter)> {
    let store = ArtifactStore::open(&options.uri)?;
    let (tx, rx) = mpsc::channel(options.buffer_records.max(1));
    let sender = LogSender {
        tx,
        metrics: metrics.clone(),
    };
    let writer = Writer {
        store,
        schema: log_schema(&inputs),
        options,
        model_name,
        model_version,
        metrics,
        seq: 0,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(writer.run(rx, stopped));
    Ok((sender, LogWriter { task, stop }))
}

/// The columns of a log file: request metadata, the served inputs, the outputs.
fn log_schema(inputs: &SchemaRef) -> SchemaRef {
    let mut fields = vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new(
            "served_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("model_name", DataType::Utf8, false),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("protocol", DataType::Utf8, false),
    ];
    fields.extend(inputs.fields().iter().map(|f| f.as_ref().clone()));
    fields.push(Field::new("probability", DataType::Float32, false));
    fields.push(Field::new("label", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

struct Writer {
    store: ArtifactStore,
    schema: SchemaRef,
    options: LogOptions,
    model_name: String,
    model_version: String,
    metrics: Arc<Metrics>,
    seq: u64,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<LogRecord>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut pending: Vec<LogRecord> = Vec::new();
        let mut rows = 0usize;
        let mut tick = tokio::time::interval(self.options.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            tokio::select! {
                // Shutdown: refuse new records (their senders count them as dropped),
                // then take the ones already buffered; `recv` ends after the last.
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    rx.close();
                }
                record = rx.recv() => match record {
                    Some(record) => {
                        rows += record.rows.num_rows();
                        pending.push(record);
                        if rows >= self.options.batch_rows {
                            self.flush(std::mem::take(&mut pending)).await;
                            rows = 0;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if !pending.is_empty() {
                        self.flush(std::mem::take(&mut pending)).await;
                        rows = 0;
                    }
                }
            }
        }
        if !pending.is_empty() {
            self.flush(pending).await;
        }
    }

    async fn flush(&mut self, records: Vec<LogRecord>) {
        let rows: u64 = records.iter().map(|r| r.rows.num_rows() as u64).sum();
        let schema = self.schema.clone();
        let (name, version) = (self.model_name.clone(), self.model_version.clone());
        let encoded =
            tokio::task::spawn_blocking(move || encode(&schema, &records, &name, &version)).await;
        let now = Utc::now();
        self.seq += 1;
        let path = format!(
            "date={}/{}-{}-{}-{:06}.parquet",
            now.format("%Y-%m-%d"),
            self.model_name,
            self.model_version,
            now.timestamp_millis(),
            self.seq
        );
        let result = match encoded {
            Ok(Ok(bytes)) => self
                .store
                .put(&path, bytes)
                .await
                .map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("encoding task failed: {e}")),
        };
        match result {
            Ok(_) => {
                self.metrics
                    .log_rows
                    .with_label_values(&["written"])
                    .inc_by(rows);
                tracing::debug!(rows, path = %self.store.uri_of(&path), "prediction log written");
            }
            Err(e) => {
                self.metrics
                    .log_rows
                    .with_label_values(&["dropped"])
                    .inc_by(rows);
                tracing::error!(rows, error = %e, path = %self.store.uri_of(&path), "prediction log write failed; rows dropped");
            }
        }
    }
}

fn encode(
    schema: &SchemaRef,
    records: &[LogRecord],
    model_name: &str,
    model_version: &str,
) -> Result<Bytes, String> {
    let mut batches = Vec::with_capacity(records.len());
    for record in records {
        let n = record.rows.num_rows();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![record.request_id.as_str(); n])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![record.served_at.timestamp_micros(); n])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![model_name; n])),
            Arc::new(StringArray::from(vec![model_version; n])),
            Arc::new(StringArray::from(vec![record.protocol; n])),
        ];
        columns.extend(record.rows.columns().iter().cloned());
        columns.push(Arc::new(Float32Array::from(
            record.scored.probabilities.clone(),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            record.scored.labels.iter().map(|&l| i64::from(l)),
        )));
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?);
    }
    let mut writer = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)
        .map_err(|e| e.to_string())?;
    for batch in &batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}
