//! The command-line flags of `kiln-fairness` and `kiln fairness` (feature `cli`).

use kiln_core::Result;
use kiln_core::driver::Control;
use kiln_core::spec::FairnessSpec;

use crate::{Fairness, audit};

/// Command-line arguments shared by `kiln-fairness` and `kiln fairness`.
#[derive(Debug, Clone, clap::Args)]
pub struct FairnessArgs {
    #[command(flatten)]
    pub step: kiln_runtime::OptionalStepArgs,
    #[command(flatten)]
    pub input: kiln_runtime::PredictionsArgs,
    /// With --predictions: the sensitive columns, comma-separated.
    #[arg(long, requires = "predictions", value_delimiter = ',')]
    pub sensitive: Vec<String>,
    /// With --predictions: groups smaller than this are not compared.
    #[arg(long, requires = "predictions", default_value_t = 30)]
    pub min_group_count: u64,
    #[command(flatten)]
    pub output: kiln_runtime::ReportOutput,
}

impl FairnessArgs {
    /// Runs what the arguments ask for.
    pub async fn execute(self) -> Result<()> {
        if let Some(predictions) = &self.input.predictions {
            let options = FairnessSpec {
                min_group_count: self.min_group_count,
                ..FairnessSpec::default()
            };
            let report = audit(
                predictions,
                &self.input.label,
                &self.input.score,
                self.input.threshold,
                &self.sensitive,
                &options,
            )
            .await?;
            return self.output.emit(&report, &report.table());
        }
        let ctx = self.step.context().await?;
        kiln_runtime::driver(Control::default())
            .run(&Fairness, &ctx)
            .await
            .map(drop)
    }
}
