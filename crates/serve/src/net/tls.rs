//! TLS on kiln-serve's listeners (rustls), with the certificate, key and client CA
//! re-read when their files change: cert-manager and the kubelet rotate mounted secrets
//! in place, and a rotation must not need a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates: when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// A TLS configuration that follows its files.
pub struct Tls {
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    current: RwLock<(Vec<Option<SystemTime>>, Arc<ServerConfig>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn pem_error(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: cannot read the {what}: {e}", path.display())
}

impl Tls {
    /// Reads the files; `alpn` lists the protocols offered (`h2`, `http/1.1`).
    pub fn load(files: TlsFiles, alpn: &[&[u8]]) -> Result<Tls, String> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let stamps = Self::stamps(&files);
        let config = Self::build(&files, &alpn)?;
        Ok(Tls {
            files,
            alpn,
            current: RwLock::new((stamps, config)),
        })
    }

    fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
        [
            Some(&files.cert),
            Some(&files.key),
            files.client_ca.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|p| modified(p))
        .collect()
    }

    fn build(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<Arc<ServerConfig>, String> {
        let chain = CertificateDer::pem_file_iter(&files.cert)
            .map_err(|e| pem_error(&files.cert, "certificate", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(&files.cert, "certificate", e))?;
        if chain.is_empty() {
            return Err(format!(
                "{}: no PEM certificate in the file",
                files.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| pem_error(&files.key, "private key", e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &files.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(ca)
                    .map_err(|e| pem_error(ca, "client CA", e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(ca, "client CA", e))?;
                for cert in certs {
                    roots.add(cert).map_err(|e| pem_error(ca, "client CA", e))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| pem_error(ca, "client CA", e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "{} and {}: the key does not fit the certificate: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
        config.alpn_protocols = alpn.to_vec();
        Ok(Arc::new(config))
    }

    /// The acceptor for a new connection: the configuration as last loaded.
    pub fn acceptor(&self) -> TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(current.1.clone())
    }

    /// Re-reads the files if any changed (blocking file I/O: call it off the async
    /// workers). A file caught half-written keeps the previous configuration; the next
    /// check tries again. Returns whether a new configuration is in use.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = Self::stamps(&self.files);
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.0 == stamps {
                return false;
            }
        }
        match Self::build(&self.files, &self.alpn) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (stamps, config);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS files changed but cannot be loaded; keeping the previous certificate");
                false
            }
        }
    }
}
