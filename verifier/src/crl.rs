//! AMD's certificate revocation list for a product (`https://kdsintf.amd.com/vcek/v1/{product}/crl`),
//! signed by the ARK. It revokes ASKs (and VLEK signing keys) whose keys AMD no longer trusts.

use crate::error::{CertChainError, CertError};
use crate::x509::is_rsa_pss_sha384;
use der::{Decode, Reader, SliceReader};
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha384;
use x509_cert::crl::CertificateList;

/// A decoded CRL with the exact bytes its signature covers.
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    list: CertificateList,
}

impl Crl {
    /// Decodes a DER CRL. Nothing is verified yet: [`Verifier::with_crl`](crate::Verifier::with_crl)
    /// checks which trusted ARK signed it.
    pub fn from_der(der: &[u8]) -> Result<Crl, CertError> {
        let list =
            CertificateList::from_der(der).map_err(|e| CertError::CrlDecode(e.to_string()))?;
        Ok(Crl {
            der: der.to_vec(),
            list,
        })
    }

    /// Whether `ark_key` signed this CRL (RSASSA-PSS, SHA-384, salt 48, the only scheme AMD
    /// uses). That, not the issuer name it claims, decides which chains it applies to.
    pub(crate) fn is_signed_by(&self, ark_key: &RsaPublicKey) -> bool {
        if !is_rsa_pss_sha384(&self.list.signature_algorithm) {
            return false;
        }
        let verify = || -> Option<()> {
            let mut reader = SliceReader::new(&self.der).ok()?;
            der::Header::decode(&mut reader).ok()?;
            let tbs = reader.tlv_bytes().ok()?;
            let sig = rsa::pss::Signature::try_from(self.list.signature.as_bytes()?).ok()?;
            rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(ark_key.clone(), 48)
                .verify(tbs, &sig)
                .ok()
        };
        verify().is_some()
    }

    /// The CRL is in force at `at`: thisUpdate has passed and nextUpdate, which must be
    /// present, has not. An old CRL is how an attacker would hide a recent revocation.
    pub fn check_fresh(&self, at: u64) -> Result<(), CertChainError> {
        let tbs = &self.list.tbs_cert_list;
        let this_update = tbs.this_update.to_unix_duration().as_secs();
        if at < this_update {
            return Err(CertChainError::CrlNotYetValid { this_update, at });
        }
        let next_update = tbs
            .next_update
            .ok_or(CertChainError::CrlNoNextUpdate)?
            .to_unix_duration()
            .as_secs();
        if at > next_update {
            return Err(CertChainError::CrlStale { next_update, at });
        }
        Ok(())
    }

    /// Whether a certificate serial number (its DER INTEGER content bytes) is on the list.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| r.serial_number.as_bytes() == serial)
    }

    /// The common name of the CRL's issuer (`ARK-Milan`, ...), as it claims; for messages
    /// only.
    pub fn issuer_common_name(&self) -> Option<String> {
        crate::x509::common_name(&self.list.tbs_cert_list.issuer)
    }
}

/// A CRL with the trust anchors whose ARK signed it (by [`TrustAnchor::fingerprint`]).
///
/// [`TrustAnchor::fingerprint`]: crate::TrustAnchor::fingerprint
#[derive(Debug, Clone)]
pub(crate) struct AnchoredCrl {
    pub crl: Crl,
    pub anchors: Vec<String>,
}
