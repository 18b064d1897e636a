//! The flags every Kiln binary shares, as clap derives over kiln-core's plain options.

use clap::{Args, ValueEnum};
use kiln_core::context::{StepContext, StepOptions};
use kiln_core::output::{pretty_json, write_stderr, write_stdout};
use kiln_core::{Error, Result};

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
    /// Read and hash every input and cached output in full, instead of trusting the
    /// sha256 a manifest recorded for an object whose ETag (or size and modification
    /// time) has not changed.
    #[arg(long)]
    pub verify: bool,
    /// Override a spec value, e.g. `--set split.seed=7` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Memory prepare's SQL query (`data.query`) may hold before it spills to disk,
    /// e.g. `4GiB` [default: half of the machine's or the container's memory].
    #[arg(long, env = "KILN_MEMORY_LIMIT", value_name = "SIZE", value_parser = kiln_core::context::parse_bytes)]
    pub memory_limit: Option<u64>,
}

impl StepArgs {
    /// The plain options the libraries take.
    pub fn options(&self) -> StepOptions {
        StepOptions {
            spec: self.spec.clone(),
            run: self.run.clone(),
            force: self.force,
            verify: self.verify,
            overrides: self.overrides.clone(),
            memory_limit: self.memory_limit,
        }
    }

    /// Loads the spec and opens the run root.
    pub async fn context(&self) -> Result<StepContext> {
        self.options().context().await
    }
}

/// prepare's flags: every step's, and `--reproduce`.
#[derive(Debug, Clone, Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub step: StepArgs,
    /// Reproduce an earlier run's prepare outputs byte for byte (RUN: its run root):
    /// each Delta table is read at the version that run read, and any other input that
    /// changed since is refused.
    #[arg(long, value_name = "RUN")]
    pub reproduce: Option<String>,
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
    /// Hash every input and cached output in full (see the steps' `--verify`).
    #[arg(long, requires = "spec")]
    pub verify: bool,
    /// Override a spec value, e.g. `--set evaluate.threshold=0.4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "spec")]
    pub overrides: Vec<String>,
}

impl OptionalStepArgs {
    /// The step's options, when `--spec` was given (otherwise the standalone mode).
    pub fn options(&self) -> Option<StepOptions> {
        self.spec.as_ref().map(|spec| StepOptions {
            spec: spec.clone(),
            run: self.run.clone(),
            force: self.force,
            verify: self.verify,
            overrides: self.overrides.clone(),
            memory_limit: None,
        })
    }

    /// Loads the spec and opens the run root (the spec is present unless the
    /// standalone mode was chosen, which clap enforces).
    pub async fn context(&self) -> Result<StepContext> {
        self.options().unwrap_or_default().context().await
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
        let json = pretty_json(report)?;
        write_stderr(table)?;
        match &self.out {
            Some(path) => std::fs::write(path, json)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e)),
            None => write_stdout(&json),
        }
    }
}
