//! The endorsement chain ARK -> ASK -> VCEK (or ARK -> ASVK -> VLEK), ending at a pinned root.

use crate::certs::CertificateBundle;
use crate::crl::AnchoredCrl;
use crate::error::{CertChainError, CertError, ProductError, VerifyError};
use crate::product::Product;
use crate::roots::{RootOrigin, TrustAnchor, TrustRoots};
use crate::signature::ReportKey;
use crate::vcek::{vcek_public_key, Endorser, VcekClaims};
use crate::x509::ParsedCert;

/// An endorsement key (a VCEK, or a VLEK) whose chain to a pinned ARK has been verified.
/// Holding one means: this P-384 key belongs to the chip [`VcekClaims::hwid`] (a VCEK) or to
/// the cloud provider [`VcekClaims::csp_id`] (a VLEK) at TCB [`VcekClaims::tcb`], between
/// [`valid_from`](Self::valid_from) and [`valid_until`](Self::valid_until). It is what a node
/// may cache per certificate table to skip the RSA work on later reports. Only the verifier
/// makes one (its fields are private), so no caller can hand
/// [`Verifier::verify_parsed`](crate::Verifier::verify_parsed) a key it chose itself.
#[derive(Debug, Clone)]
pub struct VerifiedVcek {
    pub(crate) endorser: Endorser,
    pub(crate) product: Product,
    pub(crate) key: ReportKey,
    pub(crate) claims: VcekClaims,
    pub(crate) valid_from: u64,
    pub(crate) valid_until: u64,
    pub(crate) root: RootOrigin,
    pub(crate) root_fingerprint: String,
    /// Serial numbers (DER INTEGER content) of the ASK (or ASVK) and the VCEK (or VLEK),
    /// checked against the CRLs at every use.
    pub(crate) ask_serial: Vec<u8>,
    pub(crate) vcek_serial: Vec<u8>,
}

impl VerifiedVcek {
    /// Whether this is a VCEK or a VLEK.
    pub fn endorser(&self) -> Endorser {
        self.endorser
    }
    /// The product of the chain (named by the report, the VCEK issuer, or both in agreement).
    pub fn product(&self) -> Product {
        self.product
    }
    /// The VCEK's P-384 public key, which verifies report signatures.
    pub fn key(&self) -> &ReportKey {
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

    /// Checks that this is the VCEK `id` names (its hwID and TCB extensions): what a
    /// certificate fetched for `id` must be before it is kept, so a source serving another
    /// chip's or another TCB's genuine VCEK is caught as such.
    pub fn check_is(&self, id: &crate::VcekId) -> Result<(), crate::BindingError> {
        if self.endorser != Endorser::Vcek
            || self.product != id.product
            || self.claims.hwid.as_deref() != Some(&id.hwid[..])
        {
            return Err(crate::BindingError::ChipIdMismatch);
        }
        self.claims.check_tcb(&id.tcb)
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
        let names = [vcek.endorser.issuer_name(), vcek.endorser.name()];
        for (serial, which) in [&vcek.ask_serial, &vcek.vcek_serial].into_iter().zip(names) {
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

/// Verifies `certs` for a report signed by `endorser` of `product` (when the report names
/// it) at time `at`.
pub(crate) fn verify_chain(
    roots: &TrustRoots,
    crls: &[AnchoredCrl],
    certs: &CertificateBundle,
    endorser: Endorser,
    product: Option<Product>,
    at: u64,
) -> Result<VerifiedVcek, VerifyError> {
    let leaf_name = endorser.name();
    let issuer_name = endorser.issuer_name();
    let (leaf_der, supplied_intermediate) = match endorser {
        Endorser::Vcek => (certs.vcek.as_deref(), certs.ask.as_deref()),
        Endorser::Vlek => (certs.vlek.as_deref(), certs.asvk.as_deref()),
    };
    let leaf_der = leaf_der.ok_or(match endorser {
        Endorser::Vcek => CertError::MissingVcek,
        Endorser::Vlek => CertError::MissingVlek,
    })?;
    let leaf = ParsedCert::parse(leaf_der, leaf_name)?;

    // The leaf's issuer (the ASK's subject, `SEV-<product>`, or the ASVK's,
    // `SEV-VLEK-<product>`) names the product; it must agree with the CPUID.
    let issuer_product = leaf.common_name(false).and_then(|cn| match endorser {
        Endorser::Vcek => Product::from_ask_name(&cn),
        Endorser::Vlek => Product::from_asvk_name(&cn),
    });
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
    let supplied_intermediate = supplied_intermediate
        .map(|der| ParsedCert::parse(der, issuer_name))
        .transpose()?;

    let not_signed = match endorser {
        Endorser::Vcek => CertChainError::AskNotSignedByArk { product },
        Endorser::Vlek => CertChainError::AsvkNotSignedByArk { product },
    };
    // Of the pinned roots of the product (AMD's, and an extra one such as the simulator's),
    // the one whose intermediate (supplied or pinned) the ARK signed and that issued the leaf
    // by name; failing that, the first whose intermediate the ARK signed, so the error below
    // says which link is missing.
    let mut signed: Option<(&TrustAnchor, &ParsedCert)> = None;
    let mut issuing: Option<(&TrustAnchor, &ParsedCert)> = None;
    for anchor in candidates {
        let pinned = match endorser {
            Endorser::Vcek => anchor.default_ask.as_ref(),
            Endorser::Vlek => anchor.default_asvk.as_ref(),
        };
        let Some(intermediate) = supplied_intermediate.as_ref().or(pinned) else {
            continue;
        };
        if intermediate
            .verify_signed_by(&anchor.ark_key, issuer_name, not_signed.clone())
            .is_err()
        {
            continue;
        }
        signed.get_or_insert((anchor, intermediate));
        if leaf.cert.tbs_certificate.issuer == intermediate.cert.tbs_certificate.subject {
            issuing = Some((anchor, intermediate));
            break;
        }
    }
    let (anchor, intermediate) = issuing.or(signed).ok_or(not_signed)?;

    let ark = &anchor.ark;
    if intermediate.cert.tbs_certificate.issuer != ark.cert.tbs_certificate.subject {
        return Err(CertChainError::IssuerMismatch {
            which: issuer_name,
            issuer: "ARK",
        }
        .into());
    }
    if leaf.cert.tbs_certificate.issuer != intermediate.cert.tbs_certificate.subject {
        return Err(CertChainError::IssuerMismatch {
            which: leaf_name,
            issuer: issuer_name,
        }
        .into());
    }
    let intermediate_key = intermediate.rsa_public_key(issuer_name)?;
    leaf.verify_signed_by(
        &intermediate_key,
        leaf_name,
        match endorser {
            Endorser::Vcek => CertChainError::VcekNotSignedByAsk { product },
            Endorser::Vlek => CertChainError::VlekNotSignedByAsvk { product },
        },
    )?;

    // AMD's profile: the ASK is the product's CA and issues VCEKs; the ASVK, which the same
    // ARK signs, issues VLEKs. The names keep one from standing in for the other. The ARK's
    // profile was checked when it was pinned.
    let issuer_cn = endorser.issuer_common_name(product);
    intermediate.check_profile(issuer_name, &issuer_cn)?;
    intermediate.check_ca(issuer_name)?;
    leaf.check_profile(leaf_name, endorser.subject_common_name())?;
    leaf.check_common_name(leaf_name, "issuer", &issuer_cn)?;

    for (cert, which) in [ark, intermediate, &leaf]
        .into_iter()
        .zip(["ARK", issuer_name, leaf_name])
    {
        cert.check_validity(at, which)?;
    }

    let claims = VcekClaims::from_certificate(&leaf, product, endorser)?;
    let key = ReportKey::new(vcek_public_key(&leaf)?)?;
    let windows = [ark.validity(), intermediate.validity(), leaf.validity()];
    let verified = VerifiedVcek {
        endorser,
        product,
        key,
        claims,
        valid_from: windows.iter().map(|w| w.0).max().unwrap_or(u64::MAX),
        valid_until: windows.iter().map(|w| w.1).min().unwrap_or(0),
        root: anchor.origin.clone(),
        root_fingerprint: anchor.fingerprint(),
        ask_serial: intermediate
            .cert
            .tbs_certificate
            .serial_number
            .as_bytes()
            .to_vec(),
        vcek_serial: leaf.cert.tbs_certificate.serial_number.as_bytes().to_vec(),
    };
    check_revocation(crls, &verified, at)?;
    Ok(verified)
}

/// Checks an intermediate+ARK chain on its own (as `cert_chain` downloads come): the ARK, if
/// given, is a pinned root of `product`, and the ASK (or ASVK) is signed by a pinned ARK of
/// `product` and named as AMD's profile names it.
pub(crate) fn check_issuer_chain(
    roots: &TrustRoots,
    certs: &CertificateBundle,
    endorser: Endorser,
    product: Product,
) -> Result<(), VerifyError> {
    let issuer_name = endorser.issuer_name();
    let der = match endorser {
        Endorser::Vcek => certs.ask.as_deref(),
        Endorser::Vlek => certs.asvk.as_deref(),
    }
    .ok_or(CertError::Decode {
        which: "ASK/ARK chain",
        reason: format!("no {issuer_name} in it"),
    })?;
    let intermediate = ParsedCert::parse(der, issuer_name)?;
    let mut candidates: Vec<&TrustAnchor> = roots.for_product(product).collect();
    if let Some(ark_der) = certs.ark.as_deref() {
        let supplied = ParsedCert::parse(ark_der, "ARK")?.spki_der();
        candidates.retain(|a| a.ark.spki_der() == supplied);
        if candidates.is_empty() {
            return Err(CertChainError::UntrustedRoot { product }.into());
        }
    }
    let not_signed = match endorser {
        Endorser::Vcek => CertChainError::AskNotSignedByArk { product },
        Endorser::Vlek => CertChainError::AsvkNotSignedByArk { product },
    };
    if !candidates.iter().any(|a| {
        intermediate
            .verify_signed_by(&a.ark_key, issuer_name, not_signed.clone())
            .is_ok()
    }) {
        return Err(not_signed.into());
    }
    intermediate.check_profile(issuer_name, &endorser.issuer_common_name(product))?;
    intermediate.check_ca(issuer_name)?;
    Ok(())
}
