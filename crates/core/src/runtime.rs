//! What every Kiln binary shares: common flags, logging, the spec and run root, and
//! turning a result into one line on stderr and an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
use crate::spec::LoadedSpec;
use crate::store::ArtifactStore;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for Argo and log collectors).
    Json,
}

/// Logging flags shared by every binary.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for Argo and log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "KILN_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Flags every step takes.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Pipeline spec (YAML or JSON): a path or a store URI.
    #[arg(long, env = "KILN_SPEC", value_name = "FILE|URI")]
    pub spec: String,
    /// Run root: a folder or `s3://bucket/prefix` [default: ./kiln-runs/<spec name>].
    #[arg(long, env = "KILN_RUN", value_name = "URI")]
    pub run: Option<String>,
    /// Rerun even when inputs, spec and version match the last completed run.
    #[arg(long)]
    pub force: bool,
    /// Override a spec value, e.g. `--set split.seed=7` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The step flags of a command that also has a standalone mode (`--predictions FILE`):
/// `--spec` is optional, and the command must define a `predictions` argument.
#[derive(Debug, Clone, Args)]
pub struct OptionalStepArgs {
    /// Pipeline spec (YAML or JSON), to work on a run.
    #[arg(
        long,
        env = "KILN_SPEC",
        value_name = "FILE|URI",
        conflicts_with = "predictions",
        required_unless_present = "predictions"
    )]
    pub spec: Option<String>,
    /// Run root [default: ./kiln-runs/<spec name>].
    #[arg(long, env = "KILN_RUN", value_name = "URI", requires = "spec")]
    pub run: Option<String>,
    /// Rerun even when inputs, spec and version match the last completed run.
    #[arg(long, requires = "spec")]
    pub force: bool,
    /// Override a spec value, e.g. `--set evaluate.threshold=0.4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "spec")]
    pub overrides: Vec<String>,
}

impl OptionalStepArgs {
    /// Loads the spec and opens the run root (the spec is present unless the
    /// standalone mode was chosen, which clap enforces).
    pub async fn context(&self) -> Result<StepContext> {
        StepArgs {
            spec: self.spec.clone().unwrap_or_default(),
            run: self.run.clone(),
            force: self.force,
            overrides: self.overrides.clone(),
        }
        .context()
        .await
    }
}

/// The input of a standalone audit: a predictions file and its label and score columns.
#[derive(Debug, Clone, Args)]
pub struct PredictionsArgs {
    /// A predictions file (Parquet, or CSV with a header) to analyse outside a run.
    #[arg(long, value_name = "FILE|URI")]
    pub predictions: Option<String>,
    /// With --predictions: the 0/1 label column.
    #[arg(long, requires = "predictions", default_value = "label")]
    pub label: String,
    /// With --predictions: the score column (probability of class 1).
    #[arg(long, requires = "predictions", default_value = "score")]
    pub score: String,
    /// With --predictions: the decision threshold (score >= threshold is positive).
    #[arg(long, requires = "predictions", default_value_t = 0.5)]
    pub threshold: f64,
}

/// Where a standalone report goes: JSON to `--out` (stdout without it), and a
/// readable table to stderr.
#[derive(Debug, Clone, Args)]
pub struct ReportOutput {
    /// With --predictions: write the report JSON here instead of stdout.
    #[arg(long, requires = "predictions", value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

impl ReportOutput {
    /// Writes the table to stderr and the report as JSON to `--out` or stdout.
    pub fn emit<T: serde::Serialize>(&self, report: &T, table: &str) -> Result<()> {
        let json =
            serde_json::to_string_pretty(report).map_err(|e| Error::Invalid(e.to_string()))? + "\n";
        write_stderr(table)?;
        match &self.out {
            Some(path) => std::fs::write(path, json)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e)),
            None => write_stdout(&json),
        }
    }
}

/// A loaded spec and an opened run root: what a step needs to start.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub spec: LoadedSpec,
    pub run: ArtifactStore,
    pub force: bool,
}

impl StepArgs {
    /// Loads the spec and opens the run root.
    pub async fn context(&self) -> Result<StepContext> {
        let spec = LoadedSpec::load(&self.spec, &self.overrides).await?;
        let run_uri = self
            .run
            .clone()
            .unwrap_or_else(|| default_run_uri(&spec.spec.name));
        Ok(StepContext {
            run: ArtifactStore::open(&run_uri)?,
            spec,
            force: self.force,
        })
    }
}

impl StepContext {
    /// The folder of an earlier step that must have completed (it has a manifest);
    /// otherwise a usage error that says which step to run first.
    pub async fn completed_step(&self, step: &str, needed_by: &str) -> Result<ArtifactStore> {
        let dir = self.run.child(step);
        if crate::manifest::StepManifest::load(&dir).await?.is_none() {
            return Err(Error::usage(format!(
                "{needed_by} needs {step}'s outputs: no {} (run `kiln {step}` first)",
                dir.uri_of(crate::manifest::MANIFEST)
            )));
        }
        Ok(dir)
    }

    /// A step of this run keyed by the spec sections it reads, its inputs and its code
    /// (`code`: the `KILN_CODE_HASH` of the step's crate and of the libraries it runs).
    pub fn step(
        &self,
        name: &str,
        sections: &[&str],
        inputs: Vec<crate::manifest::InputRecord>,
        code: &[&str],
    ) -> crate::step::Step {
        crate::step::Step::new(
            &self.run,
            name,
            self.spec.spec.fingerprint(sections),
            inputs,
            code,
            self.force,
        )
    }
}

/// The run root used when `--run` is not given.
pub fn default_run_uri(spec_name: &str) -> String {
    format!("./kiln-runs/{spec_name}")
}

/// Sets up `tracing` for a binary: logs go to stderr, so stdout stays for results.
pub fn init_logging(args: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let level = if args.quiet {
        "warn"
    } else {
        match args.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    drop(result);
}

/// A progress bar on an interactive terminal; hidden otherwise (CI, Argo, pipes).
pub fn progress_bar(len: Option<u64>, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos} rows {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(message.to_string());
    bar
}

/// A flag set when the process receives SIGTERM (what Kubernetes sends before a spot
/// node goes away). Long steps poll it, save their state and stop with exit code 75.
/// Must be called inside the tokio runtime.
pub fn shutdown_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let setter = std::sync::Arc::clone(&flag);
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

/// The body of every Kiln binary's `main`: set up logging, run `body` on a tokio
/// runtime, and turn its result into one error line and an exit code.
pub fn main_with<F, Fut>(log: &LogArgs, body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    init_logging(log);
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

/// Writes a human-readable report to stderr (tables beside the JSON on stdout).
pub fn write_stderr(text: &str) -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .map_err(|e| Error::io("writing to stderr", e))
}

/// Writes text to stdout, mapping a closed pipe to an error [`exit_code`] treats as success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}
