//! The certificates that come with a report, in whichever form the guest had them.

use crate::cert_table::{self, CertTableEntry, Guid};
use crate::error::CertError;
use der::Decode;
use x509_cert::Certificate;

/// DER certificates supplied with a report. Only the VCEK is required: when ASK or ARK are
/// missing the pinned copies are used, and when present they must chain to a pinned ARK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateBundle {
    /// The VCEK, DER; required by verification.
    pub vcek: Option<Vec<u8>>,
    /// A VLEK, DER, if the host supplied one; carried along but never used for verification.
    pub vlek: Option<Vec<u8>>,
    /// The ASK, DER; when absent the pinned root's ASK is used.
    pub ask: Option<Vec<u8>>,
    /// The ARK, DER; only selects among the pinned roots, and must be one of them.
    pub ark: Option<Vec<u8>>,
}

impl CertificateBundle {
    /// A VCEK given as DER or PEM.
    pub fn from_vcek(der_or_pem: &[u8]) -> Result<CertificateBundle, CertError> {
        Ok(CertificateBundle {
            vcek: Some(to_der(der_or_pem, "VCEK")?),
            ..CertificateBundle::default()
        })
    }

    /// The certificate table of an extended report or of configfs-tsm's `auxblob`.
    pub fn from_cert_table(table: &[u8]) -> Result<CertificateBundle, CertError> {
        let mut bundle = CertificateBundle::default();
        for CertTableEntry { guid, data } in cert_table::parse(table)? {
            let slot = match guid {
                Guid::VCEK => &mut bundle.vcek,
                Guid::VLEK => &mut bundle.vlek,
                Guid::ASK => &mut bundle.ask,
                Guid::ARK => &mut bundle.ark,
                // Hosts may add entries of their own; they carry no authority here.
                _ => continue,
            };
            *slot = Some(data);
        }
        Ok(bundle)
    }

    /// Adds an ASK+ARK chain in PEM, ASK first (the format AMD's KDS serves as `cert_chain`).
    pub fn with_chain_pem(mut self, pem: &[u8]) -> Result<CertificateBundle, CertError> {
        let certs = decode_pem_chain(pem).map_err(|reason| CertError::Decode {
            which: "ASK/ARK chain",
            reason,
        })?;
        let [ask, ark] = certs.as_slice() else {
            return Err(CertError::Decode {
                which: "ASK/ARK chain",
                reason: format!(
                    "expected 2 certificates (ASK then ARK), found {}",
                    certs.len()
                ),
            });
        };
        self.ask = Some(encode(ask, "ASK")?);
        self.ark = Some(encode(ark, "ARK")?);
        Ok(self)
    }

    /// The certificate table form, for sending evidence over the wire.
    pub fn to_cert_table(&self) -> Vec<u8> {
        let entries: Vec<CertTableEntry> = [
            (Guid::VCEK, &self.vcek),
            (Guid::VLEK, &self.vlek),
            (Guid::ASK, &self.ask),
            (Guid::ARK, &self.ark),
        ]
        .into_iter()
        .filter_map(|(guid, data)| {
            data.as_ref().map(|d| CertTableEntry {
                guid,
                data: d.clone(),
            })
        })
        .collect();
        cert_table::encode(&entries)
    }
}

fn encode(cert: &Certificate, which: &'static str) -> Result<Vec<u8>, CertError> {
    der::Encode::to_der(cert).map_err(|e| CertError::Decode {
        which,
        reason: e.to_string(),
    })
}

/// Accepts DER or PEM and returns DER.
pub fn to_der(der_or_pem: &[u8], which: &'static str) -> Result<Vec<u8>, CertError> {
    if der_or_pem.starts_with(b"-----BEGIN") {
        let cert = decode_pem(der_or_pem).map_err(|reason| CertError::Decode { which, reason })?;
        encode(&cert, which)
    } else {
        decode(der_or_pem, which)?;
        Ok(der_or_pem.to_vec())
    }
}

pub(crate) fn decode(der: &[u8], which: &'static str) -> Result<Certificate, CertError> {
    Certificate::from_der(der).map_err(|e| CertError::Decode {
        which,
        reason: e.to_string(),
    })
}

/// One PEM certificate. Not `Certificate::from_pem`: der 0.7.10's streaming PEM reader loops
/// forever when the base64 body is shorter than the DER length it announces (found by the
/// `cert_table` fuzz target; `fuzz/seeds/cert_table/crash-pem-truncated-base64`), so the body
/// is decoded whole first and then parsed as DER, which fails on truncation.
fn decode_pem(pem: &[u8]) -> Result<Certificate, String> {
    let (label, der) = der::pem::decode_vec(pem).map_err(|e| e.to_string())?;
    if label != "CERTIFICATE" {
        return Err(format!("PEM label is {label:?}, not \"CERTIFICATE\""));
    }
    Certificate::from_der(&der).map_err(|e| e.to_string())
}

/// Concatenated PEM certificates, in order. Replaces `Certificate::load_pem_chain`, which
/// has the same hang (it calls `from_pem`) and underflows on an input of only line breaks.
pub(crate) fn decode_pem_chain(pem: &[u8]) -> Result<Vec<Certificate>, String> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = pem.trim_ascii_start();
    while !rest.is_empty() {
        let end = rest
            .windows(END.len())
            .position(|w| w == END)
            .ok_or("a certificate lacks its -----END CERTIFICATE----- line")?
            + END.len();
        certs.push(decode_pem(&rest[..end])?);
        rest = rest[end..].trim_ascii_start();
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Certificate::from_pem` (der 0.7.10) never returns on this input: see `decode_pem`.
    #[test]
    fn a_truncated_pem_body_is_an_error_not_a_hang() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIF\n\n-----END CERTIFICATE-----\n";
        assert!(CertificateBundle::from_vcek(pem).is_err());
        assert!(CertificateBundle::default().with_chain_pem(pem).is_err());
        // `load_pem_chain` underflows on this one in debug builds.
        assert!(decode_pem_chain(b"\r\n\n").unwrap().is_empty());
    }
}
