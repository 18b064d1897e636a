//! The lineage of a run, read back from its step manifests: from the last step (register,
//! else train) through every step whose outputs another read, to the raw files prepare
//! read, each with its URI, sha256 and size.

use std::collections::{BTreeMap, BTreeSet};

use kiln_core::Result;
use kiln_core::manifest::StepManifest;
use kiln_core::store::ArtifactStore;
use serde::Serialize;

/// The steps, last first: the order a chain is printed in.
const ORDER: &[&str] = &[
    "register", "fairness", "evaluate", "train", "tune", "validate", "prepare",
];

/// One file a step read or wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// As the step names it (`prepare/train.parquet`, `source[0]`, `model/model.bin`).
    pub name: String,
    pub uri: String,
    pub sha256: String,
    pub size: u64,
}

/// One step of the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLink {
    pub step: String,
    pub finished_at: String,
    pub tool_version: String,
    pub inputs: Vec<FileRef>,
    pub outputs: Vec<FileRef>,
}

/// A run's chain, last step first, and the raw files at its start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub run: String,
    pub steps: Vec<StepLink>,
    /// What prepare read: the raw data files.
    pub sources: Vec<FileRef>,
}

impl Chain {
    /// A step's link, if the chain has it.
    pub fn step(&self, name: &str) -> Option<&StepLink> {
        self.steps.iter().find(|s| s.step == name)
    }
}

/// Walks the manifests of `run` back from `from` (the step whose outputs the chain
/// explains). A step the chain needs but whose manifest is missing is an error naming
/// it: the run folder no longer holds what made the model.
pub async fn trace(run: &ArtifactStore, from: &str) -> Result<Chain> {
    let mut todo = vec![from.to_string()];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut links: BTreeMap<String, StepLink> = BTreeMap::new();
    let mut sources = Vec::new();
    while let Some(step) = todo.pop() {
        if !seen.insert(step.clone()) {
            continue;
        }
        let dir = run.child(&step);
        let manifest = StepManifest::load(&dir).await?.ok_or_else(|| {
            kiln_core::Error::usage(format!(
                "{}: no completed `{step}` step (no manifest): the run folder no longer holds what made this model",
                run.uri()
            ))
        })?;
        let inputs: Vec<FileRef> = manifest
            .inputs
            .iter()
            .map(|r| FileRef {
                name: r.name.clone(),
                uri: r.uri.clone(),
                sha256: r.hash.sha256.clone(),
                size: r.hash.size,
            })
            .collect();
        for input in &inputs {
            match input.name.split_once('/') {
                Some((upstream, _)) if ORDER.contains(&upstream) => {
                    todo.push(upstream.to_string());
                }
                _ if step == "prepare" => sources.push(input.clone()),
                _ => {}
            }
        }
        let outputs = manifest
            .outputs
            .iter()
            .map(|o| FileRef {
                name: o.path.clone(),
                uri: dir.uri_of(&o.path),
                sha256: o.hash.sha256.clone(),
                size: o.hash.size,
            })
            .collect();
        links.insert(
            step.clone(),
            StepLink {
                step: step.clone(),
                finished_at: manifest.finished_at.to_rfc3339(),
                tool_version: manifest.tool_version.clone(),
                inputs,
                outputs,
            },
        );
    }
    let mut steps: Vec<StepLink> = links.into_values().collect();
    steps.sort_by_key(|s| {
        ORDER
            .iter()
            .position(|o| *o == s.step)
            .unwrap_or(ORDER.len())
    });
    Ok(Chain {
        run: run.uri().to_string(),
        steps,
        sources,
    })
}

/// The chain as text: a header per step with what it read, then the raw files.
pub fn describe(chain: &Chain) -> String {
    let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_string();
    let mut out = format!("run {}\n", chain.run);
    for link in &chain.steps {
        out.push_str(&format!(
            "  {:<9} finished {} ({})\n",
            link.step, link.finished_at, link.tool_version
        ));
        for input in &link.inputs {
            out.push_str(&format!(
                "    <- {:<32} sha256 {}  {}\n",
                input.name,
                short(&input.sha256),
                input.uri
            ));
        }
    }
    out.push_str("raw inputs\n");
    for source in &chain.sources {
        out.push_str(&format!(
            "  {}  sha256 {}  {} bytes\n",
            source.uri, source.sha256, source.size
        ));
    }
    out
}
