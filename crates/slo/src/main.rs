//! `kiln-slo`: the SLO tools as their own binary (the same library `kiln slo` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_runtime::{LogArgs, main_with};
use kiln_slo::args::SloCommand;

/// Kiln's SLOs: Sloth-compatible Prometheus rules from an SLO spec, and a check of
/// each SLO's budget against a live Prometheus.
///
/// Exit codes: 0 ok, 2 usage or spec error, 3 an SLO is breached (budget exhausted,
/// page alert firing, probe failed), 75 Prometheus unreachable, 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-slo", version)]
struct Cli {
    #[command(subcommand)]
    command: SloCommand,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async move {
        kiln_slo::execute(&cli.command).await.map_err(Into::into)
    })
}
