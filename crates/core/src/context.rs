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
    /// Memory a step's query engine may use before it spills to disk, in bytes
    /// (prepare's `data.query`); `None`: half of the machine's (or cgroup's) memory.
    pub memory_limit: Option<u64>,
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
            memory_limit: self.memory_limit,
        })
    }
}

/// A loaded spec and an opened run root: what a step needs to start.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub spec: LoadedSpec,
    pub run: ArtifactStore,
    pub force: bool,
    /// See [`StepOptions::memory_limit`].
    pub memory_limit: Option<u64>,
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

/// Parses a size in bytes: `1073741824`, `512MiB`, `4GiB`, `2G` (SI), `1.5GiB`.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, K, M, G or T)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a size (e.g. 4GiB)"))?;
    let bytes = value * factor as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}`: must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod size_tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_binary_and_si_units() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("2G").unwrap(), 2_000_000_000);
        assert!(parse_bytes("4 gigs").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("GiB").is_err());
    }
}
