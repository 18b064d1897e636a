//! # kiln-runtime
//!
//! What every Kiln binary shares, and no Kiln library links: the common flags
//! ([`args`], clap derives over kiln-core's plain options), logging and terminal
//! progress bars ([`terminal`]), SIGTERM, and turning a result into one error line and
//! the exit code of ARCHITECTURE.md ([`main_with`]).

pub mod args;
mod malloc;
pub mod terminal;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use args::{
    LogArgs, LogFormat, OptionalStepArgs, PredictionsArgs, PrepareArgs, ReportOutput, StepArgs,
};

/// The driver every Kiln binary runs steps with: MLflow tracking (when
/// `MLFLOW_TRACKING_URI` is set) and OpenLineage (when `OPENLINEAGE_URL` or a file
/// transport is set) observe it.
#[cfg(feature = "steps")]
pub fn driver(control: kiln_core::driver::Control) -> kiln_core::driver::Driver<'static> {
    static TRACKING: std::sync::LazyLock<kiln_mlflow::Tracking> =
        std::sync::LazyLock::new(kiln_mlflow::Tracking::new);
    kiln_core::driver::Driver::new(control)
        .observe(&*TRACKING)
        .observe(&*kiln_lineage::EMITTER)
}
use kiln_core::{Error, Result};

/// A flag set when the process receives SIGTERM (what Kubernetes sends before a spot
/// node goes away). Long steps poll it, save their state and stop with exit code 75.
/// Must be called inside the tokio runtime.
pub fn shutdown_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                if signal.recv().await.is_some() {
                    tracing::warn!("SIGTERM received: saving a checkpoint and stopping");
                    setter.store(true, Ordering::SeqCst);
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM"),
    }
    flag
}

/// Builds the multi-threaded runtime a binary runs on.
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The body of every Kiln binary's `main`: set up logging and progress bars, run
/// `body` on a tokio runtime, and turn its result into one error line and an exit code.
pub fn main_with<F, Fut>(log: &LogArgs, body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    malloc::bound_caches();
    terminal::init_logging(log);
    terminal::install_progress_bars();
    match tokio_runtime() {
        Ok(runtime) => exit_code(runtime.block_on(body())),
        Err(e) => exit_code(Err(Error::io("starting the async runtime", e))),
    }
}

/// Reports a binary's result: nothing on success; on failure one `error:` line (and
/// one line per failed gate) on stderr. Returns the exit code of ARCHITECTURE.md.
/// A broken pipe (`kiln ... | head`) is a normal end: exit 0, no message.
pub fn exit_code(result: Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if err.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    let mut stderr = std::io::stderr().lock();
    // This is the process boundary: the one place a library-side helper writes to stderr.
    let _ = writeln!(stderr, "error: {err}");
    if let Error::Gate { failures, .. } = &err {
        for failure in failures {
            let _ = writeln!(stderr, "  failed: {failure}");
        }
    }
    ExitCode::from(err.class().code())
}
