//! The prediction log: served rows, their outputs, the model version, the request id
//! and the time, as Parquet files in the object store (what KServe's InferenceLogger
//! gives its users, in a form offline drift and feedback jobs read directly).
//!
//! Off the request path: scoring threads hand records to a buffer bounded in bytes
//! (`buffer_bytes`: the records' Arrow memory); one task gathers them and writes a file
//! every `batch_rows` rows or `flush_interval`, whichever comes first, encoding on the
//! blocking pool. Nothing is lost while the process lives:
//!
//! - a write that fails is retried with backoff; if the store is still unreachable the
//!   encoded file is **spilled** to a local folder (`spill_dir`) and re-sent, oldest
//!   first, once the store answers again (files spilled by an earlier process are
//!   re-sent too);
//! - only a full buffer, or a spill the local disk refuses, drops rows, and every dropped
//!   row is counted (`kiln_prediction_log_rows_total{outcome="dropped"}`).
//!
//! On shutdown the buffer is drained and written (or spilled).
//!
//! Files: `<uri>/date=YYYY-MM-DD/<model>-<version>-<first served ms>-<seq>.parquet`,
//! partitioned by the rows' `served_at` (UTC), each complete or absent (the store's
//! writes are atomic).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Bytes of records the buffer holds before new ones are dropped (and counted).
    pub buffer_bytes: usize,
    /// Where files wait while the store is unreachable.
    pub spill_dir: PathBuf,
}

/// One served request.
pub struct LogRecord {
    pub rows: RecordBatch,
    pub scored: Scored,
    pub request_id: String,
    pub protocol: &'static str,
    pub served_at: DateTime<Utc>,
}

impl LogRecord {
    /// What the record holds in memory, near enough for the buffer's bound.
    fn bytes(&self) -> usize {
        self.rows.get_array_memory_size()
            + self.scored.probabilities.len() * 5
            + self.request_id.len()
            + 64
    }
}

/// Bytes held by records between the scoring threads and the writer.
struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= self.limit).then_some(used + bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The sending side, used by the scoring threads.
#[derive(Clone)]
pub struct LogSender {
    tx: mpsc::UnboundedSender<(LogRecord, usize)>,
    budget: Arc<Budget>,
    metrics: Arc<Metrics>,
}

impl LogSender {
    /// Hands a record to the writer; counts it as dropped when the buffer is full.
    pub fn send(&self, record: LogRecord) {
        let rows = record.rows.num_rows() as u64;
        let bytes = record.bytes();
        let sent = self.budget.reserve(bytes)
            && match self.tx.send((record, bytes)) {
                Ok(()) => true,
                Err(_) => {
                    self.budget.release(bytes);
                    false
                }
            };
        if !sent {
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
    /// unseen), writes every record it already holds, and ends the writer. What the
    /// store would not take is spilled (and stays for the next process to re-send).
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
    std::fs::create_dir_all(&options.spill_dir).map_err(|e| {
        kiln_core::Error::usage(format!(
            "{}: cannot create the prediction log's spill folder (--log-spill-dir): {e}",
            options.spill_dir.display()
        ))
    })?;
    let spilled = spilled_files(&options.spill_dir);
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Budget {
        used: AtomicUsize::new(0),
        limit: options.buffer_bytes.max(1),
    });
    let sender = LogSender {
        tx,
        budget: budget.clone(),
        metrics: metrics.clone(),
    };
    let writer = Writer {
        store,
        schema: log_schema(&inputs),
        options,
        model_name,
        model_version,
        metrics,
        budget,
        seq: 0,
        spilled,
        resend_at: tokio::time::Instant::now(),
        resend_backoff: Duration::ZERO,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(writer.run(rx, stopped));
    Ok((sender, LogWriter { task, stop }))
}

/// Files an earlier process spilled, oldest first (their names sort by time).
fn spilled_files(dir: &std::path::Path) -> VecDeque<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet")
                && let Ok(rel) = path.strip_prefix(dir)
            {
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort_by(|a, b| file_name(a).cmp(file_name(b)).then(a.cmp(b)));
    if !found.is_empty() {
        tracing::warn!(files = found.len(), dir = %dir.display(), "prediction-log files spilled earlier: re-sending");
    }
    found.into()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
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

/// Waits between the attempts of one write before it is spilled.
const RETRY_WAITS: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1000)];
/// Longest one write may take (the store client's own retries included) before it
/// counts as failed: an outage must not stall the log for the client's whole budget.
const PUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two attempts to re-send spilled files while the store is down.
const RESEND_BACKOFF_MAX: Duration = Duration::from_secs(30);

struct Writer {
    store: ArtifactStore,
    schema: SchemaRef,
    options: LogOptions,
    model_name: String,
    model_version: String,
    metrics: Arc<Metrics>,
    budget: Arc<Budget>,
    seq: u64,
    /// Spilled files waiting to be re-sent (paths relative to the spill folder and the
    /// log's root alike), oldest first.
    spilled: VecDeque<String>,
    /// When the next re-send may be tried, and the wait after a refusal.
    resend_at: tokio::time::Instant,
    resend_backoff: Duration,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<(LogRecord, usize)>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut pending: Vec<(LogRecord, usize)> = Vec::new();
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
                        rows += record.0.rows.num_rows();
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
                    if tokio::time::Instant::now() >= self.resend_at {
                        self.resend().await;
                    }
                }
            }
        }
        if !pending.is_empty() {
            self.flush(pending).await;
        }
        self.resend().await;
        if !self.spilled.is_empty() {
            tracing::warn!(
                files = self.spilled.len(),
                dir = %self.options.spill_dir.display(),
                "prediction-log files still spilled at exit: the next process re-sends them"
            );
        }
    }

    /// Encodes the records into one file per `served_at` date and delivers each.
    async fn flush(&mut self, records: Vec<(LogRecord, usize)>) {
        let held: usize = records.iter().map(|r| r.1).sum();
        let mut by_date: BTreeMap<String, Vec<LogRecord>> = BTreeMap::new();
        for (record, _) in records {
            let date = record.served_at.format("%Y-%m-%d").to_string();
            by_date.entry(date).or_default().push(record);
        }
        for (date, records) in by_date {
            let rows: u64 = records.iter().map(|r| r.rows.num_rows() as u64).sum();
            let first = records
                .iter()
                .map(|r| r.served_at.timestamp_millis())
                .min()
                .unwrap_or_default();
            self.seq += 1;
            let path = format!(
                "date={date}/{}-{}-{first}-{:06}.parquet",
                self.model_name, self.model_version, self.seq
            );
            let schema = self.schema.clone();
            let (name, version) = (self.model_name.clone(), self.model_version.clone());
            let encoded =
                tokio::task::spawn_blocking(move || encode(&schema, &records, &name, &version))
                    .await
                    .map_err(|e| format!("encoding task failed: {e}"))
                    .and_then(|r| r);
            match encoded {
                Ok(bytes) => self.deliver(path, bytes, rows).await,
                Err(e) => {
                    self.count("dropped", rows);
                    tracing::error!(rows, error = %e, "prediction log could not be encoded; rows dropped");
                }
            }
        }
        self.budget.release(held);
    }

    async fn put(&self, path: &str, bytes: Bytes) -> Result<(), String> {
        match tokio::time::timeout(PUT_TIMEOUT, self.store.put(path, bytes)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", PUT_TIMEOUT.as_secs())),
        }
    }

    fn count(&self, outcome: &str, rows: u64) {
        self.metrics
            .log_rows
            .with_label_values(&[outcome])
            .inc_by(rows);
    }

    /// Writes a file, retrying with backoff; spills it when the store stays unreachable.
    /// Files wait behind earlier spilled ones, so the log arrives in order.
    async fn deliver(&mut self, path: String, bytes: Bytes, rows: u64) {
        if self.spilled.is_empty() {
            let mut error = String::new();
            for attempt in 0..=RETRY_WAITS.len() {
                if attempt > 0 {
                    tokio::time::sleep(RETRY_WAITS[attempt - 1]).await;
                }
                match self.put(&path, bytes.clone()).await {
                    Ok(()) => {
                        self.count("written", rows);
                        tracing::debug!(rows, path = %self.store.uri_of(&path), "prediction log written");
                        return;
                    }
                    Err(e) => error = e,
                }
            }
            tracing::warn!(rows, error = %error, path = %self.store.uri_of(&path), "prediction log write failed after retries; spilling to local disk");
        }
        let local = self.options.spill_dir.join(&path);
        let written = match local.parent() {
            Some(parent) => tokio::fs::create_dir_all(parent).await,
            None => Ok(()),
        };
        let tmp = local.with_extension("parquet.partial");
        let written = match written {
            Ok(()) => match tokio::fs::write(&tmp, &bytes).await {
                Ok(()) => tokio::fs::rename(&tmp, &local).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.count("spilled", rows);
                self.spilled.push_back(path);
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                self.count("dropped", rows);
                tracing::error!(rows, error = %e, path = %local.display(), "prediction log could not be spilled; rows dropped");
            }
        }
    }

    /// Re-sends spilled files, oldest first, until the store refuses one.
    async fn resend(&mut self) {
        while let Some(path) = self.spilled.front().cloned() {
            let local = self.options.spill_dir.join(&path);
            let bytes = match tokio::fs::read(&local).await {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    tracing::error!(error = %e, path = %local.display(), "a spilled prediction-log file vanished");
                    self.spilled.pop_front();
                    continue;
                }
            };
            let rows = parquet_rows(&bytes);
            match self.put(&path, bytes).await {
                Ok(()) => {
                    let _ = tokio::fs::remove_file(&local).await;
                    self.spilled.pop_front();
                    self.count("resent", rows);
                    self.resend_backoff = Duration::ZERO;
                    tracing::info!(rows, path = %self.store.uri_of(&path), "spilled prediction log re-sent");
                }
                Err(e) => {
                    self.resend_backoff = (self.resend_backoff * 2)
                        .max(self.options.flush_interval)
                        .min(RESEND_BACKOFF_MAX);
                    self.resend_at = tokio::time::Instant::now() + self.resend_backoff;
                    tracing::debug!(error = %e, retry_in_s = self.resend_backoff.as_secs_f64(), "the store still refuses the prediction log");
                    return;
                }
            }
        }
    }
}

/// The row count in a Parquet file's footer (0 if it cannot be read).
fn parquet_rows(bytes: &Bytes) -> u64 {
    use parquet::file::reader::FileReader;
    parquet::file::reader::SerializedFileReader::new(bytes.clone())
        .map(|r| r.metadata().file_metadata().num_rows().max(0) as u64)
        .unwrap_or(0)
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
