//! `kiln-fairness`: the fairness step as its own binary (the same library `kiln fairness` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_fairness::args::FairnessArgs;
use kiln_runtime::{LogArgs, main_with};

/// Fairness of the model's decisions by sensitive attribute — or of any predictions file.
///
/// In a run (`--spec`): reads <run>/evaluate/predictions.parquet, writes
/// <run>/fairness/report.json, and exits 3 when a gate of the spec fails. Standalone
/// (`--predictions FILE --label y --score s --sensitive sex,race`): writes the report
/// JSON to --out (stdout without it) and a readable table to stderr.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 3 a fairness gate failed, 75 store
/// unreachable (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-fairness", version)]
struct Cli {
    #[command(flatten)]
    args: FairnessArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || cli.args.execute())
}
