//! The command-line flags of `kiln-validate` and `kiln validate` (feature `cli`).

use kiln_core::driver::Control;
use kiln_core::output::{write_stderr, write_stdout};
use kiln_core::spec::DriftSpec;
use kiln_core::{Error, Result};

use crate::{Validate, load_reference, load_suite, profile_table, validate_table};

/// Command-line arguments shared by `kiln-validate` and `kiln validate`: a run step
/// (`--spec`), a standalone validation (`--suite` and `--data`), or profiling
/// (`--profile --data`).
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// `--spec`, `--run`, `--force`, `--set`: validate a run's prepared tables.
    #[command(flatten)]
    pub step: kiln_runtime::OptionalStepArgs,
    // The id is the one `OptionalStepArgs` conflicts with (its standalone input).
    /// A table to validate outside a run: Parquet, or CSV with a header.
    #[arg(long = "data", id = "predictions", value_name = "FILE|URI")]
    pub data: Option<String>,
    /// With --data: the expectation suite (GE 1.x or 0.x JSON).
    #[arg(long, value_name = "FILE|URI", requires = "predictions", required_unless_present_any = ["profile", "spec"])]
    pub suite: Option<String>,
    /// With --data: write the validation result JSON here instead of stdout.
    #[arg(long, value_name = "FILE", requires = "suite")]
    pub result: Option<std::path::PathBuf>,
    /// With --data: also check drift against this profile (prepare's profile.json).
    #[arg(long, value_name = "FILE|URI", requires = "suite")]
    pub reference: Option<String>,
    /// Report unknown expectation types as skipped instead of failing.
    #[arg(long)]
    pub allow_unknown: bool,
    /// With --data: print a suite inferred from the table (GE 1.x JSON) to stdout.
    #[arg(long, requires = "predictions", conflicts_with = "suite")]
    pub profile: bool,
}

impl ValidateArgs {
    /// Runs what the arguments ask for.
    pub async fn execute(self) -> Result<()> {
        if self.step.spec.is_some() {
            let mut ctx = self.step.context().await?;
            if self.allow_unknown
                && let Some(v) = &mut ctx.spec.spec.validation
            {
                v.allow_unknown = true;
            }
            return kiln_runtime::driver(Control::default())
                .run(&Validate, &ctx)
                .await
                .map(drop);
        }
        let data = self.data.as_deref().unwrap_or_default();
        if self.profile {
            let name = std::path::Path::new(data)
                .file_stem()
                .map_or("suite".to_string(), |s| s.to_string_lossy().into_owned());
            let suite = profile_table(data, &name).await?;
            return write_stdout(&suite.to_json());
        }
        let suite_uri = self.suite.as_deref().unwrap_or_default();
        let suite = load_suite(suite_uri).await?;
        let drift_spec = DriftSpec::default();
        let reference = match &self.reference {
            Some(uri) => Some((load_reference(uri).await?, uri.as_str(), &drift_spec)),
            None => None,
        };
        let (result, drift) =
            validate_table(&suite, suite_uri, data, self.allow_unknown, reference).await?;
        let mut table = result.table(data);
        if let Some(d) = &drift {
            table.push_str(&d.table());
        }
        write_stderr(&table)?;
        let mut json = serde_json::to_value(&result).map_err(|e| Error::Invalid(e.to_string()))?;
        if let (Some(d), Some(map)) = (&drift, json.as_object_mut()) {
            map.insert(
                "drift".into(),
                serde_json::to_value(d).map_err(|e| Error::Invalid(e.to_string()))?,
            );
        }
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| Error::Invalid(e.to_string()))? + "\n";
        match &self.result {
            Some(path) => write_file(path, text.as_bytes())?,
            None => write_stdout(&text)?,
        }
        let mut failures: Vec<String> = result
            .blocking_failures()
            .iter()
            .map(|r| r.describe())
            .collect();
        if let Some(d) = &drift {
            failures.extend(
                d.drifted()
                    .iter()
                    .map(|c| format!("`{}` drifted", c.column)),
            );
        }
        if !failures.is_empty() {
            return Err(Error::Gate {
                summary: format!("{} data quality check(s) failed", failures.len()),
                failures,
            });
        }
        Ok(())
    }
}

/// Writes a local file whole or not at all (a temporary file renamed into place).
fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
