//! The few X.509 operations AMD's certificates need: RSASSA-PSS/SHA-384 signatures checked over
//! the exact TBS bytes received, validity windows, and names.

use crate::error::{CertChainError, CertError};
use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
use const_oid::db::rfc5912::{ID_MGF_1, ID_RSASSA_PSS, ID_SHA_384};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Reader, SliceReader};
use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha384;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::name::Name;
use x509_cert::Certificate;

const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SALT_LEN_SHA384: u8 = 48;

/// A certificate together with the exact DER bytes it was decoded from.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl ParsedCert {
    pub fn parse(der: &[u8], which: &'static str) -> Result<ParsedCert, CertError> {
        Ok(ParsedCert {
            der: der.to_vec(),
            cert: crate::certs::decode(der, which)?,
        })
    }

    /// The TBSCertificate exactly as received: a signature is checked over these bytes, never
    /// over a re-encoding of the parsed structure.
    fn tbs_bytes(&self) -> Result<&[u8], der::Error> {
        let mut reader = SliceReader::new(&self.der)?;
        // Step into the outer Certificate SEQUENCE; its first element is the TBSCertificate.
        der::Header::decode(&mut reader)?;
        reader.tlv_bytes()
    }

    pub fn rsa_public_key(&self, which: &'static str) -> Result<RsaPublicKey, CertError> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| CertError::RsaKey {
                which,
                reason: e.to_string(),
            })?;
        RsaPublicKey::from_public_key_der(&spki).map_err(|e| CertError::RsaKey {
            which,
            reason: e.to_string(),
        })
    }

    pub fn spki_der(&self) -> Vec<u8> {
        // Encoding an SPKI that was just decoded from DER cannot fail.
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap_or_default()
    }

    pub fn common_name(&self, subject: bool) -> Option<String> {
        let tbs = &self.cert.tbs_certificate;
        common_name(if subject { &tbs.subject } else { &tbs.issuer })
    }

    /// Checks that `issuer_key` signed this certificate with RSASSA-PSS, SHA-384, MGF1-SHA-384
    /// and a 48-byte salt, the only scheme AMD uses. Anything else is refused rather than
    /// negotiated, so a downgrade to a weaker scheme is impossible.
    pub fn verify_signed_by(
        &self,
        issuer_key: &RsaPublicKey,
        which: &'static str,
        bad_signature: CertChainError,
    ) -> Result<(), CertChainError> {
        let alg = &self.cert.signature_algorithm;
        if alg != &self.cert.tbs_certificate.signature || !is_rsa_pss_sha384(alg) {
            return Err(CertChainError::SignatureAlgorithm {
                which,
                found: describe(alg),
            });
        }
        let tbs = self.tbs_bytes().map_err(|_| bad_signature.clone())?;
        let sig_bytes = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| bad_signature.clone())?;
        let signature =
            rsa::pss::Signature::try_from(sig_bytes).map_err(|_| bad_signature.clone())?;
        rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(
            issuer_key.clone(),
            SALT_LEN_SHA384 as usize,
        )
        .verify(tbs, &signature)
        .map_err(|_| bad_signature)
    }

    /// Checks the validity window at `at` (unix seconds).
    pub fn check_validity(&self, at: u64, which: &'static str) -> Result<(), CertChainError> {
        let (not_before, not_after) = self.validity();
        if at < not_before {
            return Err(CertChainError::NotYetValid {
                which,
                not_before,
                at,
            });
        }
        if at > not_after {
            return Err(CertChainError::Expired {
                which,
                not_after,
                at,
            });
        }
        Ok(())
    }

    pub fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate.serial_number.as_bytes())
    }

    /// AMD's profile for every certificate of a chain: version 3, the expected subject common
    /// name, and no critical extension beyond basicConstraints and keyUsage (which the CA
    /// check reads).
    pub fn check_profile(
        &self,
        which: &'static str,
        subject_cn: &str,
    ) -> Result<(), CertChainError> {
        let tbs = &self.cert.tbs_certificate;
        if tbs.version != x509_cert::Version::V3 {
            return Err(CertChainError::CertificateVersion {
                which,
                found: tbs.version as u8 + 1,
            });
        }
        self.check_common_name(which, "subject", subject_cn)?;
        for ext in tbs.extensions.iter().flatten() {
            if ext.critical
                && ext.extn_id != ID_CE_BASIC_CONSTRAINTS
                && ext.extn_id != ID_CE_KEY_USAGE
            {
                return Err(CertChainError::UnknownCriticalExtension {
                    which,
                    oid: ext.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The subject's or issuer's common name must be exactly `expected`.
    pub fn check_common_name(
        &self,
        which: &'static str,
        field: &'static str,
        expected: &str,
    ) -> Result<(), CertChainError> {
        let found = self.common_name(field == "subject");
        if found.as_deref() != Some(expected) {
            return Err(CertChainError::CommonName {
                which,
                field,
                expected: expected.to_string(),
                found,
            });
        }
        Ok(())
    }

    /// An ARK or ASK must be a CA whose key may sign certificates: basicConstraints CA:TRUE
    /// and, when keyUsage is present, keyCertSign.
    pub fn check_ca(&self, which: &'static str) -> Result<(), CertChainError> {
        let ext = |oid| {
            self.cert
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(move |e| e.extn_id == oid)
        };
        let ca = ext(ID_CE_BASIC_CONSTRAINTS)
            .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|bc| bc.ca);
        if !ca {
            return Err(CertChainError::NotCa {
                which,
                problem: "basicConstraints CA:TRUE is missing",
            });
        }
        if let Some(e) = ext(ID_CE_KEY_USAGE) {
            let usage =
                KeyUsage::from_der(e.extn_value.as_bytes()).map_err(|_| CertChainError::NotCa {
                    which,
                    problem: "its keyUsage does not decode",
                })?;
            if !usage.key_cert_sign() {
                return Err(CertChainError::NotCa {
                    which,
                    problem: "its keyUsage does not allow keyCertSign",
                });
            }
        }
        Ok(())
    }
}

pub fn is_rsa_pss_sha384(alg: &AlgorithmIdentifierOwned) -> bool {
    if alg.oid != ID_RSASSA_PSS {
        return false;
    }
    let Some(params) = &alg.parameters else {
        return false;
    };
    let Ok(params_der) = params.to_der() else {
        return false;
    };
    let Ok(params) = RsaPssParams::from_der(&params_der) else {
        return false;
    };
    let mgf_hash = params.mask_gen.parameters.map(|p| p.oid);
    params.hash.oid == ID_SHA_384
        && params.mask_gen.oid == ID_MGF_1
        && mgf_hash == Some(ID_SHA_384)
        && params.salt_len == SALT_LEN_SHA384
}

fn describe(alg: &AlgorithmIdentifierOwned) -> String {
    if alg.oid == ID_RSASSA_PSS {
        "RSASSA-PSS with other parameters".to_string()
    } else {
        alg.oid.to_string()
    }
}

pub fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == COMMON_NAME)
        .and_then(|atv| std::str::from_utf8(atv.value.value()).ok())
        .map(str::to_owned)
}
