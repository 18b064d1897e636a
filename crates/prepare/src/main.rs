//! `kiln-prepare`: the prepare step as its own binary (the same library `kiln prepare` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_core::driver::Control;
use kiln_runtime::{LogArgs, PrepareArgs, main_with};

/// Prepare raw data for training: typed columns, filters, 0/1 label, train/test split,
/// a feature transform fitted on train, and a profile of every column.
///
/// Writes <run>/prepare/{train.parquet, test.parquet, transform.json, profile.json,
/// manifest.json}. A second run with the same inputs, spec and version is a cache hit.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 75 store unreachable (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-prepare", version)]
struct Cli {
    #[command(flatten)]
    prepare: PrepareArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async {
        let args = &cli.prepare;
        let ctx = kiln_prepare::reproduce::context(&args.step.options(), args.reproduce.as_deref())
            .await?;
        kiln_runtime::driver(Control::default())
            .run(&kiln_prepare::Prepare, &ctx)
            .await
            .map(drop)
    })
}
