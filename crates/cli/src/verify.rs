//! `kiln verify`: a model's OMS signature against a public key, wherever the model is
//! (a bundle folder or URI, a local registry version, an MLflow one).

use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use kiln_registry::{ModelReference, resolve};
use kiln_signing::Verified;

/// What was verified, for the summary line.
#[derive(Debug)]
pub struct VerifiedModel {
    /// The model as the registry describes it (or the bundle's URI).
    pub description: String,
    pub verified: Verified,
    /// The public key's hint (sha256 of its PEM).
    pub key_hint: String,
}

/// Resolves `reference` (downloading an MLflow version to a scratch folder) and
/// verifies its bundle against the PEM public key at `public_key`. Any failure is a
/// usage error naming the model and, for a changed bundle, the file.
pub async fn verify_model(
    reference: &str,
    local_registry: &str,
    public_key: &str,
) -> Result<VerifiedModel> {
    let key = kiln_signing::read_verifying_key(public_key)
        .await
        .map_err(|e| Error::Usage(format!("--public-key: {e}")))?;
    let parsed = ModelReference::parse(reference)?;
    let scratch_dir = std::env::temp_dir().join(format!("kiln-verify-{}", std::process::id()));
    let scratch = ArtifactStore::open(&scratch_dir.to_string_lossy())?;
    let outcome: Result<VerifiedModel> = async {
        let resolved = resolve(&parsed, local_registry, &scratch).await?;
        let verified = kiln_signing::verify_store(&resolved.bundle, &key).await?;
        Ok(VerifiedModel {
            description: resolved.description,
            verified,
            key_hint: key.hint(),
        })
    }
    .await;
    if scratch_dir.exists() {
        std::fs::remove_dir_all(&scratch_dir).ok();
    }
    outcome
}

impl VerifiedModel {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "verified: {} — {} files signed with the {} key {} (OMS root sha256 {})\n",
            self.description,
            self.verified.files.len(),
            self.verified.curve,
            &self.key_hint[..16],
            self.verified.root_digest
        )
    }

    /// The same as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.description,
            "verified": true,
            "method": self.verified.method.name(),
            "curve": self.verified.curve,
            "key_hint": self.key_hint,
            "root_sha256": self.verified.root_digest,
            "files": self.verified.files,
        })
    }
}
