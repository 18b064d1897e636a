//! What a step needs to start: a loaded spec and an opened run root, built from plain
//! options (the binaries fill them from their flags; the libraries never see clap).

use crate::error::{Error, Result};
use crate::spec::LoadedSpec;
use crate::store::ArtifactStore;

/// Where a step's spec and run root come from.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// The pipeline spec (YAML or JSON): a path or a store URI.
    pub spec: String,
    /// The run root: a folder or `s3://bucket/prefix` (default [`default_run_uri`]).
    pub run: Option<String>,
    /// Rerun even when inputs, spec and version match the last completed run.
    pub force: bool,
    /// `KEY=VALUE` overrides of spec values.
    pub overrides: Vec<String>,
}

impl StepOptions {
    /// Loads the spec and opens the run root.
    pub async fn context(&self) -> Result<StepContext> {
        let spec = LoadedSpec::load(&self.spec, &self.overrides).await?;
        let run_uri = self
            .run
            .clone()
            .unwrap_or_else(|| default_run_uri(&spec.spec.name));
        Ok(StepContext {
            run: ArtifactStore::open(&run_uri)?,
            spec,
            force: self.force,
        })
    }
}

/// A loaded spec and an opened run root: what a step needs to start.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub spec: LoadedSpec,
    pub run: ArtifactStore,
    pub force: bool,
}

impl StepContext {
    /// The folder of an earlier step that must have completed (it has a manifest);
    /// otherwise a usage error that says which step to run first.
    pub async fn completed_step(&self, step: &str, needed_by: &str) -> Result<ArtifactStore> {
        let dir = self.run.child(step);
        if crate::manifest::StepManifest::load(&dir).await?.is_none() {
            return Err(Error::usage(format!(
                "{needed_by} needs {step}'s outputs: no {} (run `kiln {step}` first)",
                dir.uri_of(crate::manifest::MANIFEST)
            )));
        }
        Ok(dir)
    }

    /// A step of this run keyed by the spec sections it reads, its inputs and its code
    /// (`code`: the step crate's `KILN_CODE_HASH`, which kiln-buildinfo computes over the
    /// crate and every workspace library it links).
    pub fn step(
        &self,
        name: &str,
        sections: &[&str],
        inputs: Vec<crate::manifest::InputRecord>,
        code: &[&str],
    ) -> crate::step::Step {
        crate::step::Step::new(
            &self.run,
            name,
            self.spec.spec.fingerprint(sections),
            inputs,
            code,
            self.force,
        )
    }
}

/// The run root used when `--run` is not given.
pub fn default_run_uri(spec_name: &str) -> String {
    format!("./kiln-runs/{spec_name}")
}
