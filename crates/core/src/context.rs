//! What a step needs to start: a loaded spec and an opened run root, built from plain
//! options (the binaries fill them from their flags; the libraries never see clap).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::manifest::{InputRecord, StepManifest};
use crate::spec::LoadedSpec;
use crate::store::{ArtifactStore, ContentHash, ObjectRef};

/// Where a step's spec and run root come from.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// The pipeline spec (YAML or JSON): a path or a store URI.
    pub spec: String,
    /// The run root: a folder or `s3://bucket/prefix` (default [`default_run_uri`]).
    pub run: Option<String>,
    /// Rerun even when inputs, spec and version match the last completed run.
    pub force: bool,
    /// Read and hash every input and every cached output in full, instead of trusting
    /// the sha256 a manifest recorded for an object whose version has not changed.
    pub verify: bool,
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
            verify: self.verify,
            memory_limit: self.memory_limit,
            known: Arc::default(),
        })
    }
}

/// A loaded spec and an opened run root: what a step needs to start.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub spec: LoadedSpec,
    pub run: ArtifactStore,
    pub force: bool,
    /// See [`StepOptions::verify`].
    pub verify: bool,
    /// See [`StepOptions::memory_limit`].
    pub memory_limit: Option<u64>,
    /// The hashes the manifests read so far recorded, by object.
    known: Arc<KnownHashes>,
}

/// The sha256 that manifests recorded for objects, with the object's version when it
/// was hashed: what lets a plan name an input's hash without reading it.
#[derive(Debug, Default)]
struct KnownHashes(Mutex<HashMap<String, (String, ContentHash)>>);

impl KnownHashes {
    fn remember(&self, dir: &ArtifactStore, manifest: &StepManifest) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = manifest
            .outputs
            .iter()
            .map(|o| (dir.uri_of(&o.path), &o.version, &o.hash));
        let inputs = manifest
            .inputs
            .iter()
            .map(|i| (i.uri.clone(), &i.version, &i.hash));
        for (uri, version, hash) in outputs.chain(inputs) {
            if let Some(version) = version {
                known.insert(uri, (version.clone(), hash.clone()));
            }
        }
    }

    fn get(&self, uri: &str, version: &str) -> Option<ContentHash> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(uri)
            .filter(|(v, _)| v == version)
            .map(|(_, hash)| hash.clone())
    }
}

impl StepContext {
    /// A context over a loaded spec and an opened run root, with nothing known yet.
    pub fn new(spec: LoadedSpec, run: ArtifactStore) -> StepContext {
        StepContext {
            spec,
            run,
            force: false,
            verify: false,
            memory_limit: None,
            known: Arc::default(),
        }
    }

    /// The folder of an earlier step that must have completed (it has a manifest);
    /// otherwise a usage error that says which step to run first. Its manifest's
    /// hashes become known to this run's plans ([`input`](Self::input)).
    pub async fn completed_step(&self, step: &str, needed_by: &str) -> Result<ArtifactStore> {
        let dir = self.run.child(step);
        let Some(manifest) = StepManifest::load(&dir).await? else {
            return Err(Error::usage(format!(
                "{needed_by} needs {step}'s outputs: no {} (run `kiln {step}` first)",
                dir.uri_of(crate::manifest::MANIFEST)
            )));
        };
        self.known.remember(&dir, &manifest);
        Ok(dir)
    }

    /// Makes the hashes of a step's last manifest known (its inputs and outputs), so
    /// that planning it again reads none of its unchanged inputs. A missing or
    /// unreadable manifest teaches nothing; the cache check reports it.
    pub async fn recall(&self, step: &str) {
        let dir = self.run.child(step);
        if let Ok(Some(manifest)) = StepManifest::load(&dir).await {
            self.known.remember(&dir, &manifest);
        }
    }

    /// An object as a named input of a step, with its sha256: the one a manifest
    /// recorded when the object's version is unchanged since (no read), else its bytes
    /// hashed in full (always, under [`verify`](Self::verify)).
    pub async fn input(&self, name: impl Into<String>, object: &ObjectRef) -> Result<InputRecord> {
        let version = object.version().await?;
        let known = if self.verify {
            None
        } else {
            self.known.get(object.uri(), &version)
        };
        let hash = match known {
            Some(hash) => hash,
            None => object.hash().await?,
        };
        Ok(InputRecord {
            name: name.into(),
            uri: object.uri().to_string(),
            hash,
            version: Some(version),
        })
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
            self.verify,
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
