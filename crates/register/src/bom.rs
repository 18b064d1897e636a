//! The ML-BOM of a registered version: a CycloneDX 1.6 JSON document that names the
//! model (a `machine-learning-model` component with a model card), the data it was
//! made from, the settings that trained it, how well and how fairly it decides, the
//! libraries that trained it, and its signature.
//!
//! The model card carries evaluate's metrics (with their bootstrap intervals) as
//! performance metrics, and fairness's per-group results, gates and the decision
//! policy as considerations. The datasets are the raw input files prepare read and the
//! prepared tables train read, each with its URI, sha256 and size; the libraries are
//! the train binary's `Cargo.lock` graph, each with its package URL and the registry's
//! checksum. The signature is an external reference of type `digital-signature`.

use std::collections::BTreeMap;

use kiln_core::contracts::bundle::BundleMetadata;
use kiln_core::contracts::evaluate::EvaluationReport;
use kiln_core::contracts::fairness::FairnessReport;
use kiln_core::decision::DecisionPolicy;
use kiln_core::manifest::InputRecord;
use serde_json::{Value, json};

/// The BOM's file name, beside a version's bundle.
pub const BOM_FILE: &str = "bom.cdx.json";

/// The ML-BOM a run's register step stored (`register/bom.cdx.json`), if it registered
/// a new version: the one reader of the file (a CycloneDX document, kept as JSON).
pub async fn read(run: &kiln_core::store::ArtifactStore) -> kiln_core::Result<Option<Value>> {
    let path = format!("register/{BOM_FILE}");
    if !run.exists(&path).await? {
        return Ok(None);
    }
    #[expect(clippy::disallowed_methods, reason = "register reads its own ML-BOM")]
    let bom = run.get_json(&path).await?;
    Ok(Some(bom))
}

/// What the BOM is made from.
pub struct BomInputs<'a> {
    pub model: &'a str,
    pub version: &'a str,
    /// Where the registered bundle is.
    pub bundle_uri: &'a str,
    /// The version's tags (hashes, run, spec fingerprint, signature digests).
    pub tags: &'a BTreeMap<String, String>,
    pub metadata: &'a BundleMetadata,
    /// The training settings (`training_config.json`).
    pub training_config: &'a Value,
    /// The raw files prepare read.
    pub raw_data: &'a [InputRecord],
    pub metrics: &'a EvaluationReport,
    /// Fairness's report, when the spec audits fairness.
    pub fairness: Option<&'a FairnessReport>,
    pub policy: &'a DecisionPolicy,
    /// The signature file's URI, when the version is signed.
    pub signature_uri: Option<String>,
    /// When the version was registered (RFC 3339).
    pub timestamp: &'a str,
}

/// A deterministic serial number: the same version of the same bundle always gets
/// the same one.
fn serial_number(parts: &[&str]) -> String {
    format!(
        "urn:uuid:{}",
        kiln_core::uuid::from_name(&parts.join("\u{0}"))
    )
}

fn sha256_hash(hex: &str) -> Value {
    json!({"alg": "SHA-256", "content": hex})
}

fn property(name: &str, value: impl ToString) -> Value {
    json!({"name": name, "value": value.to_string()})
}

/// `key.sub=value` properties of a JSON object, flattened.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push(property(prefix, s)),
        other => out.push(property(prefix, other)),
    }
}

fn data_component(record: &InputRecord, role: &str) -> Value {
    let name = record.uri.rsplit('/').next().unwrap_or(&record.name);
    json!({
        "type": "data",
        "bom-ref": format!("data:{role}:{}", record.name),
        "name": name,
        "hashes": [sha256_hash(&record.hash.sha256)],
        "data": [{
            "type": "dataset",
            "name": record.name,
            "contents": {"url": record.uri},
            "description": format!("{role} data, {} bytes", record.hash.size),
        }],
        "properties": [
            property("kiln:role", role),
            property("kiln:size_bytes", record.hash.size),
            // The data version: the content hash (no table versioning for files).
            property("kiln:data_version", format!("sha256:{}", record.hash.sha256)),
        ],
    })
}

fn library_component(library: &kiln_core::contracts::bundle::Library) -> Value {
    let bom_ref = format!("pkg:cargo/{}@{}", library.name, library.version);
    let mut component = json!({
        "type": "library",
        "bom-ref": bom_ref,
        "name": library.name,
        "version": library.version,
    });
    match &library.source {
        Some(source) if source.starts_with("registry+") => {
            component["purl"] = json!(bom_ref);
        }
        Some(source) => component["properties"] = json!([property("kiln:source", source)]),
        // Kiln's own crates, built from this repository.
        None => component["group"] = json!("kiln"),
    }
    if let Some(checksum) = &library.checksum {
        component["hashes"] = json!([sha256_hash(checksum)]);
    }
    component
}

fn performance_metrics(m: &EvaluationReport) -> Vec<Value> {
    let slice = format!("test split, {} rows, threshold {}", m.rows, m.threshold);
    let interval = |name: &str| {
        let b = m.bootstrap.as_ref()?;
        let i = match name {
            "roc_auc" => b.roc_auc.as_ref(),
            "f1" => b.f1.as_ref(),
            _ => None,
        }?;
        Some(json!({"lowerBound": i.low.to_string(), "upperBound": i.high.to_string()}))
    };
    let mut named: Vec<(&str, Option<f64>)> = vec![
        ("accuracy", Some(m.accuracy)),
        ("precision", Some(m.precision)),
        ("recall", Some(m.recall)),
        ("f1", Some(m.f1)),
        ("roc_auc", m.roc_auc),
        ("average_precision", m.average_precision),
        ("log_loss", Some(m.log_loss)),
        ("brier", Some(m.brier)),
    ];
    named.retain(|(_, v)| v.is_some_and(f64::is_finite));
    named
        .into_iter()
        .map(|(name, value)| {
            let mut metric = json!({
                "type": name,
                "value": value.unwrap_or_default().to_string(),
                "slice": slice,
            });
            if let Some(ci) = interval(name) {
                metric["confidenceInterval"] = ci;
            }
            metric
        })
        .collect()
}

/// An enum as the spec writes it (its serde name).
fn spec_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn fairness_assessments(f: &FairnessReport, policy: &DecisionPolicy) -> Vec<Value> {
    let mitigation = match &policy.groups {
        Some(g) => format!(
            "group thresholds on {} chosen on {} for {} >= {}: {}; other or missing groups get {}",
            g.attribute,
            g.chosen_on,
            spec_name(&g.constraint),
            g.min_ratio,
            g.thresholds
                .iter()
                .map(|(group, t)| format!("{group} {t:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
            g.default_threshold
        ),
        None => format!("none: one threshold, {}, for every group", policy.threshold),
    };
    let mut out = Vec::new();
    for attribute in &f.attributes {
        let gates: Vec<String> = f
            .gates
            .iter()
            .filter(|g| g.attribute == attribute.attribute)
            .map(|g| {
                format!(
                    "{} {} ({})",
                    spec_name(&g.metric),
                    g.observed.map_or("n/a".into(), |o| format!("{o:.4}")),
                    if g.passed { "passed" } else { "FAILED" }
                )
            })
            .collect();
        for group in attribute.groups.iter().filter(|g| !g.excluded) {
            let rate = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
            out.push(json!({
                "groupAtRisk": format!("{}={}", attribute.attribute, group.group),
                "benefits": format!(
                    "{} test rows, selection rate {:.4}, true positive rate {}, precision {}",
                    group.count, group.selection_rate, rate(group.tpr), rate(group.precision)
                ),
                "harms": format!(
                    "false positive rate {}; gates on {}: {}",
                    rate(group.fpr),
                    attribute.attribute,
                    if gates.is_empty() { "none".to_string() } else { gates.join("; ") }
                ),
                "mitigationStrategy": mitigation,
            }));
        }
    }
    out
}

/// The ML-BOM of one registered version.
pub fn ml_bom(i: &BomInputs<'_>) -> Value {
    let tag = |k: &str| i.tags.get(k).cloned().unwrap_or_default();
    let model_ref = format!("model:{}@{}", i.model, i.version);
    let prepared: Vec<Value> = i
        .metadata
        .data
        .iter()
        .map(|r| data_component(r, "prepared"))
        .collect();
    let raw: Vec<Value> = i
        .raw_data
        .iter()
        .map(|r| data_component(r, "raw"))
        .collect();
    let libraries: Vec<Value> = i.metadata.libraries.iter().map(library_component).collect();
    let dataset_refs: Vec<Value> = raw
        .iter()
        .chain(&prepared)
        .map(|c| json!({"ref": c["bom-ref"]}))
        .collect();
    let mut properties = vec![
        property("kiln:bundle_sha256", tag("kiln.bundle_sha256")),
        property("kiln:run_uri", tag("kiln.run_uri")),
        property("kiln:spec_fingerprint", tag("kiln.spec_fingerprint")),
        property("kiln:bundle_uri", i.bundle_uri),
        property(
            "kiln:label",
            format!("{} = {}", i.metadata.label, i.metadata.positive_class),
        ),
    ];
    if let Some(revision) = i.tags.get("kiln.source_revision") {
        properties.push(property("kiln:source_revision", revision));
    }
    flatten("kiln:train", i.training_config, &mut properties);
    let policy = serde_json::to_string(i.policy).unwrap_or_default();
    let mut model = json!({
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": i.model,
        "version": i.version,
        "hashes": [sha256_hash(&tag("kiln.model_sha256"))],
        "properties": properties,
        "modelCard": {
            "modelParameters": {
                "approach": {"type": "supervised"},
                "task": "binary-classification",
                "architectureFamily": "multilayer perceptron",
                "modelArchitecture": "feed-forward network over the bundle's fitted transform (burn)",
                "datasets": dataset_refs,
                "inputs": [{"format": "tabular row"}],
                "outputs": [{"format": "probability and decision"}],
            },
            "quantitativeAnalysis": {"performanceMetrics": performance_metrics(i.metrics)},
            "considerations": {
                "fairnessAssessments": i.fairness.map(|f| fairness_assessments(f, i.policy)).unwrap_or_default(),
                "performanceTradeoffs": i.fairness
                    .and_then(|f| f.mitigation.as_ref())
                    .and_then(|m| m.accuracy_cost)
                    .map(|cost| vec![format!("mitigation costs {cost:.4} accuracy on the test rows")])
                    .unwrap_or_default(),
            },
            "properties": [
                property("kiln:decision_policy", policy),
                property(
                    "kiln:fairness_gates_passed",
                    i.fairness.map_or("not audited".to_string(), |f| f.passed.to_string()),
                ),
            ],
        },
    });
    if let Some(uri) = &i.signature_uri {
        model["externalReferences"] = json!([{
            "type": "digital-signature",
            "url": uri,
            "comment": format!(
                "OpenSSF Model Signing v1.0 signature of the bundle (OMS root sha256 {}, signing key sha256 {})",
                tag("kiln.signature.root_sha256"),
                tag("kiln.signature.key_hint")
            ),
            "hashes": [sha256_hash(&tag("kiln.signature.sha256"))],
        }]);
    }
    let library_refs: Vec<Value> = libraries.iter().map(|c| c["bom-ref"].clone()).collect();
    let mut depends: Vec<Value> = raw
        .iter()
        .chain(&prepared)
        .map(|c| c["bom-ref"].clone())
        .collect();
    depends.extend(library_refs);
    let mut components = vec![model];
    components.extend(raw);
    components.extend(prepared);
    components.extend(libraries);
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(&[i.model, i.version, &tag("kiln.bundle_sha256")]),
        "version": 1,
        "metadata": {
            "timestamp": i.timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": "kiln",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "machine-learning-model",
                "bom-ref": format!("{model_ref}#bom"),
                "name": i.model,
                "version": i.version,
            },
        },
        "components": components,
        "dependencies": [{"ref": model_ref, "dependsOn": depends}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_number_is_a_urn_that_names_the_version() {
        let a = serial_number(&["m", "1", "ab"]);
        assert_eq!(a, serial_number(&["m", "1", "ab"]));
        assert_ne!(a, serial_number(&["m", "2", "ab"]));
        // The parts are kept apart: ("m1", "") is not ("m", "1").
        assert_ne!(serial_number(&["m1", ""]), serial_number(&["m", "1"]));
        assert!(a.starts_with("urn:uuid:") && a.len() == 9 + 36, "{a}");
    }

    #[test]
    fn nested_settings_flatten_to_properties() {
        let mut out = Vec::new();
        flatten(
            "kiln:train",
            &json!({"lr": 0.01, "layers": {"hidden": [64, 32]}, "x": null}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                property("kiln:train.layers.hidden", "[64,32]"),
                property("kiln:train.lr", "0.01"),
            ]
        );
    }
}
