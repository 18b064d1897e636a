//! `kiln`: the whole pipeline locally, or any one step.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_core::driver::Control;
use kiln_core::output::write_stdout;
use kiln_core::spec::LoadedSpec;
use kiln_runtime::{LogArgs, StepArgs, main_with, shutdown_flag};

/// Kiln: raw tabular data to a validated, fair, registered model.
///
/// Exit codes: 0 ok, 2 usage/spec/input error, 3 a quality gate failed,
/// 75 store or service unreachable (retryable), 1 anything else.
#[derive(Debug, Parser)]
#[command(name = "kiln", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every step in DAG order, skipping steps whose inputs are unchanged.
    Run {
        #[command(flatten)]
        args: StepArgs,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Prepare raw data: typed split tables, fitted transform, profile (as `kiln-prepare`).
    Prepare(kiln_runtime::PrepareArgs),
    /// Check data with a Great Expectations suite and drift, in a run or on any table (as `kiln-validate`).
    Validate(kiln_validate::args::ValidateArgs),
    /// Search the train section's hyperparameters (the spec's `tune:` section) (as `kiln-tune`).
    Tune {
        #[command(flatten)]
        args: StepArgs,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Train the model on prepare's outputs, with checkpoints (as `kiln-train`).
    Train {
        #[command(flatten)]
        args: StepArgs,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Evaluate the model on the test split, or audit any predictions file (as `kiln-evaluate`).
    Evaluate(kiln_evaluate::args::EvaluateArgs),
    /// Fairness by sensitive attribute, with the spec's gates, or of any predictions file (as `kiln-fairness`).
    Fairness(kiln_fairness::args::FairnessArgs),
    /// Apply the registration gates and register the model (as `kiln-register`).
    Register(StepArgs),
    /// Point an alias (default `production`) at a model version: the registry side of a deploy.
    Promote(kiln_register::args::PromoteArgs),
    /// Move an alias back to the version it pointed at before: the registry side of a rollback.
    Rollback(kiln_register::args::RollbackArgs),
    /// Serve a model over KServe V1, V2 REST and V2 gRPC (as `kiln-serve`).
    Serve(Box<kiln_serve::args::ServeArgs>),
    /// SLOs: generate Sloth-compatible Prometheus rules from an SLO spec, or check budgets against Prometheus (as `kiln-slo`).
    #[command(subcommand)]
    Slo(kiln_slo::args::SloCommand),
    /// Canary rollout: a new version gets 10 % of the traffic, is checked against the stable one from Prometheus, then promoted or rolled back (as `kiln-rollout`).
    #[command(subcommand)]
    Rollout(kiln_rollout::args::RolloutCommand),
    /// Verify a model's OMS signature (`model.sig`) against a public key: exit 0 when
    /// every file verifies, else 2 naming the first changed, added or removed file.
    Verify {
        #[command(flatten)]
        target: ModelArg,
        /// The PEM public key (P-256, P-384 or P-521) to verify with.
        #[arg(long, value_name = "PEM")]
        public_key: String,
    },
    /// Trace a registered or served model back to the raw files it was made from: every
    /// step of the run that trained it, with what each read (URIs, sha256, sizes).
    Lineage {
        #[command(flatten)]
        target: ModelArg,
    },
    /// Write one self-contained HTML report of a run: validation, metrics, fairness, registration.
    Report {
        /// The run root (a folder or a store URI).
        run: String,
    },
    /// Work with pipeline specs.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Say whether a step would be a cache hit, and why not.
    ExplainCache {
        /// The step (prepare, validate, tune, train, evaluate, fairness, register).
        step: String,
        #[command(flatten)]
        args: StepArgs,
    },
}

/// A model to look at, and how to print what is found.
#[derive(Debug, clap::Args)]
struct ModelArg {
    /// The model: a bundle folder or URI, `name@alias` or `name/version` in the local
    /// registry, or `models:/name@alias` in MLflow.
    model: String,
    /// The local registry for `name@alias` and `name/version`.
    #[arg(
        long,
        env = "KILN_REGISTRY",
        default_value = "kiln-runs/registry",
        value_name = "URI"
    )]
    registry: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct DeviceArg {
    /// Where to train: `cpu` (burn ndarray) or `cuda` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", env = "KILN_DEVICE")]
    device: kiln_core::driver::Device,
}

impl DeviceArg {
    /// The driver's controls; listens for SIGTERM (must run inside the runtime).
    fn control(&self) -> Control {
        Control {
            device: self.device,
            stop: shutdown_flag(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum SpecCommand {
    /// Print the JSON Schema of the spec file (for editors and CI).
    Schema,
    /// Check a spec and print it as resolved JSON (variables expanded, overrides applied).
    Check {
        /// The spec file or URI.
        #[arg(long)]
        spec: String,
        /// Override a spec value, e.g. `--set split.seed=7` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    main_with(&cli.log, || async move {
        match cli.command {
            Command::Run { args, device } => {
                let ctx = args.context().await?;
                let result = kiln_cli::run_pipeline(&ctx, device.control()).await;
                // The report covers whatever ran, gate failures included.
                let report = kiln_cli::report::write_report(&ctx.run).await;
                let reports = match result {
                    Ok(reports) => reports,
                    Err(e) => {
                        if let Ok(path) = &report {
                            tracing::info!(report = %path, "run report written");
                        }
                        return Err(e);
                    }
                };
                let mut summary = kiln_cli::format_summary(&reports, ctx.run.uri());
                summary.push_str(&format!("report: {}\n", report?));
                write_stdout(&summary)
            }
            Command::Prepare(args) => {
                let ctx = kiln_prepare::reproduce::context(
                    &args.step.options(),
                    args.reproduce.as_deref(),
                )
                .await?;
                kiln_cli::run_step("prepare", &ctx, Control::default())
                    .await
                    .map(drop)
            }
            Command::Tune { args, device } => {
                let ctx = args.context().await?;
                kiln_cli::run_step("tune", &ctx, device.control())
                    .await
                    .map(drop)
            }
            Command::Train { args, device } => {
                let ctx = args.context().await?;
                kiln_cli::run_step("train", &ctx, device.control())
                    .await
                    .map(drop)
            }
            Command::Validate(args) => args.execute().await,
            Command::Evaluate(args) => args.execute().await,
            Command::Report { run } => {
                let store = kiln_core::ArtifactStore::open(&run)?;
                let path = kiln_cli::report::write_report(&store).await?;
                write_stdout(&format!("{path}\n"))
            }
            Command::Register(args) => {
                let ctx = args.context().await?;
                kiln_cli::run_step("register", &ctx, Control::default())
                    .await
                    .map(drop)
            }
            Command::Promote(args) => {
                let registry = kiln_register::open_registry(args.registry.as_deref())?;
                let change =
                    kiln_register::promote(&registry, &args.model, &args.version, &args.alias)
                        .await?;
                write_stdout(&kiln_register::describe(&change))
            }
            Command::Rollback(args) => {
                let registry = kiln_register::open_registry(args.registry.as_deref())?;
                let change = kiln_register::rollback(&registry, &args.model, &args.alias).await?;
                write_stdout(&kiln_register::describe(&change))
            }
            Command::Verify { target, public_key } => {
                let verified =
                    kiln_cli::verify::verify_model(&target.model, &target.registry, &public_key)
                        .await?;
                if target.json {
                    write_stdout(&format!("{}\n", pretty(&verified.to_json())?))
                } else {
                    write_stdout(&verified.summary())
                }
            }
            Command::Lineage { target } => {
                let lineage =
                    kiln_cli::lineage::model_lineage(&target.model, &target.registry).await?;
                if target.json {
                    write_stdout(&format!("{}\n", pretty(&lineage)?))
                } else {
                    write_stdout(&lineage.describe())
                }
            }
            Command::Fairness(args) => args.execute().await,
            Command::Serve(args) => kiln_serve::serve(args.options(), None, |_| {}).await,
            Command::Slo(command) => kiln_slo::execute(&command).await.map_err(Into::into),
            Command::Rollout(command) => kiln_rollout::execute(&command).await.map_err(Into::into),
            Command::Spec(SpecCommand::Schema) => {
                let schema = kiln_core::PipelineSpec::json_schema();
                write_stdout(&format!("{}\n", pretty(&schema)?))
            }
            Command::Spec(SpecCommand::Check { spec, overrides }) => {
                let loaded = LoadedSpec::load(&spec, &overrides).await?;
                write_stdout(&format!("{}\n", pretty(&loaded.spec)?))
            }
            Command::ExplainCache { step, args } => {
                let ctx = args.context().await?;
                let decision = kiln_cli::explain_cache(&step, &ctx).await?;
                write_stdout(&format!("{step}: {}\n", decision.explain()))
            }
        }
    })
}

fn pretty<T: serde::Serialize>(value: &T) -> kiln_core::Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| kiln_core::Error::Invalid(e.to_string()))
}
