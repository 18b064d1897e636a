//! The command-line flags of `kiln-evaluate` and `kiln evaluate` (feature `cli`).

use kiln_core::Result;
use kiln_core::driver::Control;
use kiln_core::spec::EvaluateSpec;

use crate::{Evaluate, audit};

/// Command-line arguments shared by `kiln-evaluate` and `kiln evaluate`: a run step
/// (`--spec`) or a standalone audit (`--predictions`).
#[derive(Debug, Clone, clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub step: kiln_runtime::OptionalStepArgs,
    #[command(flatten)]
    pub input: kiln_runtime::PredictionsArgs,
    /// With --predictions: bootstrap resamples for the 95 % intervals (0 = none).
    #[arg(long, requires = "predictions", default_value_t = 1000)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub output: kiln_runtime::ReportOutput,
}

impl EvaluateArgs {
    /// Runs what the arguments ask for.
    pub async fn execute(self) -> Result<()> {
        if let Some(predictions) = &self.input.predictions {
            let options = EvaluateSpec {
                threshold: self.input.threshold,
                bootstrap_resamples: self.bootstrap,
                ..EvaluateSpec::default()
            };
            let report = audit(predictions, &self.input.label, &self.input.score, &options).await?;
            return self.output.emit(&report, &report.table());
        }
        let ctx = self.step.context().await?;
        kiln_runtime::driver(Control::default())
            .run(&Evaluate, &ctx)
            .await
            .map(drop)
    }
}
