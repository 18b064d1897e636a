//! Pinning a rendered manifest (`kiln rollout pin`): every InferenceService whose
//! kiln-serve container loads a model by alias (`models:/adult-income@staging`) gets the
//! version the alias points at now and that version's bundle digest, so the cluster
//! never resolves an alias itself. An alias resolved at pod start would let pods scaled
//! up after an alias move serve another version inside the same revision, where the
//! canary analysis cannot see it; kiln-serve refuses a bundle whose digest differs.

use kiln_registry::{ModelReference, Registry, Selector};
use serde_json::{Value, json};

use crate::error::{Result, RolloutError};
use crate::router::kserve::{Pin, current_model, pin_patch};
use crate::router::patch::json_patch;

/// The manifest with every alias pinned, and one line per pin made.
pub async fn pin_manifest(
    text: &str,
    file: &str,
    registry: &Registry,
    container: &str,
) -> Result<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut pins = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let mut doc: Value = serde::Deserialize::deserialize(document)
            .map_err(|e| RolloutError::Usage(format!("{file}: not YAML: {e}")))?;
        if doc["kind"] == "InferenceService"
            && let Some(reference) = current_model(&doc, container)
        {
            let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
            if let Some(line) = pin_one(&mut doc, &reference, registry, container)
                .await
                .map_err(|e| RolloutError::Usage(format!("{file}: InferenceService {name}: {e}")))?
            {
                pins.push(format!("InferenceService {name}: {line}"));
            }
        }
        if !doc.is_null() {
            out.push(doc);
        }
    }
    let mut text = String::new();
    for doc in &out {
        let yaml = serde_norway::to_string(doc)
            .map_err(|e| RolloutError::Usage(format!("{file}: cannot write YAML: {e}")))?;
        text.push_str("---\n");
        text.push_str(&yaml);
    }
    Ok((text, pins))
}

/// Pins one InferenceService in place; what it did, or `None` for a bundle URI (no
/// registry to pin from).
async fn pin_one(
    doc: &mut Value,
    reference: &str,
    registry: &Registry,
    container: &str,
) -> std::result::Result<Option<String>, String> {
    let parsed = ModelReference::parse(reference).map_err(|e| e.to_string())?;
    let (model, selector, mlflow) = match parsed {
        ModelReference::Mlflow { model, selector } => (model, selector, true),
        ModelReference::Local { model, selector } => (model, selector, false),
        ModelReference::Bundle(_) => return Ok(None),
    };
    let version = match &selector {
        Selector::Version(v) => v.clone(),
        Selector::Alias(alias) => registry
            .alias(&model, alias)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("`{reference}`: alias `{alias}` of {model} points at no version")
            })?,
    };
    let digest = registry
        .bundle_sha256(&model, &version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("`{reference}`: version {version} of {model} has no recorded bundle digest (registered before digests were kept); register it again or pin by hand")
        })?;
    let model_ref = if mlflow {
        format!("models:/{model}/{version}")
    } else {
        format!("{model}/{version}")
    };
    let pin = Pin {
        model_ref: &model_ref,
        bundle_sha256: Some(&digest),
    };
    let marker = json!({"model": model_ref, "bundle_sha256": digest, "before": null});
    // The resource version of a rendered manifest is not the cluster's: no guard on it.
    if let Some(meta) = doc["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let patch = pin_patch(doc, container, &pin, None, &marker)?;
    json_patch(doc, &patch)?;
    Ok(Some(format!(
        "{reference} -> {model_ref}, bundle sha256 {digest}"
    )))
}
