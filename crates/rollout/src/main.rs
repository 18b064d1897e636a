//! `kiln-rollout`: the canary rollout as its own binary (the same library `kiln rollout`
//! calls), for the Argo deploy workflow's image.

use std::process::ExitCode;

use clap::Parser;
use kiln_rollout::args::RolloutCommand;
use kiln_runtime::{LogArgs, main_with};

/// Canary a model version: 10 % of the traffic, errors and p99 checked against the
/// stable version from Prometheus every interval, then promote or roll back.
///
/// Exit codes: 0 promoted, 2 usage error, 3 rolled back or halted without data,
/// 75 Prometheus, the router or the Kubernetes API unreachable (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-rollout", version)]
struct Cli {
    #[command(subcommand)]
    command: RolloutCommand,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async move {
        kiln_rollout::execute(&cli.command)
            .await
            .map_err(Into::into)
    })
}
