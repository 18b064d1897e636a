//! # kiln-core
//!
//! What every Kiln step stands on:
//!
//! - [`store`]: the [`ArtifactStore`] over a local folder, S3 or memory, with atomic
//!   writes and sha256 content hashes; [`parquet_io`] streams Parquet through it and
//!   [`csv_source`] streams raw CSV into typed Arrow batches.
//! - [`spec`]: the typed, strict [`PipelineSpec`] and its JSON Schema.
//! - [`contracts`]: the artifacts one step writes and another reads, one type each;
//!   [`decision`]: the decision policy that turns a score into a decision.
//! - [`table`]: the one reader of columns out of record batches (labels included);
//!   [`split`]: the seeded row split every step agrees on.
//! - [`manifest`] and [`step`]: manifests as commit markers, the cache rule, and the
//!   staged-then-committed protocol every step follows; [`driver`]: the one driver
//!   that runs a [`driver::PipelineStep`] (plan, execute, observers, gate), alone or
//!   as the DAG.
//! - [`context`]: a step's loaded spec and run root, from plain options;
//!   [`output`] and [`progress`]: results and progress, with no terminal crate (the
//!   binaries' flags, logging and exit codes live in `kiln-runtime`).
//!
//! ```
//! use kiln_core::spec::LoadedSpec;
//!
//! let text = r#"
//! name: demo
//! data: {format: csv, sources: [{uri: data.csv}]}
//! schema: [{name: x, type: float}, {name: y, type: string}]
//! label: {column: y, positive: "yes"}
//! split: {method: hash, test_fraction: 0.2}
//! transform: {numeric: [{column: x, standardize: true}]}
//! "#;
//! let loaded = LoadedSpec::from_text(text, "spec.yaml", &[]).unwrap();
//! assert_eq!(loaded.resolve("data.csv"), "data.csv");
//! ```

pub mod context;
pub mod contracts;
#[cfg(feature = "tables")]
pub mod csv_source;
pub mod decision;
pub mod driver;
pub mod error;
pub mod local_file;
pub mod manifest;
pub mod metric_names;
pub mod output;
#[cfg(feature = "tables")]
pub mod parquet_io;
#[cfg(feature = "tables")]
pub mod predictions;
pub mod progress;
pub mod spec;
pub mod split;
pub mod step;
pub mod store;
#[cfg(feature = "tables")]
pub mod table;
pub mod tracked;
pub mod uuid;
pub mod values;

pub use decision::DecisionPolicy;
pub use error::{Context, Error, ExitClass, Result};
pub use manifest::StepManifest;
pub use spec::PipelineSpec;
pub use store::ArtifactStore;
