//! `kiln-train`: the train step as its own binary (the same library `kiln train` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_core::driver::{Control, Device};
use kiln_runtime::{LogArgs, StepArgs, main_with, shutdown_flag};

/// Train the Kiln classifier on prepare's outputs: an MLP (burn) with early stopping
/// on a validation part of train, reproducible from the seed in the spec.
///
/// Writes <run>/train/{model/, history.json, manifest.json}. Checkpoints go to
/// <run>/train/checkpoints/ every `train.checkpoint_every` epochs and on SIGTERM (then
/// the exit code is 75); running again resumes from the latest complete one.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 75 interrupted or store unreachable
/// (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-train", version)]
struct Cli {
    #[command(flatten)]
    step: StepArgs,
    /// Where to compute: `cpu` (burn ndarray) or `cuda` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", env = "KILN_DEVICE")]
    device: Device,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async {
        let control = Control {
            device: cli.device,
            stop: shutdown_flag(),
        };
        let ctx = cli.step.context().await?;
        kiln_runtime::driver(control)
            .run(&kiln_train::Train, &ctx)
            .await
            .map(drop)
    })
}
