//! Pure verification of AMD SEV-SNP attestation evidence.
//!
//! No I/O, no clock, no network: callers pass the report bytes, the certificates and the time.
//! The steps, each in its own module and each failing with its own typed error:
//!
//! 1. format ([`report`]): exact length, version window, signature algorithm, reserved bytes;
//! 2. product ([`product`]): from CPUID, or for v2 reports from the VCEK issuer or configuration;
//! 3. chain ([`chain`]): VCEK -> ASK -> a pinned ARK ([`roots`]), validity, optional CRL ([`crl`]);
//! 4. signature ([`signature`]): ECDSA P-384 over the raw signed bytes;
//! 5. binding ([`vcek`]): the VCEK's TCB and hwID extensions equal the report's;
//! 6. policy ([`policy`]): debug, migration, VMPL, SMT, ABI, minimum TCB, plat_info.
//!
//! A simulator root is trusted only when added to [`TrustRoots`] explicitly; there is no way to
//! skip any step.

pub mod boot_info;
pub mod cert_table;
pub mod certs;
pub mod chain;
pub mod crl;
pub mod error;
mod hex_serde;
pub mod policy;
pub mod policy_bits;
pub mod product;
pub mod report;
pub mod roots;
pub mod signature;
pub mod tcb;
pub mod vcek;
pub mod verified;
mod x509;

pub use boot_info::{app_host_data, BootInfo};
pub use certs::CertificateBundle;
pub use chain::VerifiedVcek;
pub use crl::Crl;
pub use error::{
    BindingError, BootInfoError, CertError, ChainError, FormatError, PolicyError, ProductError,
    SignatureError, VerifyError,
};
pub use policy::Policy;
pub use policy_bits::{GuestPolicy, KeyInfo, PlatformInfo, SigningKey};
pub use product::Product;
pub use report::{ParsedReport, REPORT_LEN};
pub use roots::{RootOrigin, TrustAnchor, TrustRoots};
pub use tcb::TcbVersion;
pub use verified::VerifiedReport;

/// Seconds since the Unix epoch. Verification never reads a clock: the caller says when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(pub u64);

/// Verifies SNP evidence against a set of trust roots and a policy.
#[derive(Debug, Clone)]
pub struct Verifier {
    roots: TrustRoots,
    policy: Policy,
    crls: Vec<Crl>,
}

impl Verifier {
    pub fn new(roots: TrustRoots, policy: Policy) -> Verifier {
        Verifier {
            roots,
            policy,
            crls: Vec::new(),
        }
    }

    /// Adds an AMD CRL. It applies to chains ending at the ARK that issued it, and must verify
    /// against that ARK and be fresh whenever such a chain is checked.
    pub fn with_crl(mut self, crl: Crl) -> Verifier {
        self.crls.push(crl);
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

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
        let vcek = self.verify_chain(certs, self.product_hint(&parsed)?, at)?;
        self.verify_parsed(&parsed, &vcek, at)
    }

    /// Step 1, plus the signing-key check that decides which chain applies.
    pub fn parse(&self, report: &[u8]) -> Result<ParsedReport, VerifyError> {
        let parsed = ParsedReport::parse(report, self.policy.version_window())?;
        match parsed.key_info().signing_key() {
            SigningKey::Vcek => Ok(parsed),
            SigningKey::Vlek => Err(BindingError::VlekNotSupported.into()),
            SigningKey::None => Err(BindingError::UnsupportedSigningKey(7).into()),
            SigningKey::Reserved(k) => Err(BindingError::UnsupportedSigningKey(k).into()),
        }
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

    /// Step 3 alone; the result may be cached by the caller per certificate set.
    pub fn verify_chain(
        &self,
        certs: &CertificateBundle,
        product: Option<Product>,
        at: UnixTime,
    ) -> Result<VerifiedVcek, VerifyError> {
        let vcek = chain::verify_chain(&self.roots, &self.crls, certs, product, at.0)?;
        self.policy.check_product(vcek.product)?;
        Ok(vcek)
    }

    /// Steps 4 to 6 for a parsed report and a verified (possibly cached) VCEK.
    pub fn verify_parsed(
        &self,
        report: &ParsedReport,
        vcek: &VerifiedVcek,
        at: UnixTime,
    ) -> Result<VerifiedReport, VerifyError> {
        vcek.check_validity(at.0)?;
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
        let chip_id = report.chip_id();
        if key_info.chip_id_masked() {
            if !self.policy.allow_masked_chip_id {
                return Err(BindingError::MaskedChipId.into());
            }
        } else {
            vcek.claims.check_chip_id(&chip_id)?;
        }
        vcek.claims.check_tcb(&reported_tcb)?;
        signature::verify_report_signature(report, &vcek.key)?;

        let verified = VerifiedReport {
            version: report.version(),
            product,
            measurement: report.measurement(),
            chip_id,
            chip_id_masked: key_info.chip_id_masked(),
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
        };
        self.policy.check(&verified)?;
        Ok(verified)
    }
}
