//! The endorsement chain ARK -> ASK -> VCEK, ending at a pinned root.

use crate::certs::CertificateBundle;
use crate::crl::AnchoredCrl;
use crate::error::{CertChainError, CertError, ProductError, VerifyError};
use crate::product::Product;
use crate::roots::{RootOrigin, TrustAnchor, TrustRoots};
use crate::vcek::{vcek_public_key, VcekClaims};
use crate::x509::ParsedCert;

/// A VCEK whose chain to a pinned ARK has been verified. Holding one means: this P-384 key
/// belongs to the chip [`VcekClaims::hwid`] at TCB [`VcekClaims::tcb`], between
/// [`valid_from`](Self::valid_from) and [`valid_until`](Self::valid_until). It is what a node
/// may cache per certificate table to skip the RSA work on later reports. Only the verifier
/// makes one (its fields are private), so no caller can hand
/// [`Verifier::verify_parsed`](crate::Verifier::verify_parsed) a key it chose itself.
#[derive(Debug, Clone)]
pub struct VerifiedVcek {
    pub(crate) product: Product,
    pub(crate) key: p384::ecdsa::VerifyingKey,
    pub(crate) claims: VcekClaims,
    pub(crate) valid_from: u64,
    pub(crate) valid_until: u64,
    pub(crate) root: RootOrigin,
    pub(crate) root_fingerprint: String,
    /// Serial numbers (DER INTEGER content) of the ASK and the VCEK, checked against the CRLs
    /// at every use.
    pub(crate) ask_serial: Vec<u8>,
    pub(crate) vcek_serial: Vec<u8>,
}

impl VerifiedVcek {
    /// The product of the chain (named by the report, the VCEK issuer, or both in agreement).
    pub fn product(&self) -> Product {
        self.product
    }
    /// The VCEK's P-384 public key, which verifies report signatures.
    pub fn key(&self) -> &p384::ecdsa::VerifyingKey {
        &self.key
    }
    /// The TCB and hwID the VCEK was issued for.
    pub fn claims(&self) -> &VcekClaims {
        &self.claims
    }
    /// The latest notBefore along the chain (unix seconds).
    pub fn valid_from(&self) -> u64 {
        self.valid_from
    }
    /// The earliest notAfter of ARK, ASK and VCEK, unix seconds; the chain is refused after it.
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }
    /// Where the ARK the chain ends at came from.
    pub fn root(&self) -> &RootOrigin {
        &self.root
    }
    /// That ARK's [`TrustAnchor::fingerprint`]: hex SHA-256 of its SubjectPublicKeyInfo.
    pub fn root_fingerprint(&self) -> &str {
        &self.root_fingerprint
    }

    /// Re-checks the chain's validity window, for chains verified earlier and cached.
    pub fn check_validity(&self, at: u64) -> Result<(), CertChainError> {
        if at < self.valid_from {
            return Err(CertChainError::NotYetValid {
                which: "certificate chain",
                not_before: self.valid_from,
                at,
            });
        }
        if at > self.valid_until {
            return Err(CertChainError::Expired {
                which: "certificate chain",
                not_after: self.valid_until,
                at,
            });
        }
        Ok(())
    }
}

/// Every CRL of the chain's ARK must be in force at `at` and list neither the ASK nor the
/// VCEK. Run when the chain is verified and again at every use of a cached chain, so a CRL
/// that went stale, or a chain it revokes, is refused even from the cache.
pub(crate) fn check_revocation(
    crls: &[AnchoredCrl],
    vcek: &VerifiedVcek,
    at: u64,
) -> Result<(), CertChainError> {
    for anchored in crls
        .iter()
        .filter(|c| c.anchors.contains(&vcek.root_fingerprint))
    {
        anchored.crl.check_fresh(at)?;
        for (serial, which) in [(&vcek.ask_serial, "ASK"), (&vcek.vcek_serial, "VCEK")] {
            if anchored.crl.is_revoked(serial) {
                return Err(CertChainError::Revoked {
                    which,
                    serial: hex::encode(serial),
                });
            }
        }
    }
    Ok(())
}

/// Verifies `certs` for a report of `product` (when the report names it) at time `at`.
pub(crate) fn verify_chain(
    roots: &TrustRoots,
    crls: &[AnchoredCrl],
    certs: &CertificateBundle,
    product: Option<Product>,
    at: u64,
) -> Result<VerifiedVcek, VerifyError> {
    let vcek_der = certs.vcek.as_deref().ok_or(CertError::MissingVcek)?;
    let vcek = ParsedCert::parse(vcek_der, "VCEK")?;

    // The VCEK issuer (the ASK's subject, `SEV-<product>`) names the product; it must agree
    // with the CPUID. An ASVK's name (`SEV-VLEK-<product>`) names none.
    let issuer_product = vcek
        .common_name(false)
        .and_then(|cn| Product::from_ask_name(&cn));
    let product = match (product, issuer_product) {
        (Some(report), Some(certificate)) if report != certificate => {
            return Err(ProductError::Mismatch {
                report,
                certificate,
            }
            .into())
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => return Err(ProductError::Undetermined { version: 2 }.into()),
    };

    let mut candidates: Vec<&TrustAnchor> = roots.for_product(product).collect();
    if candidates.is_empty() {
        return Err(CertChainError::NoRootForProduct { product }.into());
    }
    if let Some(ark_der) = certs.ark.as_deref() {
        // A supplied ARK is only a hint of which pinned root to use; it must be one of them.
        let supplied = ParsedCert::parse(ark_der, "ARK")?.spki_der();
        candidates.retain(|a| a.ark.spki_der() == supplied);
        if candidates.is_empty() {
            return Err(CertChainError::UntrustedRoot { product }.into());
        }
    }
    let supplied_ask = certs
        .ask
        .as_deref()
        .map(|der| ParsedCert::parse(der, "ASK"))
        .transpose()?;

    let (anchor, ask) = candidates
        .into_iter()
        .find_map(|anchor| {
            let ask = supplied_ask.as_ref().or(anchor.default_ask.as_ref())?;
            ask.verify_signed_by(
                &anchor.ark_key,
                "ASK",
                CertChainError::AskNotSignedByArk { product },
            )
            .ok()
            .map(|()| (anchor, ask))
        })
        .ok_or(CertChainError::AskNotSignedByArk { product })?;

    let ark = &anchor.ark;
    if ask.cert.tbs_certificate.issuer != ark.cert.tbs_certificate.subject {
        return Err(CertChainError::IssuerMismatch {
            which: "ASK",
            issuer: "ARK",
        }
        .into());
    }
    if vcek.cert.tbs_certificate.issuer != ask.cert.tbs_certificate.subject {
        return Err(CertChainError::IssuerMismatch {
            which: "VCEK",
            issuer: "ASK",
        }
        .into());
    }
    let ask_key = ask.rsa_public_key("ASK")?;
    vcek.verify_signed_by(
        &ask_key,
        "VCEK",
        CertChainError::VcekNotSignedByAsk { product },
    )?;

    // AMD's profile: the ASK is the product's CA, the VCEK is a VCEK issued by it (not by an
    // ASVK, which the same ARK signs for VLEKs). The ARK's was checked when it was pinned.
    ask.check_profile("ASK", &format!("SEV-{product}"))?;
    ask.check_ca("ASK")?;
    vcek.check_profile("VCEK", "SEV-VCEK")?;
    vcek.check_common_name("VCEK", "issuer", &format!("SEV-{product}"))?;

    for (cert, which) in [ark, ask, &vcek].into_iter().zip(["ARK", "ASK", "VCEK"]) {
        cert.check_validity(at, which)?;
    }

    let claims = VcekClaims::from_certificate(&vcek, product)?;
    let key = vcek_public_key(&vcek)?;
    let windows = [ark.validity(), ask.validity(), vcek.validity()];
    let verified = VerifiedVcek {
        product,
        key,
        claims,
        valid_from: windows.iter().map(|w| w.0).max().unwrap_or(u64::MAX),
        valid_until: windows.iter().map(|w| w.1).min().unwrap_or(0),
        root: anchor.origin.clone(),
        root_fingerprint: anchor.fingerprint(),
        ask_serial: ask.cert.tbs_certificate.serial_number.as_bytes().to_vec(),
        vcek_serial: vcek.cert.tbs_certificate.serial_number.as_bytes().to_vec(),
    };
    check_revocation(crls, &verified, at)?;
    Ok(verified)
}
