//! Step manifests: the commit marker of a step, and the cache rule.
//!
//! A step writes `<run>/<step>/manifest.json` last. A later run skips the step when
//! the manifest's spec fingerprint, tool version and input hashes equal the current
//! ones and every output still exists with its recorded hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{ArtifactStore, ContentHash};

/// File name of the manifest inside a step folder.
pub const MANIFEST: &str = "manifest.json";

/// The version written into manifests; a new version invalidates every cache.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A hash of kiln-core's sources (kiln-buildinfo): part of every step's `tool_version`,
/// beside the step crate's hash (which covers every workspace library it links).
pub const CODE_HASH: &str = env!("KILN_CODE_HASH");

/// The `tool_version` of a step: the release, then a hash of the code it ran
/// (kiln-core's and `code`: the step crate's, over it and the libraries it links), so a code
/// change without a version bump invalidates the cache.
pub fn tool_version(code: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in std::iter::once(CODE_HASH).chain(code.iter().copied()) {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{TOOL_VERSION}+{short}")
}

/// An input of a step: a named URI with its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InputRecord {
    /// What the input is to the step (e.g. `source[0]`, `train.parquet`).
    pub name: String,
    pub uri: String,
    #[serde(flatten)]
    pub hash: ContentHash,
    /// The object's version when it was hashed ([`ObjectRef::current_version`]): a later
    /// plan trusts the hash while the version is unchanged, without reading the object.
    ///
    /// [`ObjectRef::current_version`]: crate::store::ObjectRef::current_version
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl InputRecord {
    /// The record without its version: what goes into artifacts that must not depend
    /// on where or when the input was stored (a bundle's metadata, a checkpoint key).
    pub fn unversioned(&self) -> InputRecord {
        InputRecord {
            version: None,
            ..self.clone()
        }
    }
}

/// An output of a step, relative to the step folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: String,
    #[serde(flatten)]
    pub hash: ContentHash,
    /// The committed object's version (see [`InputRecord::version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How a step ended. Only successful steps write a manifest (it is the commit
/// marker), so this is `succeeded` in every manifest a reader finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
}

/// The manifest of one step of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepManifest {
    pub step: String,
    pub status: StepStatus,
    pub tool_version: String,
    pub spec_fingerprint: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub inputs: Vec<InputRecord>,
    pub outputs: Vec<OutputRecord>,
    /// Step-specific facts worth keeping (row counts, metrics).
    #[serde(default)]
    pub summary: serde_json::Value,
}

impl StepManifest {
    /// The recorded output at a path.
    pub fn output(&self, path: &str) -> Option<&OutputRecord> {
        self.outputs.iter().find(|o| o.path == path)
    }

    /// Reads a step's manifest; `None` when the step has not completed.
    pub async fn load(step_dir: &ArtifactStore) -> Result<Option<StepManifest>> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the step protocol's own manifest"
        )]
        let manifest = step_dir.get_json(MANIFEST).await;
        match manifest {
            Ok(m) => Ok(Some(m)),
            Err(Error::InputNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What decides whether a step's previous result can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub spec_fingerprint: String,
    pub tool_version: String,
    pub inputs: Vec<InputRecord>,
}

/// The outcome of a cache check, with the reasons for a miss.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheDecision {
    Hit(Box<StepManifest>),
    Miss(Vec<String>),
}

impl CacheDecision {
    /// One line per reason, for `kiln explain-cache` and logs.
    pub fn explain(&self) -> String {
        match self {
            CacheDecision::Hit(m) => format!(
                "hit: inputs, spec and version match the manifest of {} and all {} outputs are intact",
                m.finished_at.to_rfc3339(),
                m.outputs.len()
            ),
            CacheDecision::Miss(reasons) => format!("miss: {}", reasons.join("; ")),
        }
    }
}

/// Compares the current key with the step's manifest and checks its outputs: an
/// output whose version is the one committed keeps its recorded hash; any other is
/// read and hashed again, and so is every output under `verify`.
pub async fn check_cache(
    step_dir: &ArtifactStore,
    key: &CacheKey,
    verify: bool,
) -> Result<CacheDecision> {
    let Some(manifest) = StepManifest::load(step_dir).await? else {
        return Ok(CacheDecision::Miss(vec![
            "no manifest (the step has not completed in this run)".into(),
        ]));
    };
    let mut reasons = Vec::new();
    if manifest.spec_fingerprint != key.spec_fingerprint {
        reasons.push(format!(
            "spec changed (fingerprint {} → {})",
            short(&manifest.spec_fingerprint),
            short(&key.spec_fingerprint)
        ));
    }
    if manifest.tool_version != key.tool_version {
        reasons.push(format!(
            "tool version changed ({} → {})",
            manifest.tool_version, key.tool_version
        ));
    }
    for input in &key.inputs {
        match manifest.inputs.iter().find(|i| i.name == input.name) {
            None => reasons.push(format!("new input {} ({})", input.name, input.uri)),
            Some(old) if old.uri != input.uri => reasons.push(format!(
                "input {} moved ({} → {})",
                input.name, old.uri, input.uri
            )),
            Some(old) if old.hash != input.hash => reasons.push(format!(
                "input {} changed (sha256 {} → {})",
                input.name,
                short(&old.hash.sha256),
                short(&input.hash.sha256)
            )),
            Some(_) => {}
        }
    }
    for old in &manifest.inputs {
        if !key.inputs.iter().any(|i| i.name == old.name) {
            reasons.push(format!("input {} was removed", old.name));
        }
    }
    if reasons.is_empty() {
        for output in &manifest.outputs {
            let object = step_dir.object(&output.path);
            let Some(version) = object.current_version().await? else {
                reasons.push(format!("output {} is missing", output.path));
                continue;
            };
            // Unchanged since the commit: its recorded hash stands, unread.
            let trusted = !verify && output.version.as_deref() == Some(version.as_str());
            if !trusted && object.hash().await? != output.hash {
                reasons.push(format!("output {} was modified", output.path));
            }
        }
    }
    Ok(if reasons.is_empty() {
        CacheDecision::Hit(Box::new(manifest))
    } else {
        CacheDecision::Miss(reasons)
    })
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn tool_version_names_the_release_and_the_code() {
        let a = super::tool_version(&["aaaa"]);
        assert!(a.starts_with(&format!("{}+", super::TOOL_VERSION)), "{a}");
        assert_eq!(a, super::tool_version(&["aaaa"]));
        assert_ne!(a, super::tool_version(&["aaab"]));
        assert_ne!(a, super::tool_version(&["aaaa", "bbbb"]));
    }

    use super::*;
    use bytes::Bytes;

    fn record(name: &str, sha: &str) -> InputRecord {
        InputRecord {
            name: name.into(),
            uri: format!("file:///{name}"),
            hash: ContentHash {
                sha256: sha.into(),
                size: 1,
            },
            version: None,
        }
    }

    async fn setup(name: &str) -> (ArtifactStore, CacheKey) {
        let dir = ArtifactStore::open(&format!("memory://manifest-{name}/run/prepare")).unwrap();
        let out = dir
            .put("out.txt", Bytes::from_static(b"data"))
            .await
            .unwrap();
        let key = CacheKey {
            spec_fingerprint: "f1".into(),
            tool_version: TOOL_VERSION.into(),
            inputs: vec![record("source[0]", "aaa")],
        };
        let manifest = StepManifest {
            step: "prepare".into(),
            status: StepStatus::Succeeded,
            tool_version: key.tool_version.clone(),
            spec_fingerprint: key.spec_fingerprint.clone(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            inputs: key.inputs.clone(),
            outputs: vec![OutputRecord {
                path: "out.txt".into(),
                hash: out,
                version: None,
            }],
            summary: serde_json::Value::Null,
        };
        dir.put_json(MANIFEST, &manifest).await.unwrap();
        (dir, key)
    }

    #[tokio::test]
    async fn same_key_and_intact_outputs_hit() {
        let (dir, key) = setup("hit").await;
        assert!(matches!(
            check_cache(&dir, &key, false).await.unwrap(),
            CacheDecision::Hit(_)
        ));
    }

    #[tokio::test]
    async fn each_change_is_a_miss_with_its_reason() {
        let (dir, key) = setup("miss").await;
        let mut changed = key.clone();
        changed.spec_fingerprint = "f2".into();
        changed.inputs[0].hash.sha256 = "bbb".into();
        let decision = check_cache(&dir, &changed, false).await.unwrap();
        let text = decision.explain();
        assert!(text.contains("spec changed"), "{text}");
        assert!(text.contains("input source[0] changed"), "{text}");

        dir.put("out.txt", Bytes::from_static(b"tampered"))
            .await
            .unwrap();
        let text = check_cache(&dir, &key, false).await.unwrap().explain();
        assert_eq!(text, "miss: output out.txt was modified");
        dir.delete("out.txt").await.unwrap();
        let text = check_cache(&dir, &key, false).await.unwrap().explain();
        assert_eq!(text, "miss: output out.txt is missing");
        dir.delete(MANIFEST).await.unwrap();
        assert!(
            check_cache(&dir, &key, false)
                .await
                .unwrap()
                .explain()
                .contains("no manifest")
        );
    }
}
