//! OpenSSF Model Signing (OMS v1.0) for model bundles.
//!
//! A signature is a detached Sigstore bundle, `model.sig`, stored inside the bundle
//! folder and left out of what it signs. Its DSSE envelope carries an in-toto
//! statement whose OMS predicate lists every file of the bundle with its sha256, and
//! whose one subject is the root digest over them. Kiln signs with the `key` method
//! (a bare ECDSA key, P-256/P-384/P-521), byte-compatible with
//! `model_signing sign key` and `model_signing verify key`: either tool verifies
//! what the other signed.
//!
//! Verification checks, in order: the file's structure ([`bundle::parse`]), that
//! the bundle names this key, the DSSE signature, then every file of the bundle
//! against the signed manifest. The first file that changed, was added or was removed
//! is named.

pub mod bundle;
pub mod keys;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kiln_core::store::ArtifactStore;
use kiln_core::store::sha256_hex;
use serde_json::json;

pub use bundle::{Method, ParsedBundle, Resource, Serialization, Statement};
pub use keys::{SigningKey, VerifyingKey};

/// The signature's file name inside a bundle (`model_signing`'s default).
pub const SIGNATURE_FILE: &str = "model.sig";

/// Paths OMS leaves out of every signature (top-level components, spec §6.2).
pub const DEFAULT_IGNORED: &[&str] = &[".git", ".gitattributes", ".github", ".gitignore"];

/// Why a model could not be signed or verified.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The key could not be read.
    #[error("{0}")]
    Key(String),
    /// The signature file is not a well-formed OMS bundle.
    #[error("not an OMS v1.0 signature: {0}")]
    Malformed(String),
    /// The signature was made for another key.
    #[error("signed by another key (hint {signed}), not the given public key (hint {given})")]
    WrongKey { signed: String, given: String },
    /// The DSSE signature does not verify.
    #[error("the signature does not verify with the given public key ({0})")]
    BadSignature(String),
    /// A signing method or hash this verifier does not check.
    #[error("{0}")]
    Unsupported(String),
    /// There is no signature.
    #[error("unsigned: no {file} beside the bundle's files")]
    Unsigned { file: String },
    /// A signed file's contents differ.
    #[error("{file} changed since it was signed (sha256 {actual}, signed {expected})")]
    Changed {
        file: String,
        expected: String,
        actual: String,
    },
    /// A file the signature does not list.
    #[error("{file} was added after signing (the signature does not list it)")]
    Added { file: String },
    /// A signed file is gone.
    #[error("{file} was removed after signing")]
    Removed { file: String },
    /// Nothing to sign.
    #[error("the model has no file to sign")]
    Empty,
}

impl From<SignatureError> for kiln_core::Error {
    fn from(e: SignatureError) -> Self {
        kiln_core::Error::Usage(e.to_string())
    }
}

/// What a verified signature vouches for.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The statement's subject name (informational).
    pub model_name: String,
    /// The OMS root digest (sha256 over the files' digests).
    pub root_digest: String,
    /// The signing method and curve.
    pub method: Method,
    pub curve: &'static str,
    /// Every signed file, by name.
    pub files: Vec<String>,
}

/// Whether OMS leaves `path` out of the signing scope: the default paths and the
/// signature itself at the top level, and the recorded ignore paths (exactly, or
/// their subtrees).
fn ignored(path: &str, ignore_paths: &[String]) -> bool {
    let top = path.split('/').next().unwrap_or(path);
    DEFAULT_IGNORED.contains(&top)
        || path == SIGNATURE_FILE
        || ignore_paths
            .iter()
            .any(|p| path == p || path.starts_with(&format!("{p}/")))
}

/// A signature just made.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    /// The signature file's bytes ([`SIGNATURE_FILE`]).
    pub bytes: Vec<u8>,
    /// The OMS root digest the statement's subject carries.
    pub root_digest: String,
}

/// Signs a model's files (relative `/`-separated paths and their bytes) with the
/// `key` method. `model_name` is the subject's name (the bundle folder's name, by
/// OMS's convention).
pub fn sign(
    model_name: &str,
    files: &[(String, Bytes)],
    key: &SigningKey,
) -> Result<Signed, SignatureError> {
    let mut ignore_paths: Vec<String> = DEFAULT_IGNORED
        .iter()
        .chain(std::iter::once(&SIGNATURE_FILE))
        .map(|p| p.to_string())
        .collect();
    ignore_paths.sort();
    let mut resources: Vec<Resource> = files
        .iter()
        .filter(|(name, _)| !ignored(name, &ignore_paths))
        .map(|(name, bytes)| Resource {
            name: name.clone(),
            digest: sha256_hex(bytes),
            algorithm: "sha256".into(),
        })
        .collect();
    if resources.is_empty() {
        return Err(SignatureError::Empty);
    }
    resources.sort_by(|a, b| a.name.cmp(&b.name));
    let root = bundle::root_digest(&resources)?;
    let statement = json!({
        "_type": bundle::STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": bundle::PREDICATE_TYPE,
        "predicate": {
            "resources": resources,
            "serialization": Serialization {
                method: "files".into(),
                hash_type: "sha256".into(),
                shard_size: None,
                allow_symlinks: false,
                ignore_paths,
            },
        },
    });
    let payload = serde_json::to_vec_pretty(&statement)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let signature = key.sign(&bundle::pae(bundle::PAYLOAD_TYPE, &payload));
    let document = json!({
        "mediaType": bundle::MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key.verifying_key().hint()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(&payload),
            "payloadType": bundle::PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(&signature), "keyid": ""}],
        },
    });
    let mut bytes = serde_json::to_vec_pretty(&document)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    bytes.push(b'\n');
    Ok(Signed {
        bytes,
        root_digest: root,
    })
}

/// Verifies a signature file against a public key and the model's files as they are
/// now. Only the `key` method is checked cryptographically; certificate and Sigstore
/// signatures are refused as unsupported after their structure is checked.
pub fn verify(
    signature: &[u8],
    key: &VerifyingKey,
    files: &[(String, Bytes)],
) -> Result<Verified, SignatureError> {
    let parsed = bundle::parse(signature)?;
    if parsed.method != Method::Key {
        return Err(SignatureError::Unsupported(format!(
            "signed with the `{}` method; Kiln verifies `key` signatures (bare ECDSA keys)",
            parsed.method.name()
        )));
    }
    let given = key.hint();
    if let Some(signed) = parsed.bundle.verification_material["publicKey"]["hint"].as_str()
        && !signed.eq_ignore_ascii_case(&given)
    {
        return Err(SignatureError::WrongKey {
            signed: signed.to_string(),
            given,
        });
    }
    let envelope = &parsed.bundle.dsse_envelope;
    let der = STANDARD
        .decode(&envelope.signatures[0].sig)
        .map_err(|e| SignatureError::Malformed(format!("the DSSE signature is not base64: {e}")))?;
    key.verify(&bundle::pae(&envelope.payload_type, &parsed.payload), &der)?;
    let predicate = &parsed.statement.predicate;
    let serialization = &predicate.serialization;
    if serialization.hash_type != "sha256" {
        return Err(SignatureError::Unsupported(format!(
            "files are hashed with {}; Kiln verifies sha256 signatures",
            serialization.hash_type
        )));
    }
    let present: BTreeMap<&str, &Bytes> = files
        .iter()
        .filter(|(name, _)| !ignored(name, &serialization.ignore_paths))
        .map(|(n, b)| (n.as_str(), b))
        .collect();
    let expected = expected_digests(&predicate.resources, serialization.shard_size)?;
    let mut names: Vec<&str> = present.keys().copied().collect();
    names.extend(expected.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    for name in &names {
        match (expected.get(*name), present.get(name)) {
            (Some(_), None) => {
                return Err(SignatureError::Removed {
                    file: name.to_string(),
                });
            }
            (None, Some(_)) => {
                return Err(SignatureError::Added {
                    file: name.to_string(),
                });
            }
            (Some(ranges), Some(bytes)) => check_file(name, ranges, bytes)?,
            (None, None) => {}
        }
    }
    Ok(Verified {
        model_name: parsed.statement.subject[0].name.clone(),
        root_digest: parsed.statement.subject[0].digest["sha256"].clone(),
        method: parsed.method,
        curve: key.curve(),
        files: expected.into_keys().collect(),
    })
}

/// A signed file's expected digest: the whole file, or its byte ranges.
type Ranges = Vec<(Option<(u64, u64)>, String)>;

/// The signed digests by file. For `shards`, a resource named `path:start:end`
/// is a byte range of `path` (the last two colon-separated numbers, spec §6.3.2).
fn expected_digests(
    resources: &[Resource],
    shard_size: Option<u64>,
) -> Result<BTreeMap<String, Ranges>, SignatureError> {
    let mut by_file: BTreeMap<String, Ranges> = BTreeMap::new();
    for r in resources {
        let digest = r.digest.to_ascii_lowercase();
        if shard_size.is_none() {
            by_file
                .entry(r.name.clone())
                .or_default()
                .push((None, digest));
            continue;
        }
        let mut parts = r.name.rsplitn(3, ':');
        let (end, start, path) = (parts.next(), parts.next(), parts.next());
        let range = match (
            path,
            start.map(str::parse::<u64>),
            end.map(str::parse::<u64>),
        ) {
            (Some(path), Some(Ok(start)), Some(Ok(end))) if start < end => (path, start, end),
            _ => {
                return Err(SignatureError::Malformed(format!(
                    "shard resource `{}` is not `path:start:end`",
                    r.name
                )));
            }
        };
        by_file
            .entry(range.0.to_string())
            .or_default()
            .push((Some((range.1, range.2)), digest));
    }
    Ok(by_file)
}

fn check_file(name: &str, ranges: &Ranges, bytes: &[u8]) -> Result<(), SignatureError> {
    let changed = |expected: &str, actual: String| SignatureError::Changed {
        file: name.to_string(),
        expected: expected.to_string(),
        actual,
    };
    let mut covered = 0u64;
    let mut sorted: Vec<&(Option<(u64, u64)>, String)> = ranges.iter().collect();
    sorted.sort_by_key(|(range, _)| range.map(|r| r.0));
    for (range, expected) in sorted {
        let actual = match range {
            None => {
                covered = bytes.len() as u64;
                sha256_hex(bytes)
            }
            Some((start, end)) => {
                let slice = usize::try_from(*start)
                    .ok()
                    .zip(usize::try_from(*end).ok())
                    .and_then(|(s, e)| bytes.get(s..e));
                let Some(slice) = slice.filter(|_| *start == covered) else {
                    return Err(changed(expected, format!("{} bytes long", bytes.len())));
                };
                covered = *end;
                sha256_hex(slice)
            }
        };
        if &actual != expected {
            return Err(changed(expected, actual));
        }
    }
    if covered != bytes.len() as u64 {
        return Err(changed(
            "a shorter file",
            format!("{} bytes long", bytes.len()),
        ));
    }
    Ok(())
}

/// Every file under a store's root, with its bytes (sorted by path).
async fn read_all(store: &ArtifactStore) -> kiln_core::Result<Vec<(String, Bytes)>> {
    let mut files = Vec::new();
    for name in store.list("").await? {
        let bytes = store.get(&name).await?;
        files.push((name, bytes));
    }
    Ok(files)
}

/// Verifies the bundle in `store` against its [`SIGNATURE_FILE`]; an unsigned
/// bundle is an error like a tampered one. Errors name the bundle and the file.
pub async fn verify_store(
    store: &ArtifactStore,
    key: &VerifyingKey,
) -> kiln_core::Result<Verified> {
    let in_bundle = |e: SignatureError| kiln_core::Error::Usage(format!("{}: {e}", store.uri()));
    if !store.exists(SIGNATURE_FILE).await? {
        return Err(in_bundle(SignatureError::Unsigned {
            file: SIGNATURE_FILE.into(),
        }));
    }
    let signature = store.get(SIGNATURE_FILE).await?;
    let files = read_all(store).await?;
    verify(&signature, key, &files).map_err(in_bundle)
}

/// Reads a public key file (local path or store URI).
pub async fn read_verifying_key(uri: &str) -> kiln_core::Result<VerifyingKey> {
    let text = read_text(uri).await?;
    Ok(VerifyingKey::from_pem(&text, uri)?)
}

/// Reads a private key: `source` is PEM text itself, or a path/URI to a PEM file.
pub async fn read_signing_key(source: &str) -> kiln_core::Result<SigningKey> {
    if source.trim_start().starts_with("-----BEGIN") {
        return Ok(SigningKey::from_pem(source, "the signing key")?);
    }
    let text = read_text(source).await?;
    Ok(SigningKey::from_pem(&text, source)?)
}

async fn read_text(uri: &str) -> kiln_core::Result<String> {
    let object = kiln_core::store::ObjectRef::parse(uri)?;
    let bytes = object.get().await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| kiln_core::Error::Usage(format!("{uri}: not a PEM text file")))
}

#[cfg(test)]
mod tests;
