//! `kiln-evaluate`: the evaluate step as its own binary (the same library `kiln evaluate` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_evaluate::args::EvaluateArgs;
use kiln_runtime::{LogArgs, main_with};

/// Evaluate the trained model on the test split — or audit any predictions file.
///
/// In a run (`--spec`): writes <run>/evaluate/{predictions.parquet, metrics.json,
/// manifest.json}. Standalone (`--predictions FILE --label y --score s`): writes the
/// report JSON to --out (stdout without it) and a readable table to stderr.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 75 store unreachable (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-evaluate", version)]
struct Cli {
    #[command(flatten)]
    args: EvaluateArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || cli.args.execute())
}
