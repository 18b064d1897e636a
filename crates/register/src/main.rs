//! `kiln-register`: the register step as its own binary (the same library `kiln register` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_core::driver::Control;
use kiln_runtime::{LogArgs, StepArgs, main_with};

/// Apply the registration gates and register the model that passes them.
///
/// Reads <run>/{validate,evaluate,fairness} and writes <run>/register/decision.json
/// (every gate, threshold, observed value, verdict). When every gate passes, the
/// model becomes a version in MLflow's registry (MLFLOW_TRACKING_URI set) or in the
/// local registry beside the run folder, with the spec's alias (default `staging`).
///
/// Exit codes: 0 registered, 2 usage/spec error, 3 a gate failed (nothing registered),
/// 75 store or MLflow unreachable (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-register", version)]
struct Cli {
    #[command(flatten)]
    args: StepArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async move {
        let ctx = cli.args.context().await?;
        kiln_runtime::driver(Control::default())
            .run(&kiln_register::Register, &ctx)
            .await
            .map(drop)
    })
}
