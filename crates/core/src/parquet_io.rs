//! Streaming Parquet I/O over the artifact store.
//!
//! [`ParquetSink`] writes record batches as they come through a multipart upload that
//! becomes visible only on [`ParquetSink::finish`], hashing the bytes on the way, so a
//! written file's sha256 costs no second read. [`read_parquet`] streams batches back.

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::buffered::BufWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{AsyncArrowWriter, ParquetRecordBatchStreamBuilder};
use parquet::basic::Compression;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::ops::Range;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::store::{ContentHash, Hasher, ObjectRef};

/// Part size of a streamed upload: S3's smallest part. With at most 10,000 parts an
/// upload holds up to 48.8 GiB (Adult's 32 M-row train split is 0.5 GB).
pub const UPLOAD_PART_BYTES: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once. With the part being filled, a file being
/// written holds at most `(1 + UPLOAD_PARTS_IN_FLIGHT) * UPLOAD_PART_BYTES` (15 MiB)
/// however slow the store is; object_store's defaults (10 MiB parts, 8 in flight)
/// allow 90 MiB per file, which a slow disk or link fills.
pub const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// An upload that hashes every byte it writes.
struct HashingUpload {
    inner: BufWriter,
    hasher: Hasher,
}

impl AsyncFileWriter for HashingUpload {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.hasher.update(&bs);
        Box::pin(async move {
            self.inner
                .write_all(&bs)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            self.inner
                .shutdown()
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}

/// What a finished Parquet file holds.
#[derive(Debug, Clone)]
pub struct WrittenParquet {
    pub hash: ContentHash,
    pub rows: u64,
}

/// A Parquet file being written batch by batch. Nothing is visible at its path until
/// [`finish`](Self::finish) succeeds; dropping or [`abort`](Self::abort)ing it leaves nothing.
pub struct ParquetSink {
    writer: AsyncArrowWriter<HashingUpload>,
    uri: String,
    rows: u64,
}

impl ParquetSink {
    /// Starts a Parquet file at `target` with the given schema (snappy, 64k-row groups).
    pub fn create(target: &ObjectRef, schema: SchemaRef) -> Result<Self> {
        let (store, path) = target.parts();
        let upload = HashingUpload {
            inner: BufWriter::with_capacity(store, path, UPLOAD_PART_BYTES)
                .with_max_concurrency(UPLOAD_PARTS_IN_FLIGHT),
            hasher: Hasher::default(),
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(65_536))
            .set_created_by(format!("kiln {}", env!("CARGO_PKG_VERSION")))
            // Min/max per column chunk (row-group pruning), not per page: the page index
            // is kept in memory for every row group until the footer is written, so it
            // would grow with the rows (roughly 15 MiB at 32 M rows; docs/benchmarks.md).
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        let writer =
            AsyncArrowWriter::try_new(upload, schema, Some(props)).map_err(|e| Error::Parquet {
                uri: target.uri().to_string(),
                source: e,
            })?;
        Ok(ParquetSink {
            writer,
            uri: target.uri().to_string(),
            rows: 0,
        })
    }

    /// Appends a batch.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        let uri = &self.uri;
        self.writer.write(batch).await.map_err(|e| Error::Parquet {
            uri: uri.clone(),
            source: e,
        })
    }

    /// Writes the footer and completes the upload; returns the file's hash and row count.
    pub async fn finish(mut self) -> Result<WrittenParquet> {
        let uri = self.uri.clone();
        self.writer.finish().await.map_err(|e| Error::Parquet {
            uri: uri.clone(),
            source: e,
        })?;
        let upload = self.writer.into_inner();
        Ok(WrittenParquet {
            hash: upload.hasher.finish(),
            rows: self.rows,
        })
    }

    /// Abandons the file; the store keeps nothing at its path.
    pub async fn abort(self) {
        let mut upload = self.writer.into_inner();
        if let Err(e) = upload.inner.abort().await {
            tracing::warn!(uri = %self.uri, error = %e, "could not abort upload");
        }
    }
}

/// Reads byte ranges of a Parquet object through the store (size known up front, so
/// the footer is one ranged read).
///
/// This is parquet's own reader pattern: `parquet::arrow::async_reader::ParquetObjectReader`
/// is deprecated since parquet 59.2 in favour of implementing [`AsyncFileReader`] over
/// the store directly (apache/arrow-rs#10308), which is what this does; it also keeps a
/// failed read of the store as the store's error, so its exit code survives.
struct StoreFileReader {
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
}

fn external(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreFileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            use object_store::ObjectStoreExt;
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

/// Streams the record batches of a Parquet object.
pub async fn read_parquet(
    source: &ObjectRef,
    batch_rows: usize,
) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch>>)> {
    open_parquet(source, batch_rows, false).await
}

/// Like [`read_parquet`], but text columns come as `Dictionary(Int32, Utf8)` arrays:
/// Parquet's own dictionary pages are kept instead of materialising every string, so
/// a consumer can work once per distinct value. The returned schema is the file's
/// (text columns stay `Utf8` there).
pub async fn read_parquet_dictionary(
    source: &ObjectRef,
    batch_rows: usize,
) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch>>)> {
    open_parquet(source, batch_rows, true).await
}

async fn open_parquet(
    source: &ObjectRef,
    batch_rows: usize,
    dictionary: bool,
) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch>>)> {
    let (store, path) = source.parts();
    let uri = source.uri().to_string();
    // A failed read of the store keeps its error (and exit code); anything else the
    // decoder says means the file is not the Parquet a step wrote.
    let parquet_error = {
        let uri = uri.clone();
        move |e: parquet::errors::ParquetError| match e {
            parquet::errors::ParquetError::External(_) => Error::Parquet {
                uri: uri.clone(),
                source: e,
            },
            other => Error::Corrupt {
                uri: uri.clone(),
                message: other.to_string(),
            },
        }
    };
    // Ask the store first so that a missing file is "not found", not a Parquet error.
    let size = source.size().await?;
    let reader = StoreFileReader {
        store: store.clone(),
        path: path.clone(),
        size,
    };
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(&parquet_error)?;
    let schema = builder.schema().clone();
    let as_dictionary = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8);
    if dictionary && schema.fields().iter().any(|f| as_dictionary(f.data_type())) {
        let hinted = Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(|f| {
                    if as_dictionary(f.data_type()) {
                        let t = DataType::Dictionary(
                            Box::new(DataType::Int32),
                            Box::new(f.data_type().clone()),
                        );
                        Arc::new(f.as_ref().clone().with_data_type(t))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        );
        let metadata = ArrowReaderMetadata::try_new(
            builder.metadata().clone(),
            ArrowReaderOptions::new().with_schema(Arc::new(hinted)),
        )
        .map_err(&parquet_error)?;
        let reader = StoreFileReader { store, path, size };
        builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata);
    }
    let stream = builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(&parquet_error)?
        .map_err(parquet_error)
        .boxed();
    Ok((schema, stream))
}

/// Reads a whole Parquet object into memory (for small tables and tests).
pub async fn read_parquet_all(source: &ObjectRef) -> Result<Vec<RecordBatch>> {
    let (_, stream) = read_parquet(source, 65_536).await?;
    stream.try_collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArtifactStore;
    use arrow::array::{ArrayRef, Int64Array};

    #[tokio::test]
    async fn write_hash_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_str().unwrap()).unwrap();
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef,
        )])
        .unwrap();
        let target = store.object("t/out.parquet");
        let mut sink = ParquetSink::create(&target, batch.schema()).unwrap();
        sink.write(&batch).await.unwrap();
        sink.write(&batch).await.unwrap();
        // Not visible before finish.
        assert!(!target.exists().await.unwrap());
        let written = sink.finish().await.unwrap();
        assert_eq!(written.rows, 2000);
        assert_eq!(target.hash().await.unwrap(), written.hash);
        let back = read_parquet_all(&target).await.unwrap();
        assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 2000);
    }

    #[tokio::test]
    async fn text_reads_back_as_a_dictionary_with_the_file_schema() {
        use arrow::array::{AsArray, StringArray};
        use arrow::datatypes::Int32Type;
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_str().unwrap()).unwrap();
        let words = ["a", "bb", "a", "ccc"];
        let text: StringArray = (0..5000)
            .map(|i| (i % 7 != 0).then(|| words[i % 4]))
            .collect();
        let batch = RecordBatch::try_from_iter([
            ("s", Arc::new(text.clone()) as ArrayRef),
            (
                "n",
                Arc::new(Int64Array::from_iter_values(0..5000)) as ArrayRef,
            ),
        ])
        .unwrap();
        let target = store.object("t/text.parquet");
        let mut sink = ParquetSink::create(&target, batch.schema()).unwrap();
        sink.write(&batch).await.unwrap();
        sink.finish().await.unwrap();
        let (schema, stream) = read_parquet_dictionary(&target, 1024).await.unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        let mut back: Vec<Option<String>> = Vec::new();
        for b in &batches {
            let dict = b.column(0).as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            back.extend(
                dict.keys()
                    .iter()
                    .map(|k| k.map(|k| values.value(k as usize).to_string())),
            );
            assert_eq!(b.column(1).data_type(), &DataType::Int64);
        }
        let expected: Vec<Option<String>> = text.iter().map(|s| s.map(String::from)).collect();
        assert_eq!(back, expected);
    }

    #[tokio::test]
    async fn aborted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_str().unwrap()).unwrap();
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(0..10)) as ArrayRef,
        )])
        .unwrap();
        let target = store.object("t/out.parquet");
        let mut sink = ParquetSink::create(&target, batch.schema()).unwrap();
        sink.write(&batch).await.unwrap();
        sink.abort().await;
        assert!(!target.exists().await.unwrap());
    }

    #[tokio::test]
    async fn corrupt_file_is_a_corrupt_artifact_naming_it() {
        let store = ArtifactStore::open("memory://pq-corrupt").unwrap();
        store
            .put("bad.parquet", Bytes::from_static(b"not parquet at all"))
            .await
            .unwrap();
        let err = read_parquet_all(&store.object("bad.parquet"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt artifact memory://pq-corrupt/bad.parquet: "),
            "{err}"
        );
        assert_eq!(err.class().code(), 2);
    }
}
