//! Streaming CSV → typed Arrow batches, from any store URI.
//!
//! The bytes stream from the object store into a parser on a blocking thread, which
//! sends finished batches back over a bounded channel: memory stays at a few batches
//! whatever the file size, and parsing overlaps with whatever consumes the batches.

use std::io::BufRead;

use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{Error, Result};
use crate::spec::{ColumnSpec, CsvOptions};
use crate::store::ObjectRef;
use crate::table::TextBatchBuilder;

/// A typed batch and, for each row, the line of the source file it came from.
#[derive(Debug, Clone)]
pub struct TypedBatch {
    pub batch: RecordBatch,
    pub lines: Vec<u64>,
}

/// How to read one CSV object.
#[derive(Debug, Clone)]
pub struct CsvRead {
    pub options: CsvOptions,
    /// Lines skipped before the header or first row.
    pub skip_lines: u64,
    /// Typed columns; in file order when the file has no header.
    pub columns: Vec<ColumnSpec>,
    /// Rows per batch.
    pub batch_rows: usize,
}

/// Streams a CSV object as typed batches. The first error (a missing file, a row with
/// the wrong number of fields, a bad value) ends the stream.
pub async fn stream_csv(
    object: &ObjectRef,
    read: CsvRead,
) -> Result<BoxStream<'static, Result<TypedBatch>>> {
    let bytes = object.stream().await?.map_err(std::io::Error::other);
    let file = object.uri().to_string();
    let (tx, mut rx) = mpsc::channel::<Result<TypedBatch>>(4);
    tokio::task::spawn_blocking(move || {
        let reader =
            std::io::BufReader::with_capacity(1 << 20, SyncIoBridge::new(StreamReader::new(bytes)));
        if let Err(e) = parse(reader, &file, &read, &tx) {
            // The receiver may be gone already (the consumer stopped); nothing to do then.
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

fn parse(
    mut reader: impl BufRead,
    file: &str,
    read: &CsvRead,
    tx: &mpsc::Sender<Result<TypedBatch>>,
) -> Result<()> {
    let io_err = |e: std::io::Error| Error::io(format!("reading {file}"), e);
    let mut skipped = Vec::new();
    for _ in 0..read.skip_lines {
        skipped.clear();
        if reader.read_until(b'\n', &mut skipped).map_err(io_err)? == 0 {
            break;
        }
    }
    let opts = &read.options;
    let newlines = std::rc::Rc::new(std::cell::RefCell::new(std::collections::VecDeque::new()));
    let reader = LineIndex {
        inner: reader,
        offset: 0,
        newlines: std::rc::Rc::clone(&newlines),
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter as u8)
        .has_headers(false)
        .flexible(true)
        .trim(if opts.trim {
            csv::Trim::All
        } else {
            csv::Trim::None
        })
        .from_reader(reader);

    let mut record = csv::StringRecord::new();
    // The csv crate does not count blank lines in its line numbers, and a record's start
    // offset can point at blank lines before it. A record's line is instead the line of
    // its terminating newline: the reader's offset right after the record.
    let mut lines_before = 0u64;
    let mut line_after = |end: u64| {
        let mut pending = newlines.borrow_mut();
        let mut terminated = false;
        while let Some(&at) = pending.front() {
            if at >= end {
                break;
            }
            pending.pop_front();
            lines_before += 1;
            terminated = at + 1 == end;
        }
        lines_before + u64::from(!terminated) + read.skip_lines
    };
    // With a header, map each spec column to its field; without, fields are in spec order.
    let order: Option<Vec<usize>> = if opts.header {
        if !csv
            .read_record(&mut record)
            .map_err(|e| csv_error(e, file))?
        {
            return Ok(());
        }
        let line = line_after(csv.position().byte());
        let mut order = Vec::with_capacity(read.columns.len());
        for column in &read.columns {
            let idx = record
                .iter()
                .position(|h| h == column.name)
                .ok_or_else(|| Error::Data {
                    file: file.to_string(),
                    line,
                    message: format!("header has no column `{}`", column.name),
                })?;
            order.push(idx);
        }
        Some(order)
    } else {
        None
    };
    let expected = order
        .as_ref()
        .map(|_| record.len())
        .unwrap_or(read.columns.len());

    let mut builder = TextBatchBuilder::new(&read.columns, &opts.null_values, read.batch_rows);
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(e, file))?
    {
        if opts.skip_blank_lines && record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let line = line_after(csv.position().byte());
        if record.len() != expected {
            return Err(Error::Data {
                file: file.to_string(),
                line,
                message: format!("expected {expected} fields, found {}", record.len()),
            });
        }
        match &order {
            Some(order) => builder.push_row(order.iter().map(|&i| &record[i]), file, line)?,
            None => builder.push_row(record.iter(), file, line)?,
        }
        if builder.len() >= read.batch_rows {
            send(&mut builder, tx)?;
        }
    }
    if !builder.is_empty() {
        send(&mut builder, tx)?;
    }
    Ok(())
}

/// Remembers the byte offsets of newlines as the csv parser reads ahead (a few KB),
/// so that a record's line number can be computed from its byte offset.
struct LineIndex<R> {
    inner: R,
    offset: u64,
    newlines: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>,
}

impl<R: std::io::Read> std::io::Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                newlines.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

fn send(builder: &mut TextBatchBuilder, tx: &mpsc::Sender<Result<TypedBatch>>) -> Result<()> {
    let (batch, lines) = builder.finish()?;
    tx.blocking_send(Ok(TypedBatch { batch, lines }))
        .map_err(|_| Error::Invalid("the consumer of the CSV stream stopped".into()))
}

fn csv_error(err: csv::Error, file: &str) -> Error {
    let line = err.position().map(|p| p.line()).unwrap_or(0);
    match err.into_kind() {
        csv::ErrorKind::Io(e) => {
            // The object store's error was flattened into an io::Error by the bridge.
            Error::io(format!("reading {file}"), e)
        }
        csv::ErrorKind::Utf8 { err, .. } => Error::Data {
            file: file.to_string(),
            line,
            message: format!("invalid UTF-8 in field {}", err.field() + 1),
        },
        other => Error::Data {
            file: file.to_string(),
            line,
            message: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ColumnType;
    use crate::store::ArtifactStore;
    use bytes::Bytes;

    fn columns() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec {
                name: "a".into(),
                dtype: ColumnType::Int,
                nullable: true,
            },
            ColumnSpec {
                name: "b".into(),
                dtype: ColumnType::String,
                nullable: true,
            },
        ]
    }

    async fn read_all(text: &'static str, header: bool, skip: u64) -> Result<Vec<TypedBatch>> {
        let store = ArtifactStore::open("memory://csv-tests").unwrap();
        let name = format!("f{}.csv", crate::store::sha256_hex(text.as_bytes()));
        store
            .put(&name, Bytes::from_static(text.as_bytes()))
            .await
            .unwrap();
        let read = CsvRead {
            options: CsvOptions {
                header,
                null_values: vec!["?".into()],
                ..CsvOptions::default()
            },
            skip_lines: skip,
            columns: columns(),
            batch_rows: 2,
        };
        stream_csv(&store.object(&name), read)
            .await?
            .try_collect()
            .await
    }

    #[tokio::test]
    async fn reads_batches_skipping_banner_and_blank_lines() {
        let batches = read_all("junk line\n1, x\n2, ?\n\n3, z\n\n", false, 1)
            .await
            .unwrap();
        let rows: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
        assert_eq!(rows, 3);
        assert_eq!(batches[0].lines, vec![2, 3]);
        assert_eq!(batches[1].lines, vec![5]);
        assert_eq!(batches[0].batch.column(1).null_count(), 1);
    }

    #[tokio::test]
    async fn header_columns_are_matched_by_name() {
        let batches = read_all("b,a\nx,1\n", true, 0).await.unwrap();
        let batch = &batches[0].batch;
        assert_eq!(batch.schema().field(0).name(), "a");
        assert_eq!(batch.num_rows(), 1);
        let err = read_all("b,c\nx,1\n", true, 0).await.unwrap_err();
        assert!(
            err.to_string().ends_with(":1: header has no column `a`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn wrong_field_count_names_the_line() {
        let err = read_all("1,x\n2,y,extra\n", false, 0).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.ends_with(".csv:2: expected 2 fields, found 3"), "{msg}");
    }
}
