//! Reproducing an earlier run's prepare outputs after its sources moved on
//! (`kiln prepare --reproduce <run>`): each Delta table is read at the version that
//! run's manifest pinned, and every other input must still have the sha256 it had.
//! prepare is deterministic, so the same inputs give byte-identical tables.

use kiln_core::context::StepOptions;
use kiln_core::manifest::StepManifest;
use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};

use crate::STEP;

/// The step's context: `options` as given, or with `--reproduce <run>` the earlier
/// run's Delta versions pinned and its inputs checked.
pub async fn context(
    options: &StepOptions,
    reproduce: Option<&str>,
) -> Result<kiln_core::context::StepContext> {
    let Some(run) = reproduce else {
        return options.context().await;
    };
    let earlier = earlier_manifest(run).await?;
    let ctx = pin_versions(options, &earlier).context().await?;
    check_inputs(&ctx, &earlier).await?;
    tracing::info!(run, "reproducing: the inputs are the ones that run read");
    Ok(ctx)
}

/// The earlier run's prepare manifest (`run` is its run root).
pub async fn earlier_manifest(run: &str) -> Result<StepManifest> {
    let dir = ArtifactStore::open(run)?.child(STEP);
    StepManifest::load(&dir).await?.ok_or_else(|| {
        Error::usage(format!(
            "--reproduce {run}: no completed prepare there (no {})",
            dir.uri_of(kiln_core::manifest::MANIFEST)
        ))
    })
}

/// `options` with every Delta table pinned at the version the earlier run read.
pub fn pin_versions(options: &StepOptions, earlier: &StepManifest) -> StepOptions {
    let mut pinned = options.clone();
    for (table, version) in crate::query::delta_versions(&earlier.inputs) {
        pinned
            .overrides
            .push(format!("data.tables.{table}.version={version}"));
    }
    pinned
}

/// Checks that the inputs prepare would read now are the ones the earlier run read:
/// the same names with the same sha256 (a Delta table pinned, a file unchanged).
pub async fn check_inputs(
    ctx: &kiln_core::context::StepContext,
    earlier: &StepManifest,
) -> Result<()> {
    let now = crate::plan(ctx).await?.key.inputs;
    for before in &earlier.inputs {
        match now.iter().find(|input| input.name == before.name) {
            Some(input) if input.hash.sha256 == before.hash.sha256 => {}
            Some(input) => {
                return Err(Error::usage(format!(
                    "--reproduce: {} changed since that run (sha256 {} then, {} now); only a Delta table keeps its earlier versions",
                    input.uri, before.hash.sha256, input.hash.sha256
                )));
            }
            None => {
                return Err(Error::usage(format!(
                    "--reproduce: that run read {} ({}), which the spec does not read now",
                    before.name, before.uri
                )));
            }
        }
    }
    if let Some(extra) = now
        .iter()
        .find(|input| !earlier.inputs.iter().any(|b| b.name == input.name))
    {
        return Err(Error::usage(format!(
            "--reproduce: the spec now reads {} ({}), which that run did not",
            extra.name, extra.uri
        )));
    }
    Ok(())
}
