//! The certificates that come with a report, in whichever form the guest had them.

use crate::cert_table::{self, CertTableEntry, Guid};
use crate::error::CertError;
use der::Decode;
use x509_cert::Certificate;

/// DER certificates supplied with a report. Only the leaf (the VCEK, or the VLEK of a
/// VLEK-signed report) is required: when the intermediate or the ARK is missing the pinned
/// copies are used, and when present they must chain to a pinned ARK. Which slot a
/// certificate lands in is only routing (by its place or its common name): every certificate
/// is verified against the pinned roots whatever slot it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateBundle {
    /// The VCEK, DER; required to verify a VCEK-signed report.
    pub vcek: Option<Vec<u8>>,
    /// The VLEK, DER; required to verify a VLEK-signed report.
    pub vlek: Option<Vec<u8>>,
    /// The ASK, DER; when absent the pinned root's ASK is used.
    pub ask: Option<Vec<u8>>,
    /// The ASVK (the VLEK's issuer), DER; when absent the pinned ASVK is used. Certificate
    /// tables carry it under the ASK's GUID: it lands here by its common name.
    pub asvk: Option<Vec<u8>>,
    /// The ARK, DER; only selects among the pinned roots, and must be one of them.
    pub ark: Option<Vec<u8>>,
}

/// The intermediate slots are told apart by the certificate's subject common name: an ASVK
/// is `SEV-VLEK-<product>`, an ASK `SEV-<product>`.
fn is_asvk(der: &[u8]) -> bool {
    decode(der, "ASK")
        .ok()
        .and_then(|c| crate::x509::common_name(&c.tbs_certificate.subject))
        .is_some_and(|cn| cn.starts_with("SEV-VLEK-"))
}

/// A leaf is a VLEK if its subject is `SEV-VLEK`, else it is taken for a VCEK.
fn is_vlek(cert: &Certificate) -> bool {
    crate::x509::common_name(&cert.tbs_certificate.subject).as_deref() == Some("SEV-VLEK")
}

impl CertificateBundle {
    /// An endorsement-key certificate as a file or a download holds it: one certificate in
    /// DER, or PEM with the leaf (VCEK or VLEK, told apart by its subject name) first,
    /// optionally followed by its ASK (or ASVK) and the ARK, as Azure's and AMD's bundles
    /// are. The extra certificates are checked against the pinned ones like any other.
    pub fn from_endorsement(der_or_pem: &[u8]) -> Result<CertificateBundle, CertError> {
        let certs = if der_or_pem.trim_ascii_start().starts_with(b"-----BEGIN") {
            decode_pem_chain(der_or_pem).map_err(|reason| CertError::Decode {
                which: "certificate bundle",
                reason,
            })?
        } else {
            vec![decode(der_or_pem, "VCEK")?]
        };
        let mut bundle = CertificateBundle::default();
        match certs.as_slice() {
            [] => return Err(CertError::MissingVcek),
            [leaf, rest @ ..] if rest.len() <= 2 => {
                let (slot, which) = if is_vlek(leaf) {
                    (&mut bundle.vlek, "VLEK")
                } else {
                    (&mut bundle.vcek, "VCEK")
                };
                *slot = Some(encode(leaf, which)?);
                if let Some(intermediate) = rest.first() {
                    let der = encode(intermediate, "ASK")?;
                    if is_asvk(&der) {
                        bundle.asvk = Some(der);
                    } else {
                        bundle.ask = Some(der);
                    }
                }
                if let Some(ark) = rest.get(1) {
                    bundle.ark = Some(encode(ark, "ARK")?);
                }
            }
            more => {
                return Err(CertError::Decode {
                    which: "certificate bundle",
                    reason: format!(
                        "{} certificates; expected the VCEK or VLEK, then at most its ASK (or ASVK) and the ARK",
                        more.len()
                    ),
                })
            }
        }
        Ok(bundle)
    }

    /// A VCEK given as DER or PEM (a PEM bundle with its ASK and ARK after it is accepted too,
    /// see [`CertificateBundle::from_endorsement`]).
    pub fn from_vcek(der_or_pem: &[u8]) -> Result<CertificateBundle, CertError> {
        Self::from_endorsement(der_or_pem)
    }

    /// The certificate table of an extended report or of configfs-tsm's `auxblob`.
    pub fn from_cert_table(table: &[u8]) -> Result<CertificateBundle, CertError> {
        let mut bundle = CertificateBundle::default();
        for CertTableEntry { guid, data } in cert_table::parse(table)? {
            let slot = match guid {
                Guid::VCEK => &mut bundle.vcek,
                Guid::VLEK => &mut bundle.vlek,
                Guid::ASK if is_asvk(&data) => &mut bundle.asvk,
                Guid::ASK => &mut bundle.ask,
                Guid::ARK => &mut bundle.ark,
                // Hosts may add entries of their own; they carry no authority here.
                _ => continue,
            };
            *slot = Some(data);
        }
        Ok(bundle)
    }

    /// True if the bundle holds the leaf certificate a report signed by `endorser` needs.
    pub fn has_leaf(&self, endorser: crate::Endorser) -> bool {
        match endorser {
            crate::Endorser::Vcek => self.vcek.is_some(),
            crate::Endorser::Vlek => self.vlek.is_some(),
        }
    }

    /// Adds an intermediate+ARK chain in PEM, intermediate first (the format AMD's KDS serves
    /// as `vcek/v1/<product>/cert_chain`, ASK then ARK, and `vlek/v1/<product>/cert_chain`,
    /// ASVK then ARK).
    pub fn with_chain_pem(mut self, pem: &[u8]) -> Result<CertificateBundle, CertError> {
        let certs = decode_pem_chain(pem).map_err(|reason| CertError::Decode {
            which: "ASK/ARK chain",
            reason,
        })?;
        let [ask, ark] = certs.as_slice() else {
            return Err(CertError::Decode {
                which: "ASK/ARK chain",
                reason: format!(
                    "expected 2 certificates (ASK or ASVK, then ARK), found {}",
                    certs.len()
                ),
            });
        };
        let ask = encode(ask, "ASK")?;
        if is_asvk(&ask) {
            self.asvk = Some(ask);
        } else {
            self.ask = Some(ask);
        }
        self.ark = Some(encode(ark, "ARK")?);
        Ok(self)
    }

    /// The certificate table form, for sending evidence over the wire. An ASVK goes under
    /// the ASK's GUID, as hosts write it; a table holds one entry per GUID, so a bundle with
    /// both keeps the ASK (the verifier has the pinned AMD ASVKs).
    pub fn to_cert_table(&self) -> Vec<u8> {
        let intermediate = if self.ask.is_some() {
            &self.ask
        } else {
            &self.asvk
        };
        let entries: Vec<CertTableEntry> = [
            (Guid::VCEK, &self.vcek),
            (Guid::VLEK, &self.vlek),
            (Guid::ASK, intermediate),
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
