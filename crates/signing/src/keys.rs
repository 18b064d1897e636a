//! Bare ECDSA keys on the three curves OMS requires (P-256, P-384, P-521), read from
//! PEM (PKCS#8 or SEC1 private keys, SubjectPublicKeyInfo public keys) as OpenSSL and
//! Python's `cryptography` write them. Each curve signs with its own hash (SHA-256,
//! SHA-384, SHA-512), and signatures are DER, as `model_signing` makes them.

use ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};

use crate::SignatureError;

/// A private key that signs bundles.
#[derive(Clone)]
pub enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// A public key that verifies them.
#[derive(Clone)]
pub enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: the curve and the public key's hint.
        write!(
            f,
            "SigningKey({}, hint {})",
            self.curve(),
            self.verifying_key().hint()
        )
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({}, hint {})", self.curve(), self.hint())
    }
}

impl SigningKey {
    /// Reads a PEM private key (`BEGIN PRIVATE KEY` or `BEGIN EC PRIVATE KEY`);
    /// `what` names its source in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<SigningKey, SignatureError> {
        if let Ok(k) =
            p256::SecretKey::from_pkcs8_pem(pem).or_else(|_| p256::SecretKey::from_sec1_pem(pem))
        {
            return Ok(SigningKey::P256(k.into()));
        }
        if let Ok(k) =
            p384::SecretKey::from_pkcs8_pem(pem).or_else(|_| p384::SecretKey::from_sec1_pem(pem))
        {
            return Ok(SigningKey::P384(k.into()));
        }
        if let Ok(k) =
            p521::SecretKey::from_pkcs8_pem(pem).or_else(|_| p521::SecretKey::from_sec1_pem(pem))
        {
            let key = p521::ecdsa::SigningKey::from_bytes(&k.to_bytes())
                .map_err(|e| SignatureError::Key(format!("{what}: {e}")))?;
            return Ok(SigningKey::P521(key));
        }
        Err(SignatureError::Key(format!(
            "{what}: not a PEM ECDSA private key on P-256, P-384 or P-521 (PKCS#8 `BEGIN PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`, unencrypted)"
        )))
    }

    /// The curve's name.
    pub fn curve(&self) -> &'static str {
        self.verifying_key().curve()
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::P256(k) => VerifyingKey::P256(*k.verifying_key()),
            SigningKey::P384(k) => VerifyingKey::P384(*k.verifying_key()),
            SigningKey::P521(k) => VerifyingKey::P521(p521::ecdsa::VerifyingKey::from(k)),
        }
    }

    /// A DER-encoded ECDSA signature over `message`, hashed with the curve's hash.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            SigningKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            SigningKey::P521(k) => {
                let s: p521::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl VerifyingKey {
    /// Reads a PEM public key (`BEGIN PUBLIC KEY`); `what` names its source in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<VerifyingKey, SignatureError> {
        if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(VerifyingKey::P256(k.into()));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
            return Ok(VerifyingKey::P384(k.into()));
        }
        if let Ok(k) = p521::PublicKey::from_public_key_pem(pem) {
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&k.to_sec1_bytes())
                .map_err(|e| SignatureError::Key(format!("{what}: {e}")))?;
            return Ok(VerifyingKey::P521(key));
        }
        Err(SignatureError::Key(format!(
            "{what}: not a PEM ECDSA public key on P-256, P-384 or P-521 (`BEGIN PUBLIC KEY`)"
        )))
    }

    /// The curve's name.
    pub fn curve(&self) -> &'static str {
        match self {
            VerifyingKey::P256(_) => "P-256",
            VerifyingKey::P384(_) => "P-384",
            VerifyingKey::P521(_) => "P-521",
        }
    }

    /// The key as PEM SubjectPublicKeyInfo, with LF line ends.
    pub fn to_pem(&self) -> String {
        let pem = match self {
            VerifyingKey::P256(k) => p256::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            VerifyingKey::P384(k) => p384::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            VerifyingKey::P521(k) => {
                p521::PublicKey::from_sec1_bytes(&k.to_encoded_point(false).to_bytes())
                    .expect("a verifying key is a valid point")
                    .to_public_key_pem(LineEnding::LF)
            }
        };
        pem.expect("encoding a valid public key as PEM")
    }

    /// The key's hint in a bundle: sha256 of its PEM, in hex (as `model_signing` writes it).
    pub fn hint(&self) -> String {
        kiln_core::store::sha256_hex(self.to_pem().as_bytes())
    }

    /// Checks a DER signature over `message`.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        let bad = |e: ecdsa::Error| SignatureError::BadSignature(e.to_string());
        match self {
            VerifyingKey::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(der).map_err(bad)?;
                k.verify(message, &s).map_err(bad)
            }
            VerifyingKey::P384(k) => {
                let s = p384::ecdsa::Signature::from_der(der).map_err(bad)?;
                k.verify(message, &s).map_err(bad)
            }
            VerifyingKey::P521(k) => {
                let s = p521::ecdsa::Signature::from_der(der).map_err(bad)?;
                k.verify(message, &s).map_err(bad)
            }
        }
    }
}
