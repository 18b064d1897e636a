//! `kiln-validate`: the validate step as its own binary (the same library `kiln validate` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_runtime::{LogArgs, main_with};
use kiln_validate::args::ValidateArgs;

/// Check data with a Great Expectations suite, fast — in a run, or on any table.
///
/// In a run (`--spec`): validates prepare's train and test tables with the spec's
/// suite and the test table's drift against the training profile; writes
/// <run>/validate/{report.json, manifest.json}.
///
/// Standalone: `--suite suite.json --data table.parquet` writes GE's validation result
/// JSON to --result (stdout without it) and a readable table to stderr;
/// `--profile --data table.parquet > suite.json` infers a starting suite.
///
/// Exit codes: 0 passed, 2 usage/spec/suite error, 3 an expectation failed or a column
/// drifted, 75 store unreachable (retry), 1 other (e.g. a corrupt Parquet file).
#[derive(Debug, Parser)]
#[command(name = "kiln-validate", version)]
struct Cli {
    #[command(flatten)]
    args: ValidateArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || cli.args.execute())
}
