//! The protocol every step follows, so that each gets caching, atomic commits and
//! manifests the same way.
//!
//! 1. Unless `--force`, a cache hit ([`check_cache`]) ends the step at once.
//! 2. The step writes its outputs under `<step>/.staging/`, never at their final paths.
//! 3. On failure the staging folder is deleted; the previous result, if any, is intact.
//! 4. On success the old manifest is removed, the staged files move to their final
//!    paths, and the new manifest is written last. A process killed at any point leaves
//!    either the old complete result or no manifest at all.

use std::sync::Mutex;

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{
    CacheDecision, CacheKey, InputRecord, MANIFEST, OutputRecord, StepManifest, StepStatus,
    check_cache,
};
use crate::store::{ArtifactStore, ContentHash, ObjectRef};

const STAGING: &str = ".staging";

/// Whether a step ran or was served from the cache.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    Ran(StepManifest),
    Cached(StepManifest),
}

impl StepOutcome {
    /// The manifest either way.
    pub fn manifest(&self) -> &StepManifest {
        match self {
            StepOutcome::Ran(m) | StepOutcome::Cached(m) => m,
        }
    }

    /// Whether the cache served it.
    pub fn cached(&self) -> bool {
        matches!(self, StepOutcome::Cached(_))
    }
}

/// Where a running step writes its outputs (staged until the step commits).
pub struct StepWriter {
    staging: ArtifactStore,
    outputs: Mutex<Vec<OutputRecord>>,
}

impl StepWriter {
    /// The staged location of an output, for streaming writers; call
    /// [`record`](Self::record) once the object is complete.
    pub fn object(&self, path: &str) -> ObjectRef {
        self.staging.object(path)
    }

    /// Records a completed output and its hash.
    pub fn record(&self, path: &str, hash: ContentHash) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        outputs.retain(|o| o.path != path);
        outputs.push(OutputRecord {
            path: path.to_string(),
            hash,
            version: None,
        });
    }

    /// Writes and records a JSON output.
    pub async fn put_json<T: Serialize>(&self, path: &str, value: &T) -> Result<ContentHash> {
        let hash = self.staging.put_json(path, value).await?;
        self.record(path, hash.clone());
        Ok(hash)
    }

    /// Writes and records a bytes output.
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<ContentHash> {
        let hash = self.staging.put(path, bytes).await?;
        self.record(path, hash.clone());
        Ok(hash)
    }
}

/// One step of one run: its folder, its cache key, whether to force, and whether to
/// re-read every output a cache check would otherwise trust by its version.
pub struct Step {
    pub name: String,
    pub dir: ArtifactStore,
    pub key: CacheKey,
    pub force: bool,
    pub verify: bool,
}

impl Step {
    /// A step named `name` under the run root.
    /// `code` names the code the step runs besides kiln-core ([`tool_version`]).
    ///
    /// [`tool_version`]: crate::manifest::tool_version
    pub fn new(
        run: &ArtifactStore,
        name: &str,
        spec_fingerprint: String,
        inputs: Vec<InputRecord>,
        code: &[&str],
        force: bool,
        verify: bool,
    ) -> Self {
        Step {
            name: name.to_string(),
            dir: run.child(name),
            key: CacheKey {
                spec_fingerprint,
                tool_version: crate::manifest::tool_version(code),
                inputs,
            },
            force,
            verify,
        }
    }

    /// Checks the cache without running anything.
    pub async fn cache_decision(&self) -> Result<CacheDecision> {
        check_cache(&self.dir, &self.key, self.verify).await
    }

    /// Runs `body` under the step protocol (see the module docs). `body` returns a
    /// summary (row counts, metrics) kept in the manifest.
    pub async fn run<F, Fut>(self, body: F) -> Result<StepOutcome>
    where
        F: FnOnce(StepWriter) -> Fut,
        Fut: Future<Output = Result<(StepWriter, serde_json::Value)>>,
    {
        if !self.force {
            match self.cache_decision().await? {
                CacheDecision::Hit(manifest) => {
                    tracing::info!(step = %self.name, "cache hit: inputs, spec and version unchanged; skipping (use --force to rerun)");
                    return Ok(StepOutcome::Cached(*manifest));
                }
                miss => tracing::info!(step = %self.name, "running: cache {}", miss.explain()),
            }
        } else {
            tracing::info!(step = %self.name, "running: --force given, cache not consulted");
        }
        let started_at = Utc::now();
        // Leftovers of a killed attempt are never read; clear them.
        self.dir.delete_prefix(STAGING).await?;
        let attempt = format!(
            "{STAGING}/{}",
            started_at.timestamp_nanos_opt().unwrap_or_default()
        );
        let writer = StepWriter {
            staging: self.dir.child(&attempt),
            outputs: Mutex::new(Vec::new()),
        };
        let (writer, summary) = match body(writer).await {
            Ok(done) => done,
            Err(e) => {
                if let Err(cleanup) = self.dir.delete_prefix(STAGING).await {
                    tracing::warn!(error = %cleanup, "could not remove staged outputs");
                }
                return Err(e);
            }
        };
        let mut outputs = writer
            .outputs
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        outputs.sort_by(|a, b| a.path.cmp(&b.path));
        if outputs.iter().any(|o| o.path == MANIFEST) {
            return Err(Error::Invalid(
                "a step may not write its own manifest.json".into(),
            ));
        }
        // Commit: un-commit the old result, move outputs into place, manifest last.
        self.dir.delete(MANIFEST).await?;
        for output in &mut outputs {
            self.dir
                .rename(&format!("{attempt}/{}", output.path), &output.path)
                .await?;
            // The committed object's version, so that a later cache check or a later
            // step's plan trusts the hash without reading the object again.
            output.version = self.dir.object(&output.path).current_version().await?;
        }
        let manifest = StepManifest {
            step: self.name.clone(),
            status: StepStatus::Succeeded,
            tool_version: self.key.tool_version.clone(),
            spec_fingerprint: self.key.spec_fingerprint.clone(),
            started_at,
            finished_at: Utc::now(),
            inputs: self.key.inputs.clone(),
            outputs,
            summary,
        };
        self.dir.put_json(MANIFEST, &manifest).await?;
        self.dir.delete_prefix(STAGING).await?;
        Ok(StepOutcome::Ran(manifest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run_once(run: &ArtifactStore, fail: bool, force: bool) -> Result<StepOutcome> {
        let step = Step::new(run, "demo", "fp".into(), Vec::new(), &[], force, false);
        step.run(|w| async move {
            w.put_json("a.json", &serde_json::json!({"x": 1})).await?;
            if fail {
                return Err(Error::usage("boom"));
            }
            w.put("b.txt", Bytes::from_static(b"b")).await?;
            Ok((w, serde_json::json!({"rows": 2})))
        })
        .await
    }

    #[tokio::test]
    async fn commits_then_hits_the_cache() {
        let run = ArtifactStore::open("memory://step-commit/run").unwrap();
        let first = run_once(&run, false, false).await.unwrap();
        assert!(!first.cached());
        assert_eq!(first.manifest().outputs.len(), 2);
        assert_eq!(
            run.list("demo").await.unwrap(),
            vec!["demo/a.json", "demo/b.txt", "demo/manifest.json"]
        );
        assert!(run_once(&run, false, false).await.unwrap().cached());
        assert!(!run_once(&run, false, true).await.unwrap().cached());
    }

    #[tokio::test]
    async fn a_failed_attempt_leaves_the_previous_result_intact() {
        let run = ArtifactStore::open("memory://step-fail/run").unwrap();
        let first = run_once(&run, false, false).await.unwrap();
        let err = run_once(&run, true, true).await.unwrap_err();
        assert_eq!(err.to_string(), "boom");
        let manifest = StepManifest::load(&run.child("demo"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&manifest, first.manifest());
        assert_eq!(
            run.list("demo").await.unwrap().len(),
            3,
            "no staged leftovers"
        );
    }

    #[tokio::test]
    async fn a_failed_first_attempt_leaves_nothing() {
        let run = ArtifactStore::open("memory://step-fail-first/run").unwrap();
        run_once(&run, true, false).await.unwrap_err();
        assert!(run.list("demo").await.unwrap().is_empty());
    }
}
