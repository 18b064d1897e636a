//! OpenLineage for Kiln: every step of the driver emits START and COMPLETE (or FAIL)
//! run events (OpenLineage 2-0-2) naming the datasets it read and wrote, with their
//! versions (sha256), schemas and, on validated tables, validate's results as
//! data-quality assertions; steps are children of the pipeline run (or of the Argo
//! workflow, `OPENLINEAGE_PARENT_ID`). Events go where OpenLineage's clients send them
//! (`OPENLINEAGE_URL`, or a file); a failed delivery never fails a step.

pub mod chain;
pub mod emitter;
pub mod event;
pub mod transport;

use std::sync::LazyLock;

pub use emitter::{Emitter, UNDELIVERED, undelivered};
pub use event::{Dataset, EventType, RunEvent, RunRef, dataset_name};
pub use transport::Transport;

/// The emitter every Kiln binary's driver is observed by.
pub static EMITTER: LazyLock<Emitter> = LazyLock::new(Emitter::new);
