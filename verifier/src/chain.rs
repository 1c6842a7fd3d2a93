//! The endorsement chain ARK -> ASK -> VCEK, ending at a pinned root.

use crate::certs::CertificateBundle;
use crate::crl::Crl;
use crate::error::{CertError, ChainError, ProductError, VerifyError};
use crate::product::Product;
use crate::roots::{RootOrigin, TrustAnchor, TrustRoots};
use crate::vcek::{vcek_public_key, VcekClaims};
use crate::x509::ParsedCert;

/// A VCEK whose chain to a pinned ARK has been verified. Holding one means: this P-384 key
/// belongs to the chip `claims.hwid` at TCB `claims.tcb`, between `valid_from` and
/// `valid_until`. It is what a node may cache per VCEK to skip the RSA work on later reports.
#[derive(Debug, Clone)]
pub struct VerifiedVcek {
    pub product: Product,
    pub key: p384::ecdsa::VerifyingKey,
    pub claims: VcekClaims,
    /// The latest notBefore and the earliest notAfter along the chain (unix seconds).
    pub valid_from: u64,
    pub valid_until: u64,
    pub root: RootOrigin,
    pub root_fingerprint: String,
}

impl VerifiedVcek {
    /// Re-checks the chain's validity window, for chains verified earlier and cached.
    pub fn check_validity(&self, at: u64) -> Result<(), ChainError> {
        if at < self.valid_from {
            return Err(ChainError::NotYetValid {
                which: "certificate chain",
                not_before: self.valid_from,
                at,
            });
        }
        if at > self.valid_until {
            return Err(ChainError::Expired {
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
        return Err(ChainError::NoRootForProduct { product }.into());
    }
    if let Some(ark_der) = certs.ark.as_deref() {
        // A supplied ARK is only a hint of which pinned root to use; it must be one of them.
        let supplied = ParsedCert::parse(ark_der, "ARK")?.spki_der();
        candidates.retain(|a| a.ark.spki_der() == supplied);
        if candidates.is_empty() {
            return Err(ChainError::UntrustedRoot { product }.into());
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
                ChainError::AskNotSignedByArk { product },
            )
            .ok()
            .map(|()| (anchor, ask))
        })
        .ok_or(ChainError::AskNotSignedByArk { product })?;

    let ark = &anchor.ark;
    if ask.cert.tbs_certificate.issuer != ark.cert.tbs_certificate.subject {
        return Err(ChainError::IssuerMismatch {
            which: "ASK",
            issuer: "ARK",
        }
        .into());
    }
    if vcek.cert.tbs_certificate.issuer != ask.cert.tbs_certificate.subject {
        return Err(ChainError::IssuerMismatch {
            which: "VCEK",
            issuer: "ASK",
        }
        .into());
    }
    let ask_key = ask.rsa_public_key("ASK")?;
    vcek.verify_signed_by(&ask_key, "VCEK", ChainError::VcekNotSignedByAsk { product })?;

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
                return Err(ChainError::Revoked {
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
