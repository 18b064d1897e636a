//! Delta tables (the Delta Lake protocol, reader version 1, writer version 2): reading
//! a table at a version for `data.query` ([`log::snapshot`]), and writing prepare's
//! tables as new versions of Delta tables ([`write::overwrite`], `data.delta_output`).
//! Python's `deltalake` and any other Delta reader read what this writes.

pub mod log;
pub mod schema;
pub mod write;

pub use log::{Snapshot, snapshot};
pub use write::{Written, overwrite};
