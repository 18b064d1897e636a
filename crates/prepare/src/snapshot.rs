//! The feature table for serving (`transform.lookup`): each entity key's latest row of
//! the looked-up columns, over both splits, as the model server loads it
//! (`kiln-serve --feature-table`). "Latest" is the greatest `event_timestamp`, then
//! the greatest `row_id`, so the table is a function of prepare's tables. It is written
//! by the same DataFusion session (memory pool, spilling) as `data.query`, sorted by key.

use futures::StreamExt;
use kiln_core::parquet_io::{ParquetSink, WrittenParquet};
use kiln_core::spec::LookupSpec;
use kiln_core::step::StepWriter;
use kiln_core::table::{EVENT_TIMESTAMP, ROW_ID};
use kiln_core::{Error, Result};

use crate::query::{query_error, session};
use crate::{FEATURES, TEST, TRAIN};

/// What the messages call this output.
const WHAT: &str = "prepare: the feature table (transform.lookup)";

/// A SQL identifier, quoted.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The query: the key, the rows' time and the looked-up columns of each key's latest row.
fn snapshot_sql(lookup: &LookupSpec) -> String {
    let key = quoted(&lookup.key);
    let columns: Vec<String> = std::iter::once(key.clone())
        .chain(std::iter::once(quoted(EVENT_TIMESTAMP)))
        .chain(lookup.columns.iter().map(|c| quoted(c)))
        .collect();
    let columns = columns.join(", ");
    let row_id = quoted(ROW_ID);
    let time = quoted(EVENT_TIMESTAMP);
    format!(
        "SELECT {columns} FROM (\
           SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {time} DESC, {row_id} DESC) AS kiln_latest \
           FROM (SELECT {columns}, {row_id} FROM train UNION ALL SELECT {columns}, {row_id} FROM test) \
           WHERE {key} IS NOT NULL) \
         WHERE kiln_latest = 1 ORDER BY {key}"
    )
}

/// Writes `features.parquet` from the staged splits.
pub async fn write_feature_table(
    writer: &StepWriter,
    lookup: &LookupSpec,
    memory_limit: u64,
) -> Result<WrittenParquet> {
    let ctx = session(memory_limit)?;
    for (name, file) in [("train", TRAIN), ("test", TEST)] {
        let object = writer.object(file);
        let (url, root) = object.urls();
        let root = url::Url::parse(&root).map_err(|e| Error::Invalid(format!("{root}: {e}")))?;
        ctx.register_object_store(&root, object.parts().0);
        ctx.register_parquet(name, &url, Default::default())
            .await
            .map_err(|e| query_error(object.uri(), e))?;
    }
    let frame = ctx
        .sql(&snapshot_sql(lookup))
        .await
        .map_err(|e| query_error(WHAT, e))?;
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|e| query_error(WHAT, e))?;
    let mut sink = ParquetSink::create(&writer.object(FEATURES), schema)?;
    while let Some(batch) = stream.next().await {
        let written = match batch {
            Ok(batch) => sink.write(&batch).await,
            Err(e) => Err(query_error(WHAT, e)),
        };
        if let Err(e) = written {
            sink.abort().await;
            return Err(e);
        }
    }
    sink.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_quotes_every_name() {
        let sql = snapshot_sql(&LookupSpec {
            key: "customer id".into(),
            columns: vec!["tx\"count".into()],
        });
        assert!(sql.contains(r#"PARTITION BY "customer id""#), "{sql}");
        assert!(sql.contains(r#""tx""count""#), "{sql}");
        assert!(sql.ends_with(r#"ORDER BY "customer id""#), "{sql}");
    }
}
