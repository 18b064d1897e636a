//! `kiln lineage`: a registered or served model traced back to the raw files it was
//! made from, through the manifests of the run that trained it.

use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use kiln_lineage::chain::{Chain, describe, trace};
use kiln_registry::{ModelReference, locate};
use serde::Serialize;

/// A model and its chain.
#[derive(Debug, Serialize)]
pub struct ModelLineage {
    /// What was asked about (`adult-income version 1 (local registry)`, or a bundle).
    pub model: String,
    /// The registered model.bin's sha256 and bundle digest, when a registry knows them.
    pub model_sha256: Option<String>,
    pub bundle_sha256: Option<String>,
    /// Whether the run's trained model.bin is still the registered one (a run folder
    /// trained again since would describe another model).
    pub run_matches: Option<bool>,
    pub chain: Chain,
}

/// Traces `reference` (a registry reference or a bundle folder/URI).
pub async fn model_lineage(reference: &str, local_registry: &str) -> Result<ModelLineage> {
    let parsed = ModelReference::parse(reference)?;
    let (model, run_uri, model_sha256, bundle_sha256) = match locate(&parsed, local_registry)
        .await?
    {
        Some(located) => {
            let tags = located
                .registry
                .tags(&located.model, &located.version)
                .await?;
            let run = tags.get("kiln.run_uri").cloned().ok_or_else(|| {
                Error::usage(format!(
                    "{}: the version records no run (tag kiln.run_uri)",
                    located.describe()
                ))
            })?;
            (
                located.describe(),
                run,
                tags.get("kiln.model_sha256").cloned(),
                tags.get("kiln.bundle_sha256").cloned(),
            )
        }
        None => {
            // A bundle folder: its metadata names the prepared tables it was trained on,
            // which sit in the run's prepare/ folder.
            let bundle = ArtifactStore::open(reference)?;
            let metadata: kiln_core::contracts::bundle::BundleMetadata =
                kiln_core::contracts::read_at(&bundle, kiln_model::bundle::METADATA)
                    .await
                    .map_err(|e| Error::usage(format!("{reference}: not a model bundle ({e})")))?;
            let run = metadata
                .data
                .iter()
                .find_map(|d| {
                    d.uri
                        .rsplit_once("/prepare/")
                        .map(|(run, _)| run.to_string())
                })
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{reference}: the bundle's metadata names no prepared table to trace"
                    ))
                })?;
            (reference.to_string(), run, None, None)
        }
    };
    let run = ArtifactStore::open(&run_uri)?;
    let from = if run.exists("register/manifest.json").await? {
        "register"
    } else {
        "train"
    };
    let chain = trace(&run, from).await?;
    let trained = chain
        .step("train")
        .and_then(|t| t.outputs.iter().find(|o| o.name == "model/model.bin"))
        .map(|o| o.sha256.clone());
    let run_matches = model_sha256
        .as_ref()
        .map(|registered| trained.as_ref() == Some(registered));
    Ok(ModelLineage {
        model,
        model_sha256,
        bundle_sha256,
        run_matches,
        chain,
    })
}

impl ModelLineage {
    /// The lineage as text.
    pub fn describe(&self) -> String {
        let mut out = format!("{}\n", self.model);
        if let Some(sha) = &self.model_sha256 {
            out.push_str(&format!("  model.bin sha256 {sha}\n"));
        }
        if let Some(sha) = &self.bundle_sha256 {
            out.push_str(&format!("  bundle sha256    {sha}\n"));
        }
        if self.run_matches == Some(false) {
            out.push_str(
                "  warning: the run folder has been trained again since; its files describe another model\n",
            );
        }
        out.push_str(&describe(&self.chain));
        out
    }
}
