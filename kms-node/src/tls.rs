//! The node's TLS listener identity, read once: what it serves is what it publishes.

use crate::config::NodeConfig;
use std::path::PathBuf;

/// Why the TLS identity could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("TLS: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file is not a PEM chain.
    #[error("TLS: {} is not a PEM certificate chain: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: der::Error,
    },
    /// The certificate file holds no certificate.
    #[error("TLS: {} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The certificate and key do not make a TLS identity.
    #[error("TLS: {0}")]
    Identity(#[source] tonic::transport::Error),
}

/// The listener's certificate chain and key (PEM), and the leaf's public key.
pub struct TlsIdentity {
    /// PEM certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
    /// The leaf's SubjectPublicKeyInfo (DER), registered on chain so guests can pin it.
    pub public_key: Vec<u8>,
}

impl TlsIdentity {
    /// Reads the configured identity (none without a `[tls]` section).
    pub fn load(cfg: &NodeConfig) -> Result<Option<TlsIdentity>, TlsError> {
        let Some(tls) = &cfg.tls else {
            return Ok(None);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.clone(),
                source,
            })
        };
        let cert_pem = read(&tls.cert)?;
        let key_pem = read(&tls.key)?;
        let chain =
            x509_cert::Certificate::load_pem_chain(&cert_pem).map_err(|source| TlsError::Pem {
                path: tls.cert.clone(),
                source,
            })?;
        let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
            path: tls.cert.clone(),
        })?;
        let public_key = der::Encode::to_der(&leaf.tbs_certificate.subject_public_key_info)
            .map_err(|source| TlsError::Pem {
                path: tls.cert.clone(),
                source,
            })?;
        Ok(Some(TlsIdentity {
            cert_pem,
            key_pem,
            public_key,
        }))
    }

    /// The public key, or nothing without TLS.
    pub fn public_key_of(identity: &Option<TlsIdentity>) -> Vec<u8> {
        identity
            .as_ref()
            .map(|t| t.public_key.clone())
            .unwrap_or_default()
    }
}
