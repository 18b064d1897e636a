//! `kiln-tune`: the tune step as its own binary (the same library `kiln tune` calls).

use std::process::ExitCode;

use clap::Parser;
use kiln_core::driver::{Control, Device};
use kiln_runtime::{LogArgs, StepArgs, main_with, shutdown_flag};

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
    device: Device,
    /// Argo fan-out, planner: write the next round's unfinished trials to
    /// DIR/trials.json (a list for `withParam`), DIR/last (`true` when no round follows)
    /// and DIR/round.json, then exit. Nothing is trained.
    #[arg(long, value_name = "DIR", conflicts_with = "trial")]
    plan_round: Option<std::path::PathBuf>,
    /// Argo fan-out, trial pod: train only trial INDEX of the round the search stands at
    /// and keep it in the cache (the `tune` step then collects the kept trials).
    #[arg(long, value_name = "INDEX")]
    trial: Option<usize>,
    /// The planned parameters of `--trial` (the planner's JSON); the pod refuses to train
    /// when it samples something else.
    #[arg(long, value_name = "JSON", requires = "trial")]
    trial_params: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async {
        let options = Control {
            device: cli.device,
            stop: shutdown_flag(),
        };
        let ctx = cli.step.context().await?;
        if ctx.spec.spec.tune.is_none() {
            // The pipeline DAG always has a tune task; without a search it does nothing.
            tracing::info!("the spec has no `tune:` section: nothing to search");
            return Ok(());
        }
        if let Some(dir) = &cli.plan_round {
            let plan = kiln_tune::plan_next_round(&ctx).await?;
            write_plan(dir, &plan)?;
            tracing::info!(
                round = plan.round,
                rounds = plan.rounds,
                trials = plan.trials.len(),
                last = plan.last,
                "round planned"
            );
            return Ok(());
        }
        if let Some(index) = cli.trial {
            kiln_tune::run_one_trial(&ctx, &options, index, cli.trial_params.as_deref()).await?;
            return Ok(());
        }
        kiln_runtime::driver(options)
            .run(&kiln_tune::Tune, &ctx)
            .await
            .map(drop)
    })
}

/// The planner's output files, as Argo output parameters read them.
fn write_plan(dir: &std::path::Path, plan: &kiln_tune::RoundPlan) -> kiln_core::Result<()> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| kiln_core::Error::io(format!("writing {}", path.display()), e))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| kiln_core::Error::io(format!("creating {}", dir.display()), e))?;
    let text = |v: serde_json::Result<String>| v.unwrap_or_default();
    write("trials.json", text(serde_json::to_string(&plan.trials)))?;
    write("round.json", text(serde_json::to_string_pretty(plan)))?;
    write("last", plan.last.to_string())
}
