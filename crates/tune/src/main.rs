//! `kiln-tune`: the tune step as its own binary (the same library `kiln tune` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_core::runtime::{LogArgs, StepArgs, main_with, shutdown_flag};
use kiln_model::device::DeviceKind;

/// Search the train section's hyperparameters (the spec's `tune:` section) on train's
/// validation rows: random or TPE sampling, successive halving, trials in parallel.
///
/// Writes <run>/tune/{trials/, trials.json, best.json, manifest.json}; train then
/// trains the final model with best.json's parameters. A finished trial is kept as it
/// finishes, so a rerun after SIGTERM (exit code 75) repeats only unfinished trials.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 75 interrupted or store unreachable
/// (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-tune", version)]
struct Cli {
    #[command(flatten)]
    step: StepArgs,
    /// Where to compute: `cpu` (burn ndarray) or `cuda` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", env = "KILN_DEVICE")]
    device: DeviceKind,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async {
        let options = kiln_tune::TuneOptions {
            device: cli.device,
            stop: shutdown_flag(),
        };
        let ctx = cli.step.context().await?;
        if ctx.spec.spec.tune.is_none() {
            // The pipeline DAG always has a tune task; without a search it does nothing.
            tracing::info!("the spec has no `tune:` section: nothing to search");
            return Ok(());
        }
        kiln_tune::run(&ctx, &options).await.map(drop)
    })
}
