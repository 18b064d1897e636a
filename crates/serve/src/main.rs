//! `kiln-serve`: the model server as its own binary (the same library `kiln serve` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_runtime::{LogArgs, main_with};
use kiln_serve::args::ServeArgs;

/// Serve a Kiln model over KServe V1, V2 REST and V2 gRPC.
///
/// Loads the bundle (or registry reference), runs one self-check prediction, then
/// answers on --http and --grpc until SIGTERM, when it finishes in-flight requests,
/// flushes the prediction log and exits 0.
///
/// Exit codes: 0 stopped cleanly, 2 usage error (bad reference, port in use),
/// 75 store or MLflow unreachable while loading (retry), 1 other.
#[derive(Debug, Parser)]
#[command(name = "kiln-serve", version)]
struct Cli {
    #[command(flatten)]
    args: ServeArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async move {
        kiln_serve::serve(cli.args.options(), None, |_| {}).await
    })
}
