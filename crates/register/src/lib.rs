//! # kiln-register
//!
//! The last step: reads the validate, evaluate and fairness outputs, applies the gates
//! of the spec's `registry` section — validation passed, each metric at or above its
//! minimum, every fairness gate passed, and optionally better than the version holding
//! the champion alias (`production`) on this run's test set by a margin — and writes
//! `<run>/register/decision.json` with every gate, threshold, observed value and
//! verdict. When all pass, the model bundle becomes a model version — in MLflow when
//! `MLFLOW_TRACKING_URI` is set (artifacts uploaded to the run, version created with the
//! run id and tags, waited on until READY), else in a local registry beside the run
//! folder — and gets the candidate alias (`staging`). A failed gate is exit 3 with one
//! line per failed gate, and nothing is registered. Registering the same run twice
//! reuses its version.
//!
//! [`promote`] and [`rollback`] move aliases, keeping each alias's history.

use std::collections::BTreeMap;

use kiln_core::contracts::prepare;
use kiln_core::contracts::{
    self, bundle::BundleMetadata, evaluate::EvaluationReport, fairness::FairnessReport,
    validate::ValidateReport,
};
use serde_json::{Value, json};

use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::decision::{DECISION_POLICY, DecisionPolicy, GROUP_THRESHOLDS, GroupThresholds};
use kiln_core::driver::{Control, PipelineStep};
use kiln_core::manifest::{InputRecord, StepManifest};
use kiln_core::spec::RegistrySpec;
use kiln_core::step::{Step, StepOutcome, StepWriter};
use kiln_core::{Error, Result};

#[cfg(feature = "cli")]
pub mod args;

pub use kiln_registry::{AliasChange, Aliases, LocalVersion, Registered, Registry};

/// The step's name and folder.
pub mod bom;

pub const STEP: &str = "register";
/// The spec sections register reads.
pub const SPEC_SECTIONS: &[&str] = &["registry", "evaluate", "label"];
pub const DECISION: &str = "decision.json";

pub use kiln_core::contracts::register::{Decision, GateVerdict};

fn registry_spec(ctx: &StepContext) -> Result<&RegistrySpec> {
    ctx.spec.spec.registry.as_ref().ok_or_else(|| {
        Error::usage(format!(
            "spec {}: no `registry` section (registry.model_name is needed)",
            ctx.spec.uri
        ))
    })
}

/// The local registry's location: the spec's `registry.local_uri`, else `registry/`
/// beside the run folder (`kiln-runs/adult` → `kiln-runs/registry`).
pub fn local_registry_uri(ctx: &StepContext) -> Result<String> {
    let spec = registry_spec(ctx)?;
    Ok(match &spec.local_uri {
        Some(uri) => ctx.spec.resolve(uri),
        None => {
            let run = ctx.run.uri().trim_end_matches('/');
            match run.rsplit_once('/') {
                Some((parent, _)) => format!("{parent}/registry"),
                None => "registry".to_string(),
            }
        }
    })
}

/// The step with its cache key: the reports it judges, the model bundle and the spec.
pub async fn plan(ctx: &StepContext) -> Result<Step> {
    let evaluate = ctx.completed_step("evaluate", STEP).await?;
    let fairness = ctx.completed_step("fairness", STEP).await?;
    let mut inputs = vec![
        ctx.input("evaluate/metrics.json", &evaluate.object("metrics.json"))
            .await?,
        ctx.input("fairness/report.json", &fairness.object("report.json"))
            .await?,
        ctx.input(
            "train/model/model.bin",
            &ctx.run.child("train/model").object("model.bin"),
        )
        .await?,
    ];
    if ctx.spec.spec.validation.is_some() && registry_spec(ctx)?.require_validation {
        let validate = ctx.completed_step("validate", STEP).await?;
        inputs.push(
            ctx.input("validate/report.json", &validate.object("report.json"))
                .await?,
        );
    }
    // The registry is part of the key: pointing at another one registers again. The
    // manifest records the server's address, never credentials inside the URI.
    let registry = match std::env::var("MLFLOW_TRACKING_URI")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(uri) => kiln_mlflow::split_credentials(&uri).0,
        None => local_registry_uri(ctx)?,
    };
    inputs.push(InputRecord {
        name: "registry".into(),
        uri: registry.clone(),
        hash: kiln_core::store::ContentHash {
            sha256: kiln_core::store::sha256_hex(registry.as_bytes()),
            size: registry.len() as u64,
        },
        version: None,
    });
    // The signing key is part of the key too (its public hint, never the secret):
    // adding or changing one signs again.
    if let Some(key) = signing_key().await? {
        let hint = key.verifying_key().hint();
        inputs.push(InputRecord {
            name: "signing-key".into(),
            uri: format!("{SIGNING_KEY_ENV} (public key sha256 {hint})"),
            hash: kiln_core::store::ContentHash {
                sha256: hint,
                size: 0,
            },
            version: None,
        });
    }
    Ok(ctx.step(STEP, SPEC_SECTIONS, inputs, &[env!("KILN_CODE_HASH")]))
}

/// The variable that holds the signing key: a PEM private key, or a path or URI to one.
pub const SIGNING_KEY_ENV: &str = "KILN_SIGNING_KEY";

/// The key registered versions are signed with ([`SIGNING_KEY_ENV`]), if any. A key
/// that cannot be read is a usage error before anything is registered.
pub async fn signing_key() -> Result<Option<kiln_signing::SigningKey>> {
    match std::env::var(SIGNING_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(source) => kiln_signing::read_signing_key(&source)
            .await
            .map(Some)
            .map_err(|e| Error::Usage(format!("{SIGNING_KEY_ENV}: {e}"))),
        None => Ok(None),
    }
}

/// The register step, for the driver.
pub struct Register;

impl PipelineStep for Register {
    fn name(&self) -> &'static str {
        STEP
    }

    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(plan(ctx))
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        _control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(step.run(move |writer| register(ctx, writer)))
    }

    fn gate<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(gate(ctx))
    }

    fn tracked<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _outcome: &'a StepOutcome,
    ) -> BoxFuture<'a, Result<kiln_core::tracked::Tracked>> {
        Box::pin(async { Ok(kiln_core::tracked::Tracked::report::<Decision>()) })
    }
}

/// The gate: every registration gate of the committed decision passed (a failure is
/// [`Error::Gate`] and nothing was registered).
async fn gate(ctx: &StepContext) -> Result<()> {
    kiln_core::driver::verdict_gate::<Decision>(
        ctx,
        "registration gate(s) failed, nothing registered",
    )
    .await
}

async fn register(ctx: &StepContext, writer: StepWriter) -> Result<(StepWriter, Value)> {
    let spec = registry_spec(ctx)?;
    let registry = Registry::open(&local_registry_uri(ctx)?)?;
    let mut gates = Vec::new();
    if ctx.spec.spec.validation.is_some() && spec.require_validation {
        let report: ValidateReport = contracts::read_from_run(&ctx.run).await?;
        gates.push(GateVerdict {
            gate: "validation".into(),
            threshold: json!("passed"),
            observed: json!(if report.passed { "passed" } else { "failed" }),
            passed: report.passed,
        });
    }
    let metrics: EvaluationReport = contracts::read_from_run(&ctx.run).await?;
    // By name, as the spec writes them.
    let mut min_metrics: Vec<_> = spec.min_metrics.iter().collect();
    min_metrics.sort_by_key(|(metric, _)| metric.name());
    for (&metric, min) in min_metrics {
        // An undefined metric (one class in the test set) is `null` and fails its gate.
        let observed = metrics.metric(metric);
        gates.push(GateVerdict {
            gate: format!("metric {metric}"),
            threshold: json!({"min": min}),
            passed: observed.is_some_and(|v| v >= *min),
            observed: json!(observed),
        });
    }
    if spec.require_fairness {
        let report: FairnessReport = contracts::read_from_run(&ctx.run).await?;
        let failed: Vec<String> = report
            .gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| {
                let metric = serde_json::to_value(g.metric).unwrap_or_default();
                format!("{} of {}", metric.as_str().unwrap_or("?"), g.attribute)
            })
            .collect();
        gates.push(GateVerdict {
            gate: "fairness".into(),
            threshold: json!("every fairness gate passed"),
            observed: if failed.is_empty() {
                json!("passed")
            } else {
                json!({"failed": failed})
            },
            passed: failed.is_empty(),
        });
    }
    if let Some(margin) = spec.champion_margin {
        gates.push(champion_gate(ctx, spec, &registry, &metrics, margin).await?);
    }
    let passed = gates.iter().all(|g| g.passed);
    let mut registered = None;
    if passed {
        let (done, bom) = register_model(ctx, spec, &registry, &metrics).await?;
        if let Some(bytes) = bom {
            writer.put(bom::BOM_FILE, bytes).await?;
        }
        registered = Some(done);
    }
    let decision = Decision {
        format_version: <Decision as kiln_core::contracts::Artifact>::FORMAT_VERSION,
        model: spec.model_name.clone(),
        run: ctx.run.uri().to_string(),
        gates,
        passed,
        registered,
        decided_at: chrono::Utc::now().to_rfc3339(),
    };
    writer.put_json(DECISION, &decision).await?;
    for g in &decision.gates {
        tracing::info!(gate = g.gate, passed = g.passed, observed = %g.observed, "gate");
    }
    if let Some(r) = &decision.registered {
        tracing::info!(
            model = r.model,
            version = r.version,
            alias = r.alias,
            backend = r.backend,
            reused = r.reused,
            "registered"
        );
    }
    let summary = json!({
        "passed": decision.passed,
        "version": decision.registered.as_ref().map(|r| r.version.clone()),
    });
    Ok((writer, summary))
}

async fn champion_gate(
    ctx: &StepContext,
    spec: &RegistrySpec,
    registry: &Registry,
    metrics: &EvaluationReport,
    margin: f64,
) -> Result<GateVerdict> {
    let gate = format!(
        "champion {} ({}) + {margin}",
        spec.champion_alias, spec.champion_metric
    );
    let ours = metrics.metric(spec.champion_metric);
    let Some(version) = registry
        .alias(&spec.model_name, &spec.champion_alias)
        .await?
    else {
        // No champion yet: the first model is the challenger with nothing to beat.
        return Ok(GateVerdict {
            gate,
            threshold: json!({"champion": null}),
            observed: json!({"challenger": ours}),
            passed: true,
        });
    };
    let scratch = ctx.run.child("register/.champion");
    let bundle = registry
        .bundle_of(&spec.model_name, &version, &scratch)
        .await?;
    let test = ctx.run.child(prepare::STEP).object(prepare::TEST);
    // The champion decides through its own policy (its group thresholds included).
    let scored =
        kiln_model::bundle::score_table(&bundle, &test, &ctx.spec.spec.label.column).await?;
    let theirs = kiln_stats::metrics::named_metric_decided(
        spec.champion_metric,
        &scored.scores,
        &scored.labels,
        &scored.decisions,
    );
    scratch.delete_prefix("").await.ok();
    let passed = matches!((ours, theirs), (Some(a), Some(b)) if a >= b + margin);
    Ok(GateVerdict {
        gate,
        threshold: json!({"champion_version": version, "champion": theirs, "margin": margin}),
        observed: json!({"challenger": ours}),
        passed,
    })
}

async fn register_model(
    ctx: &StepContext,
    spec: &RegistrySpec,
    registry: &Registry,
    metrics: &EvaluationReport,
) -> Result<(Registered, Option<bytes::Bytes>)> {
    let bundle = ctx.run.child("train/model");
    let model_sha = bundle.object("model.bin").hash().await?.sha256;
    let mut tags = BTreeMap::new();
    tags.insert("kiln.run_uri".to_string(), ctx.run.uri().to_string());
    tags.insert("kiln.model_sha256".to_string(), model_sha.clone());
    tags.insert(
        "kiln.spec_fingerprint".to_string(),
        ctx.spec
            .spec
            .fingerprint(&["data", "schema", "label", "split", "transform", "train"]),
    );
    tags.insert(
        "kiln.version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    if let Ok(revision) = std::env::var("KILN_SOURCE_REVISION") {
        tags.insert("kiln.source_revision".to_string(), revision);
    }
    if let Some(prepare) = StepManifest::load(&ctx.run.child(prepare::STEP)).await? {
        for input in &prepare.inputs {
            tags.insert(
                format!("kiln.data.{}", input.name.replace(['[', ']'], "_")),
                input.hash.sha256.clone(),
            );
        }
    }
    let tracked = match registry {
        Registry::Mlflow(client) => Some(kiln_mlflow::ensure_run(client, ctx).await?),
        Registry::Local(_) => None,
    };
    let run_id = tracked.as_ref().map(|t| t.run_id.as_str());
    let existing = registry
        .find(&spec.model_name, ctx.run.uri(), run_id, &model_sha)
        .await?;
    let mut bom_bytes = None;
    let (version, source, reused) = match existing {
        Some(version) => {
            let source = match registry {
                Registry::Local(root) => {
                    root.uri_of(&format!("{}/versions/{version}/model", spec.model_name))
                }
                Registry::Mlflow(_) => tracked
                    .as_ref()
                    .map(|t| format!("{}/model", t.artifact_uri))
                    .unwrap_or_default(),
            };
            (version, source, true)
        }
        None => {
            // The decision policy travels with the model: evaluate's threshold and
            // mitigation's group thresholds, so every reader of the version decides alike.
            let fairness = ctx.run.child("fairness");
            let threshold = ctx.spec.spec.evaluate.threshold;
            let policy = if fairness.exists(GROUP_THRESHOLDS).await? {
                let groups: GroupThresholds = contracts::read(&fairness).await?;
                DecisionPolicy::with_groups(threshold, groups)
            } else {
                DecisionPolicy::global(threshold)
            };
            let policy_json = serde_json::to_vec_pretty(&policy)
                .map_err(|e| Error::Invalid(format!("encoding the decision policy: {e}")))?;
            let extra = vec![(DECISION_POLICY, bytes::Bytes::from(policy_json))];
            let signer = signing_key().await?;
            if signer.is_none() {
                tracing::warn!(
                    "registering {} unsigned: no signing key ({SIGNING_KEY_ENV} is not set)",
                    spec.model_name
                );
            }
            let created = registry
                .create(
                    &spec.model_name,
                    &bundle,
                    ctx.run.uri(),
                    tracked.as_ref(),
                    &tags,
                    &extra,
                    signer.as_ref(),
                )
                .await?;
            // The ML-BOM is stored with the version before any alias points at it.
            let document = bill_of_materials(ctx, spec, metrics, &policy, &created).await?;
            let text = serde_json::to_vec_pretty(&document)
                .map_err(|e| Error::Invalid(format!("encoding the ML-BOM: {e}")))?;
            let bytes = bytes::Bytes::from(text);
            let uri = registry
                .attach(
                    &spec.model_name,
                    &created.version,
                    tracked.as_ref(),
                    bom::BOM_FILE,
                    bytes.clone(),
                )
                .await?;
            tracing::info!(bom = %uri, "ML-BOM stored with the version");
            bom_bytes = Some(bytes);
            (created.version, created.source, false)
        }
    };
    registry
        .set_alias(&spec.model_name, &spec.alias, &version)
        .await?;
    Ok((
        Registered {
            backend: registry.backend().to_string(),
            model: spec.model_name.clone(),
            version,
            alias: spec.alias.clone(),
            source,
            reused,
        },
        bom_bytes,
    ))
}

/// The ML-BOM of a version just created from this run.
async fn bill_of_materials(
    ctx: &StepContext,
    spec: &RegistrySpec,
    metrics: &EvaluationReport,
    policy: &DecisionPolicy,
    created: &kiln_registry::Created,
) -> Result<Value> {
    let bundle = ctx.run.child("train/model");
    let metadata: BundleMetadata = contracts::read_from_run(&ctx.run).await?;
    let training_config: Value = kiln_model::bundle::read_training_config(&bundle).await?;
    let raw_data = StepManifest::load(&ctx.run.child(prepare::STEP))
        .await?
        .map(|m| m.inputs)
        .unwrap_or_default();
    let fairness: Option<FairnessReport> = if ctx
        .run
        .exists(&<FairnessReport as contracts::Artifact>::path())
        .await?
    {
        Some(contracts::read_from_run(&ctx.run).await?)
    } else {
        None
    };
    let signature_uri = created
        .tags
        .contains_key(kiln_registry::SIGNATURE_SHA256_TAG)
        .then(|| {
            format!(
                "{}/{}",
                created.source.trim_end_matches('/'),
                kiln_signing::SIGNATURE_FILE
            )
        });
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(bom::ml_bom(&bom::BomInputs {
        model: &spec.model_name,
        version: &created.version,
        bundle_uri: &created.source,
        tags: &created.tags,
        metadata: &metadata,
        training_config: &training_config,
        raw_data: &raw_data,
        metrics,
        fairness: fairness.as_ref(),
        policy,
        signature_uri,
        timestamp: &timestamp,
    }))
}

/// Points `alias` at a version (`kiln promote`).
pub async fn promote(
    registry: &Registry,
    model: &str,
    version: &str,
    alias: &str,
) -> Result<AliasChange> {
    registry.set_alias(model, alias, version).await
}

/// Moves `alias` back to the version it pointed at before (`kiln rollback`).
pub async fn rollback(registry: &Registry, model: &str, alias: &str) -> Result<AliasChange> {
    registry.rollback(model, alias).await
}

/// The registry for `promote`/`rollback`: MLflow when `MLFLOW_TRACKING_URI` is set,
/// else `--registry` (default `./kiln-runs/registry`).
pub fn open_registry(local: Option<&str>) -> Result<Registry> {
    Registry::open(local.unwrap_or("kiln-runs/registry"))
}

/// Writes an alias change as one line.
pub fn describe(change: &AliasChange) -> String {
    format!(
        "{}: alias `{}` {} → {}\n",
        change.model,
        change.alias,
        change.from.as_deref().unwrap_or("(unset)"),
        change.to
    )
}
