//! The endorsement chain ARK -> ASK -> VCEK, ending at a pinned root.

use crate::certs::CertificateBundle;
use crate::crl::Crl;
use crate::error::{CertChainError, CertError, ProductError, VerifyError};
use crate::product::Product;
use crate::roots::{RootOrigin, TrustAnchor, TrustRoots};
use crate::vcek::{vcek_public_key, VcekClaims};
use crate::x509::ParsedCert;

/// A VCEK whose chain to a pinned ARK has been verified. Holding one means: this P-384 key
/// belongs to the chip `claims.hwid` at TCB `claims.tcb`, between `valid_from` and
/// `valid_until`. It is what a node may cache per VCEK to skip the RSA work on later reports.
#[derive(Debug, Clone)]
pub struct VerifiedVcek {
    /// The product of the chain (named by the report, the VCEK issuer, or both in agreement).
    pub product: Product,
    /// The VCEK's P-384 public key, which verifies report signatures.
    pub key: p384::ecdsa::VerifyingKey,
    /// The TCB and hwID the VCEK was issued for.
    pub claims: VcekClaims,
    /// The latest notBefore and the earliest notAfter along the chain (unix seconds).
    pub valid_from: u64,
    /// The earliest notAfter of ARK, ASK and VCEK, unix seconds; the chain is refused after it.
    pub valid_until: u64,
    /// Where the ARK the chain ends at came from.
    pub root: RootOrigin,
    /// That ARK's [`TrustAnchor::fingerprint`]: hex SHA-256 of its SubjectPublicKeyInfo.
    pub root_fingerprint: String,
}

impl VerifiedVcek {
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

/// Verifies `certs` for a report of `product` (when the report names it) at time `at`.
pub fn verify_chain(
    roots: &TrustRoots,
    crls: &[Crl],
    certs: &CertificateBundle,
    product: Option<Product>,
    at: u64,
) -> Result<VerifiedVcek, VerifyError> {
    let vcek_der = certs.vcek.as_deref().ok_or(CertError::MissingVcek)?;
    let vcek = ParsedCert::parse(vcek_der, "VCEK")?;

    // The VCEK issuer (the ASK's subject) names the product; it must agree with the CPUID.
    let issuer_product = vcek
        .common_name(false)
        .and_then(|cn| Product::from_common_name(&cn));
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

    for (cert, which) in [(ark, "ARK"), (ask, "ASK"), (&vcek, "VCEK")] {
        cert.check_validity(at, which)?;
    }

    for crl in crls
        .iter()
        .filter(|crl| crl.issuer_common_name() == ark.common_name(true))
    {
        crl.verify(&anchor.ark_key, product, at)?;
        for (cert, which) in [(ask, "ASK"), (&vcek, "VCEK")] {
            if crl.is_revoked(cert.cert.tbs_certificate.serial_number.as_bytes()) {
                return Err(CertChainError::Revoked {
                    which,
                    serial: cert.serial_hex(),
                }
                .into());
            }
        }
    }

    let claims = VcekClaims::from_certificate(&vcek, product)?;
    let key = vcek_public_key(&vcek)?;
    let windows = [ark.validity(), ask.validity(), vcek.validity()];
    Ok(VerifiedVcek {
        product,
        key,
        claims,
        valid_from: windows.iter().map(|w| w.0).max().unwrap_or(u64::MAX),
        valid_until: windows.iter().map(|w| w.1).min().unwrap_or(0),
        root: anchor.origin.clone(),
        root_fingerprint: anchor.fingerprint(),
    })
}
