//! Pure verification of AMD SEV-SNP attestation evidence.
//!
//! No I/O, no clock, no network: callers pass the report bytes, the certificates and the time.
//! The steps, each in its own module and each failing with its own typed error:
//!
//! 1. format ([`ParsedReport`]): exact length, version window, signature algorithm, reserved bytes;
//! 2. product ([`Product`]): from CPUID, or for v2 reports from the VCEK issuer or configuration;
//! 3. certificate chain ([`Verifier::verify_chain`]): VCEK -> ASK -> a pinned ARK ([`TrustRoots`]),
//!    or, for a report a cloud provider's VLEK signed, VLEK -> ASVK -> a pinned ARK,
//!    AMD's X.509 profile (version 3, common names, CA and key-usage bits, no unknown critical
//!    extension), validity, CRLs signed by a pinned root and current ([`Crl`]);
//! 4. signature ([`verify_report_signature`]): ECDSA P-384 over the raw signed bytes, with
//!    aws-lc-rs (RustCrypto's `p384` as the tested reference,
//!    [`verify_report_signature_reference`]); both S forms verify, as AMD's firmware emits
//!    either: a report is never identified by its signature;
//! 5. binding ([`VcekClaims`]): the VCEK's productName, TCB and hwID extensions equal the
//!    report's (a VLEK names no chip: its reports carry no chip identity);
//! 6. policy ([`Policy`]): debug, migration, VMPL, SMT, ABI, minimum TCB and build,
//!    provisional firmware, guest-policy features, plat_info features, mitigation vectors,
//!    ID and author keys, family and image ids.
//!
//! A simulator root is trusted only when added to [`TrustRoots`] explicitly; there is no way to
//! skip any step.

#![warn(missing_docs)]

mod boot_info;
mod cert_chain;
pub mod cert_table;
mod certs;
mod crl;
mod error;
mod hex_serde;
mod policy;
mod policy_bits;
mod product;
mod report;
mod roots;
mod signature;
mod tcb;
mod vcek;
mod verified;
mod x509;

pub use boot_info::{app_host_data, BootInfo, HOST_DATA_DOMAIN};
pub use cert_chain::VerifiedVcek;
pub use certs::{to_der, CertificateBundle};
pub use crl::Crl;
pub use error::{
    BindingError, BootInfoError, CertChainError, CertError, FormatError, PolicyError,
    PolicyLoadError, ProductError, SignatureError, VerifyError,
};
pub use hex_serde::HexBytes;
pub use policy::{Abi, Policy};
pub use policy_bits::{GuestPolicy, KeyInfo, PlatformInfo, SigningKey};
pub use product::Product;
pub use report::{
    offsets, FirmwareVersion, ParsedReport, RawTcbs, VersionWindow, REPORT_LEN, SIGNED_LEN,
    SIG_ALGO_ECDSA_P384_SHA384,
};
pub use roots::{RootError, RootOrigin, TrustAnchor, TrustRoots};
pub use signature::{verify_report_signature, verify_report_signature_reference, ReportKey};
pub use tcb::{TcbComponent, TcbVersion};
pub use vcek::{vcek_public_key, Endorser, VcekClaims, VcekId, HWID_LEN, HWID_LEN_TURIN};
pub use verified::VerifiedReport;

/// The X.509 extension OIDs AMD puts in a VCEK (AMD's "VCEK certificate and KDS interface
/// specification", table 8): the TCB it was issued for and the chip's hardware ID.
pub mod oid {
    pub use crate::vcek::{
        OID_BL_SPL, OID_CSP_ID, OID_FMC_SPL, OID_HWID, OID_PRODUCT_NAME, OID_SNP_SPL, OID_TEE_SPL,
        OID_UCODE_SPL,
    };
}

fn endorser(report: &ParsedReport) -> Result<Endorser, VerifyError> {
    match report.key_info().signing_key() {
        SigningKey::Vcek => Ok(Endorser::Vcek),
        SigningKey::Vlek => Ok(Endorser::Vlek),
        SigningKey::None => Err(BindingError::UnsupportedSigningKey(7).into()),
        SigningKey::Reserved(k) => Err(BindingError::UnsupportedSigningKey(k).into()),
    }
}

/// Seconds since the Unix epoch. Verification never reads a clock: the caller says when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(pub u64);

/// Verifies SNP evidence against a set of trust roots and a policy.
#[derive(Debug, Clone)]
pub struct Verifier {
    roots: TrustRoots,
    policy: Policy,
    crls: Vec<crl::AnchoredCrl>,
}

impl Verifier {
    /// A verifier that trusts `roots` and applies `policy`, with no CRL. The policy is used as
    /// given; check policies from other sources with [`Policy::validate`] first.
    pub fn new(roots: TrustRoots, policy: Policy) -> Verifier {
        Verifier {
            roots,
            policy,
            crls: Vec::new(),
        }
    }

    /// Adds an AMD CRL. It applies to chains ending at the ARKs that signed it (by key, not by
    /// the name it claims) and must be fresh whenever such a chain is used, cached or not. A
    /// CRL signed by none of the trusted ARKs is refused.
    pub fn with_crl(mut self, crl: Crl) -> Result<Verifier, CertChainError> {
        let anchors: Vec<String> = self
            .roots
            .anchors()
            .iter()
            .filter(|a| crl.is_signed_by(&a.ark_key))
            .map(TrustAnchor::fingerprint)
            .collect();
        if anchors.is_empty() {
            return Err(CertChainError::CrlSignature {
                issuer: crl.issuer_common_name(),
            });
        }
        self.crls.push(crl::AnchoredCrl { crl, anchors });
        Ok(self)
    }

    /// The policy applied in step 6 (and for the version window and product).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The trust roots chains must end at.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// Full verification of one report with its certificates at time `at`.
    pub fn verify(
        &self,
        report: &[u8],
        certs: &CertificateBundle,
        at: UnixTime,
    ) -> Result<VerifiedReport, VerifyError> {
        let parsed = self.parse(report)?;
        let vcek = self.verify_chain(certs, endorser(&parsed)?, self.product_hint(&parsed)?, at)?;
        self.verify_parsed(&parsed, &vcek, at)
    }

    /// Step 1, plus the signing-key check that decides which chain applies
    /// ([`Verifier::endorser`]).
    pub fn parse(&self, report: &[u8]) -> Result<ParsedReport, VerifyError> {
        let parsed = ParsedReport::parse(report, self.policy.version_window())?;
        endorser(&parsed)?;
        Ok(parsed)
    }

    /// Which key signed the report (KEY_INFO.SIGNING_KEY): a VCEK or a VLEK; refused if the
    /// report is unsigned or names a reserved key.
    pub fn endorser(&self, report: &ParsedReport) -> Result<Endorser, VerifyError> {
        endorser(report)
    }

    /// Which VCEK a VCEK-signed report needs, to look it up at AMD's KDS when the host
    /// supplied none: its product (from the CPUID, or the configured product for v2), hwID
    /// and reported TCB. Fails for a VLEK-signed report (KDS serves no VLEK), a masked chip
    /// id (nothing to look up) and a product that cannot be told.
    pub fn vcek_id(&self, report: &ParsedReport) -> Result<VcekId, VerifyError> {
        if endorser(report)? == Endorser::Vlek {
            return Err(CertError::MissingVlek.into());
        }
        let product = self
            .product_hint(report)?
            .ok_or(ProductError::Undetermined {
                version: report.version(),
            })?;
        let chip_id = report.chip_id();
        if chip_id == [0; 64] {
            return Err(CertError::NoVcekToFetch.into());
        }
        let n = if product.has_turin_tcb_layout() {
            HWID_LEN_TURIN
        } else {
            HWID_LEN
        };
        let tcb = TcbVersion::decode(report.raw_tcbs().reported, product).map_err(|byte| {
            FormatError::TcbReserved {
                field: "reported_tcb",
                byte,
                product,
            }
        })?;
        Ok(VcekId {
            product,
            hwid: chip_id[..n].to_vec(),
            tcb,
        })
    }

    /// The product a report names: CPUID for v3+, the configured product for v2 (or `None`,
    /// leaving it to the VCEK issuer).
    pub fn product_hint(&self, report: &ParsedReport) -> Result<Option<Product>, VerifyError> {
        let product = match report.cpuid() {
            Some((family, model, _)) => Some(
                Product::from_cpuid(family, model)
                    .ok_or(ProductError::UnknownCpuid { family, model })?,
            ),
            None => self.policy.product_for_v2,
        };
        Ok(product)
    }

    /// Step 3 alone, for a report signed by `endorser`; the result may be cached by the caller
    /// per certificate set.
    pub fn verify_chain(
        &self,
        certs: &CertificateBundle,
        endorser: Endorser,
        product: Option<Product>,
        at: UnixTime,
    ) -> Result<VerifiedVcek, VerifyError> {
        let vcek =
            cert_chain::verify_chain(&self.roots, &self.crls, certs, endorser, product, at.0)?;
        self.policy.check_product(vcek.product)?;
        Ok(vcek)
    }

    /// Checks that `crl` is signed by a trusted ARK of `product` (by key, not by the name it
    /// claims).
    pub fn check_crl_for(&self, crl: &Crl, product: Product) -> Result<(), CertChainError> {
        if self
            .roots
            .for_product(product)
            .any(|a| crl.is_signed_by(&a.ark_key))
        {
            Ok(())
        } else {
            Err(CertChainError::CrlSignature {
                issuer: crl.issuer_common_name(),
            })
        }
    }

    /// Checks an ASK+ARK (or ASVK+ARK) chain on its own, as AMD's KDS serves `cert_chain`:
    /// the ARK (if given) is a pinned root of `product` and the intermediate is signed by one
    /// and named as AMD names it.
    pub fn check_issuer_chain(
        &self,
        certs: &CertificateBundle,
        endorser: Endorser,
        product: Product,
    ) -> Result<(), VerifyError> {
        cert_chain::check_issuer_chain(&self.roots, certs, endorser, product)
    }

    /// Steps 4 to 6 for a parsed report and a verified (possibly cached) VCEK.
    pub fn verify_parsed(
        &self,
        report: &ParsedReport,
        vcek: &VerifiedVcek,
        at: UnixTime,
    ) -> Result<VerifiedReport, VerifyError> {
        vcek.check_validity(at.0)?;
        cert_chain::check_revocation(&self.crls, vcek, at.0)?;
        let product = vcek.product;
        if let Some(hint) = self.product_hint(report)? {
            if hint != product {
                return Err(ProductError::Mismatch {
                    report: hint,
                    certificate: product,
                }
                .into());
            }
        }
        let raw = report.raw_tcbs();
        let decode = |field: &'static str, bytes: [u8; 8]| {
            TcbVersion::decode(bytes, product).map_err(|byte| FormatError::TcbReserved {
                field,
                byte,
                product,
            })
        };
        let current_tcb = decode("current_tcb", raw.current)?;
        let reported_tcb = decode("reported_tcb", raw.reported)?;
        let committed_tcb = decode("committed_tcb", raw.committed)?;
        let launch_tcb = decode("launch_tcb", raw.launch)?;

        // Binding before the signature so that a VCEK of another chip or TCB is reported as
        // such, not as a bare signature failure.
        let key_info = report.key_info();
        let signed_by = endorser(report)?;
        if signed_by != vcek.endorser {
            return Err(BindingError::EndorserMismatch {
                report: signed_by,
                chain: vcek.endorser,
            }
            .into());
        }
        let chip_id = report.chip_id();
        // MaskChipId shows only as an all-zero chip_id; no chip has that id.
        let chip_id_masked = chip_id == [0; 64];
        match vcek.endorser {
            // A VLEK is shared by a provider's chips: no certificate ties the chip id to the
            // key, so it is reported but never taken for the machine's identity.
            Endorser::Vlek => {}
            Endorser::Vcek if chip_id_masked => {
                if !self.policy.allow_masked_chip_id {
                    return Err(BindingError::MaskedChipId.into());
                }
            }
            Endorser::Vcek => vcek.claims.check_chip_id(&chip_id)?,
        }
        vcek.claims.check_tcb(&reported_tcb)?;
        if key_info.mask_chip_key() {
            return Err(SignatureError::Unsigned.into());
        }
        signature::verify_report_signature(report, &vcek.key)?;

        let verified = VerifiedReport {
            version: report.version(),
            product,
            measurement: report.measurement(),
            chip_id,
            chip_id_masked,
            endorser: vcek.endorser,
            csp_id: vcek.claims.csp_id.clone(),
            host_data: report.host_data(),
            report_data: report.report_data(),
            guest_svn: report.guest_svn(),
            policy: report.policy(),
            vmpl: report.vmpl(),
            plat_info: report.plat_info(),
            current_tcb,
            reported_tcb,
            committed_tcb,
            launch_tcb,
            current_version: report.current_version(),
            committed_version: report.committed_version(),
            family_id: report.family_id(),
            image_id: report.image_id(),
            id_key_digest: report.id_key_digest(),
            author_key_digest: report.author_key_digest(),
            author_key_enabled: key_info.author_key_enabled(),
            report_id: report.report_id(),
            report_id_ma: report.report_id_ma(),
            cpuid: report.cpuid(),
            mit_vectors: report.mit_vectors(),
            root: vcek.root.clone(),
            verified_by: verified::VerifiedBy(()),
        };
        self.policy.check(&verified)?;
        Ok(verified)
    }
}
