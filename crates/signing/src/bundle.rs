//! The OMS v1.0 signature file: a Sigstore bundle (v0.3 media type) holding a DSSE
//! envelope whose payload is an in-toto Statement v1 with the OMS predicate. Reading
//! one checks its structure the way the OMS schemas do (spec §8.1, §8.3) before any
//! key is involved: a signature file that is not an OMS bundle is refused with the
//! field that is wrong.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::SignatureError;

/// The Sigstore bundle media type Kiln writes (the one `model_signing` 1.1 writes).
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The media type prefix every Sigstore bundle has.
pub const MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The OMS v1.0 predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// The signature file, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigstoreBundle {
    pub media_type: String,
    pub verification_material: Value,
    pub dsse_envelope: Envelope,
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The statement, base64.
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature (`keyid` absent, empty or null: OMS does not use it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The DER signature, base64.
    pub sig: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
}

/// The in-toto statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

/// The model as a whole: its name and root digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

/// The OMS predicate: every file with its digest, and how they were hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    pub resources: Vec<Resource>,
    pub serialization: Serialization,
}

/// One file (or, for `shards`, one byte range of a file) and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    pub digest: String,
    pub algorithm: String,
}

/// How the files were enumerated and hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serialization {
    /// `files` or `shards`.
    pub method: String,
    pub hash_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_size: Option<u64>,
    pub allow_symlinks: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
}

/// Which PKI the bundle's verification material names (spec §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A bare public key, identified by its hint (or, before model_signing 1.1, its bytes).
    Key,
    /// A certificate chain.
    Certificate,
    /// Sigstore keyless: a Fulcio certificate and transparency-log entries.
    Sigstore,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Key => "key",
            Method::Certificate => "certificate",
            Method::Sigstore => "sigstore",
        }
    }
}

/// A signature file whose structure has been checked; nothing is verified yet.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    pub bundle: SigstoreBundle,
    pub method: Method,
    /// The decoded payload bytes (what the signature covers, through DSSE's PAE).
    pub payload: Vec<u8>,
    pub statement: Statement,
}

fn malformed(message: impl Into<String>) -> SignatureError {
    SignatureError::Malformed(message.into())
}

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The OMS root digest: sha256 over the resources' raw digests, in order (spec §6.5.1).
pub fn root_digest(resources: &[Resource]) -> Result<String, SignatureError> {
    let mut hasher = Sha256::new();
    for r in resources {
        let raw = hex::decode(&r.digest).map_err(|_| {
            malformed(format!(
                "predicate.resources: `{}` has a digest that is not hex",
                r.name
            ))
        })?;
        hasher.update(raw);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Reads a signature file and checks its structure: the Sigstore bundle (media
/// type, verification material for one of the three methods, envelope), then the
/// decoded statement (type, OMS predicate type, one subject whose root digest matches
/// the resources, sorted resources, a known serialization).
pub fn parse(bytes: &[u8]) -> Result<ParsedBundle, SignatureError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(malformed("the file is empty"));
    }
    let raw: Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let Some(object) = raw.as_object() else {
        return Err(malformed("not a JSON object"));
    };
    for field in ["mediaType", "verificationMaterial", "dsseEnvelope"] {
        if !object.contains_key(field) {
            return Err(malformed(format!("no `{field}`: not a Sigstore bundle")));
        }
    }
    let bundle: SigstoreBundle = serde_json::from_value(raw.clone())
        .map_err(|e| malformed(format!("not a Sigstore bundle: {e}")))?;
    if !bundle.media_type.starts_with(MEDIA_TYPE_PREFIX) {
        return Err(malformed(format!(
            "mediaType `{}` is not a Sigstore bundle's",
            bundle.media_type
        )));
    }
    let method = method_of(&bundle.verification_material)?;
    let envelope = &bundle.dsse_envelope;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(malformed(format!(
            "dsseEnvelope.payloadType is `{}`, not `{PAYLOAD_TYPE}`",
            envelope.payload_type
        )));
    }
    if envelope.signatures.len() != 1 {
        return Err(malformed(format!(
            "dsseEnvelope.signatures has {} entries; OMS signs with exactly one",
            envelope.signatures.len()
        )));
    }
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|e| malformed(format!("dsseEnvelope.payload is not base64: {e}")))?;
    let statement = parse_statement(&payload)?;
    Ok(ParsedBundle {
        bundle,
        method,
        payload,
        statement,
    })
}

fn method_of(material: &Value) -> Result<Method, SignatureError> {
    let Some(material) = material.as_object() else {
        return Err(malformed("verificationMaterial is not an object"));
    };
    let nonempty_string = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if let Some(key) = material.get("publicKey") {
        let ok = key.get("hint").is_some_and(nonempty_string)
            || key.get("rawBytes").is_some_and(nonempty_string);
        if !ok {
            return Err(malformed(
                "verificationMaterial.publicKey has neither `hint` nor `rawBytes`",
            ));
        }
        return Ok(Method::Key);
    }
    if let Some(chain) = material.get("x509CertificateChain") {
        let certificates = chain["certificates"].as_array().map(Vec::as_slice);
        match certificates {
            Some(list)
                if !list.is_empty() && list.iter().all(|c| nonempty_string(&c["rawBytes"])) =>
            {
                return Ok(Method::Certificate);
            }
            _ => {
                return Err(malformed(
                    "verificationMaterial.x509CertificateChain.certificates must list at least one certificate with `rawBytes`",
                ));
            }
        }
    }
    if let Some(certificate) = material.get("certificate") {
        if !nonempty_string(&certificate["rawBytes"]) {
            return Err(malformed(
                "verificationMaterial.certificate has no `rawBytes`",
            ));
        }
        let entries = material
            .get("tlogEntries")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if entries == 0 {
            return Err(malformed(
                "verificationMaterial.tlogEntries is missing or empty: the sigstore method needs at least one transparency-log entry",
            ));
        }
        return Ok(Method::Sigstore);
    }
    Err(malformed(
        "verificationMaterial names no key, certificate chain or certificate",
    ))
}

fn parse_statement(payload: &[u8]) -> Result<Statement, SignatureError> {
    let raw: Value = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("the DSSE payload is not JSON: {e}")))?;
    if raw["_type"] != STATEMENT_TYPE {
        return Err(malformed(format!(
            "statement _type is {}, not `{STATEMENT_TYPE}`",
            raw["_type"]
        )));
    }
    if raw["predicateType"] != PREDICATE_TYPE {
        return Err(malformed(format!(
            "statement predicateType is {}, not `{PREDICATE_TYPE}`",
            raw["predicateType"]
        )));
    }
    let statement: Statement = serde_json::from_value(raw)
        .map_err(|e| malformed(format!("the statement's OMS predicate: {e}")))?;
    let predicate = &statement.predicate;
    if predicate.resources.is_empty() {
        return Err(malformed("predicate.resources is empty"));
    }
    if predicate
        .resources
        .windows(2)
        .any(|w| w[0].name >= w[1].name)
    {
        return Err(malformed(
            "predicate.resources are not sorted by name (or a name repeats)",
        ));
    }
    let serialization = &predicate.serialization;
    match (serialization.method.as_str(), serialization.shard_size) {
        ("files", None) => {}
        ("files", Some(_)) => {
            return Err(malformed(
                "predicate.serialization: shard_size with method `files`",
            ));
        }
        ("shards", Some(size)) if size > 0 => {}
        ("shards", _) => {
            return Err(malformed(
                "predicate.serialization: method `shards` needs a positive shard_size",
            ));
        }
        (other, _) => {
            return Err(malformed(format!(
                "predicate.serialization.method `{other}` is neither `files` nor `shards`"
            )));
        }
    }
    if let Some(r) = predicate
        .resources
        .iter()
        .find(|r| r.algorithm != serialization.hash_type)
    {
        return Err(malformed(format!(
            "predicate.resources: `{}` is hashed with {}, the serialization says {}",
            r.name, r.algorithm, serialization.hash_type
        )));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(malformed(format!(
            "statement has {} subjects; OMS has exactly one",
            statement.subject.len()
        )));
    };
    if subject.name.is_empty() {
        return Err(malformed("subject[0].name is empty"));
    }
    let root = root_digest(&predicate.resources)?;
    match subject.digest.get("sha256") {
        Some(d) if d.eq_ignore_ascii_case(&root) => {}
        Some(d) => {
            return Err(malformed(format!(
                "subject[0].digest.sha256 is {d}, but the resources hash to {root}"
            )));
        }
        None => return Err(malformed("subject[0].digest has no sha256")),
    }
    Ok(statement)
}
