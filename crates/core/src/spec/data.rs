//! Where the rows come from and what they are: sources, CSV options, the schema, the
//! label, row filters, the split and the event time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the rows come from: either `sources`, files read as one table, or named
/// `tables` and a SQL `query` over them whose result is the modelling table. Row
/// filters, the split, the schema and the transform apply to either in the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// File format of every source, and of a table whose file name does not say.
    #[serde(default)]
    pub format: DataFormat,
    /// CSV parsing options (ignored for Parquet).
    #[serde(default)]
    pub csv: CsvOptions,
    /// One or more files, read as one table. A relative URI is relative to the spec
    /// file's folder. Not used with `query`.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Named input tables for `query` (the name is the SQL table name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableSpec>,
    /// A SQL query (DataFusion's dialect) over `tables`: joins, aggregates, window
    /// functions. Its result must have every column of `schema`, under its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Also write prepare's train and test tables as Delta tables `<uri>/train` and
    /// `<uri>/test` (local or `s3://`): each run that prepares is one new version of
    /// each (an overwrite), which any Delta reader can read and time-travel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_output: Option<String>,
}

/// The file format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    #[default]
    Csv,
    Parquet,
    /// A Delta table (a folder with `_delta_log/`): `data.tables` only.
    Delta,
}

impl DataFormat {
    /// The usual file extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            DataFormat::Csv => ".csv",
            DataFormat::Parquet | DataFormat::Delta => ".parquet",
        }
    }
}

/// One named input table of `data.query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// A file, or a folder of files read as one table (a URI ending in `/`, or a local
    /// directory): plain path, `file://`, `s3://bucket/key`, `memory://name/key`. In a
    /// folder, only files with the format's extension (`.csv`, `.parquet`) are read.
    pub uri: String,
    /// `csv`, `parquet` or `delta`; by default from the file name's extension, else
    /// `data.format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DataFormat>,
    /// Delta only: read the table as of this version (default: its latest). The
    /// manifest records the version read either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Hive partition columns of a folder (`day=2024-01-01/region=eu/part-0.parquet`),
    /// in path order. They are read as strings; cast them in the query.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// CSV only: the typed columns in file order. Without it, the header names the
    /// columns and their types are inferred from the first 1000 rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<ColumnSpec>,
}

impl TableSpec {
    /// The table's format: explicit, else by extension, else `fallback`.
    pub fn format_or(&self, fallback: DataFormat) -> DataFormat {
        if let Some(format) = self.format {
            return format;
        }
        let name = self.uri.trim_end_matches('/');
        if name.ends_with(".parquet") {
            DataFormat::Parquet
        } else if name.ends_with(".csv") {
            DataFormat::Csv
        } else {
            fallback
        }
    }
}

/// How CSV sources are parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Field delimiter, one character.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line (after `skip_lines`) is a header naming the columns.
    #[serde(default)]
    pub header: bool,
    /// Trim spaces and tabs around every field.
    #[serde(default = "default_true")]
    pub trim: bool,
    /// Field values (after trimming) that mean "missing", e.g. `?` or `NA`.
    /// An empty field is always missing.
    #[serde(default)]
    pub null_values: Vec<String>,
    /// Skip blank lines (a trailing empty line is common in exported files).
    #[serde(default = "default_true")]
    pub skip_blank_lines: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: default_delimiter(),
            header: false,
            trim: true,
            null_values: Vec::new(),
            skip_blank_lines: true,
        }
    }
}

fn default_delimiter() -> char {
    ','
}

pub(super) fn default_true() -> bool {
    true
}

/// One raw data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Path or URI: plain path, `file://`, `s3://bucket/key`, `memory://name/key`.
    pub uri: String,
    /// Lines to skip at the top of the file, before any header (e.g. a banner line).
    #[serde(default)]
    pub skip_lines: u64,
    /// With `split.method: files`, which split this file's rows go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitRole>,
}

/// Which split a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitRole {
    Train,
    Test,
}

impl SplitRole {
    /// The artifact name of this split (`train`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            SplitRole::Train => "train",
            SplitRole::Test => "test",
        }
    }
}

/// A typed column of the raw data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name, kept unchanged in the prepared tables.
    pub name: String,
    /// Logical type.
    #[serde(rename = "type")]
    pub dtype: ColumnType,
    /// Whether missing values are allowed; a missing value in a non-nullable column is an error.
    #[serde(default = "default_true")]
    pub nullable: bool,
}

/// Logical column types and their Arrow types in the prepared tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// 64-bit signed integer (Arrow Int64).
    Int,
    /// 64-bit float (Arrow Float64).
    Float,
    /// UTF-8 text (Arrow Utf8).
    String,
    /// Boolean: true/false, 1/0, yes/no (Arrow Boolean).
    Bool,
    /// RFC 3339 date-time, `YYYY-MM-DD HH:MM:SS` or a date, in UTC (Arrow Timestamp µs, UTC).
    Timestamp,
}

impl ColumnType {
    /// Whether numeric transforms apply to this type.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Float)
    }
}

/// The label column and how its raw values map to 0/1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// The label column (declared in `schema`); written as 0/1 under the same name.
    pub column: String,
    /// The raw value of the positive class (label 1).
    pub positive: String,
    /// The raw value of the negative class (label 0). When given, any other value is an
    /// error; when absent, every non-positive value is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
    /// A suffix stripped from raw labels before comparing (e.g. `.` for `>50K.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_suffix: Option<String>,
}

/// A row filter: `column op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    /// The column compared.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value for `eq`, `ne`, `lt`, `le`, `gt`, `ge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The values for `in` and `not_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<serde_json::Value>>,
}

/// Comparison operators of a [`RowFilter`]. A missing value fails every comparison
/// except `is_null` (as in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    IsNull,
    NotNull,
}

/// How rows are assigned to train and test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "method", rename_all = "snake_case")]
pub enum SplitSpec {
    /// Every source names its split (`sources[].split`).
    Files,
    /// A deterministic hash of a key column (or the row id) with a seed.
    Hash {
        /// Column whose value is hashed; rows with equal keys land in the same split.
        /// Without it, the row id is hashed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Fraction of rows (by hash) that go to test, in (0, 1).
        test_fraction: f64,
        /// Seed mixed into the hash; change it for a different split.
        #[serde(default)]
        seed: u64,
    },
}

/// Where `event_timestamp` comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum EventTimeSpec {
    /// The time prepare ran (the default; makes the output differ between reruns).
    #[default]
    IngestTime,
    /// A timestamp column of the data.
    Column(String),
    /// One fixed RFC 3339 time for every row (e.g. the census date of a snapshot).
    Fixed(String),
}
