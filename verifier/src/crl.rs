//! AMD's certificate revocation list for a product (`https://kdsintf.amd.com/vcek/v1/{product}/crl`),
//! signed by the ARK. It revokes ASKs (and VLEK signing keys) whose keys AMD no longer trusts.

use crate::error::{CertChainError, CertError};
use crate::product::Product;
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
    /// Decodes a DER CRL. Nothing is verified yet: that happens per chain, against the ARK
    /// whose common name the CRL's issuer carries.
    pub fn from_der(der: &[u8]) -> Result<Crl, CertError> {
        let list =
            CertificateList::from_der(der).map_err(|e| CertError::CrlDecode(e.to_string()))?;
        Ok(Crl {
            der: der.to_vec(),
            list,
        })
    }

    /// Checks the ARK's signature and freshness. A CRL that was due for renewal is refused: an
    /// old CRL is how an attacker would hide a recent revocation.
    pub fn verify(
        &self,
        ark_key: &RsaPublicKey,
        product: Product,
        at: u64,
    ) -> Result<(), CertChainError> {
        let bad = CertChainError::CrlSignature { product };
        if !is_rsa_pss_sha384(&self.list.signature_algorithm) {
            return Err(bad);
        }
        let mut reader = SliceReader::new(&self.der).map_err(|_| bad.clone())?;
        der::Header::decode(&mut reader).map_err(|_| bad.clone())?;
        let tbs = reader.tlv_bytes().map_err(|_| bad.clone())?;
        let sig = self.list.signature.as_bytes().ok_or_else(|| bad.clone())?;
        let sig = rsa::pss::Signature::try_from(sig).map_err(|_| bad.clone())?;
        rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(ark_key.clone(), 48)
            .verify(tbs, &sig)
            .map_err(|_| bad)?;
        if let Some(next) = self.list.tbs_cert_list.next_update {
            let next_update = next.to_unix_duration().as_secs();
            if at > next_update {
                return Err(CertChainError::CrlStale { next_update, at });
            }
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

    /// The common name of the CRL's issuer (`ARK-Milan`, ...), which selects the chains it
    /// applies to.
    pub fn issuer_common_name(&self) -> Option<String> {
        crate::x509::common_name(&self.list.tbs_cert_list.issuer)
    }
}
