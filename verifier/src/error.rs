//! Typed errors, one per failing check. Every message names the field that failed and, where it
//! helps, the expected value, so an operator can tell a misconfigured guest from an attack.

use crate::product::Product;
use crate::tcb::{TcbComponent, TcbVersion};
use thiserror::Error;

/// Any reason evidence is rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The report bytes are malformed: wrong length, version or signature algorithm, or a
    /// non-zero reserved field (step 1).
    #[error("report format: {0}")]
    Format(#[from] FormatError),
    /// The product (Milan, Genoa, Turin) could not be determined, the report and the VCEK
    /// disagree on it, or the policy does not allow it (step 2).
    #[error("product: {0}")]
    Product(#[from] ProductError),
    /// A certificate, key, CRL or certificate table could not be decoded, or no VCEK was given.
    #[error("certificates: {0}")]
    Certificate(#[from] CertError),
    /// The VCEK -> ASK -> ARK chain does not end at a pinned root, has a bad signature or
    /// algorithm, is outside its validity window, or is revoked (step 3).
    #[error("certificate chain: {0}")]
    CertChain(#[from] CertChainError),
    /// The report is not validly signed by the VCEK (step 4).
    #[error("report signature: {0}")]
    Signature(#[from] SignatureError),
    /// The VCEK was issued for another chip or TCB than the report's, or the report is signed
    /// by a key other than a VCEK (step 5).
    #[error("VCEK binding: {0}")]
    Binding(#[from] BindingError),
    /// The report is authentic but the relying party's [`Policy`](crate::Policy) refuses it
    /// (step 6).
    #[error("guest policy: {0}")]
    Policy(#[from] PolicyError),
}

impl VerifyError {
    /// A stable short label for metrics and machine-readable output.
    pub fn kind(&self) -> &'static str {
        // Keep in step with KINDS.
        match self {
            VerifyError::Format(_) => "format",
            VerifyError::Product(_) => "product",
            VerifyError::Certificate(_) => "certificate",
            VerifyError::CertChain(_) => "cert_chain",
            VerifyError::Signature(_) => "signature",
            VerifyError::Binding(_) => "binding",
            VerifyError::Policy(_) => "policy",
        }
    }

    /// Every value [`kind`](Self::kind) returns, e.g. to show each as a metric from the start.
    pub const KINDS: [&'static str; 7] = [
        "format",
        "product",
        "certificate",
        "cert_chain",
        "signature",
        "binding",
        "policy",
    ];
}

/// The bytes are not a well-formed ATTESTATION_REPORT (step 1). Raised before any cryptography,
/// so it says nothing yet about who produced the bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The input is not exactly [`REPORT_LEN`](crate::REPORT_LEN) (0x4A0 = 1184) bytes:
    /// truncated or padded in transit, or not a report at all.
    #[error("report is {actual} bytes, expected exactly 1184")]
    Length {
        /// Length of the input, in bytes.
        actual: usize,
    },
    /// The VERSION field (offset 0x00) is outside the accepted window
    /// ([`Policy::version_window`](crate::Policy::version_window)).
    #[error("report version {version} is outside the accepted window {min}..={max}")]
    Version {
        /// The version the report claims.
        version: u32,
        /// Lowest accepted version.
        min: u32,
        /// Highest accepted version.
        max: u32,
    },
    /// SIGNATURE_ALGO (offset 0x34) is not 1, the only algorithm SNP defines (ECDSA P-384 with
    /// SHA-384).
    #[error("signature_algo is {sig_algo}, expected 1 (ECDSA P-384 with SHA-384)")]
    SignatureAlgorithm {
        /// The algorithm number found.
        sig_algo: u32,
    },
    /// A byte the firmware always writes as zero (a reserved range, the zero padding of the
    /// signature scalars, or the unsigned tail) is not zero: the bytes were altered, or come
    /// from a report layout this parser does not know.
    #[error("{field} must be zero but byte 0x{offset:03x} is not")]
    NonZeroReserved {
        /// Name of the reserved range.
        field: &'static str,
        /// Offset in the report of the first non-zero byte.
        offset: usize,
    },
    /// A bit field has bits set that the firmware ABI does not define.
    #[error("{field} has reserved bits set (value 0x{value:x})")]
    ReservedBits {
        /// Which field: `policy` or `key_info`.
        field: &'static str,
        /// The field's whole value.
        value: u64,
    },
    /// A TCB_VERSION has a non-zero byte where the product's layout has a reserved one
    /// (Milan/Genoa bytes 2..=5, Turin bytes 4..=6); accepting it would ignore part of the TCB.
    #[error("{field} has a non-zero reserved byte {byte} for the {product} TCB layout")]
    TcbReserved {
        /// Which TCB: `current_tcb`, `reported_tcb`, `committed_tcb` or `launch_tcb`.
        field: &'static str,
        /// Index (0..8) of the offending byte inside the 8-byte TCB_VERSION.
        byte: usize,
        /// The product whose layout was applied.
        product: Product,
    },
}

/// The product of the evidence is unknown, ambiguous or not allowed (step 2).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProductError {
    /// The report's CPUID (version 3 and later) names no SEV-SNP product this crate knows.
    #[error("CPUID family 0x{family:02x} model 0x{model:02x} is not an SEV-SNP product we know (Milan, Genoa, Turin)")]
    UnknownCpuid {
        /// CPUID family (report offset 0x188).
        family: u8,
        /// CPUID model (report offset 0x189).
        model: u8,
    },
    /// A report without CPUID, no [`Policy::product_for_v2`](crate::Policy::product_for_v2),
    /// and a VCEK issuer that names no product: there is no way to pick the ARK.
    #[error("version {version} report carries no CPUID and the VCEK issuer names no product: configure product_for_v2")]
    Undetermined {
        /// The report version (2, the only one without CPUID).
        version: u32,
    },
    /// The product the report names (by CPUID, or the configured one for v2) is not the product
    /// of the ASK that issued the VCEK.
    #[error("report CPUID says {report} but the VCEK was issued by the {certificate} ASK")]
    Mismatch {
        /// The product the report names.
        report: Product,
        /// The product named by the VCEK's issuer or its verified chain.
        certificate: Product,
    },
    /// The product is not in [`Policy::allowed_products`](crate::Policy::allowed_products).
    #[error("product {0} is not allowed by the policy")]
    NotAllowed(Product),
}

/// Certificates, keys or their container could not be decoded; nothing was verified yet.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertError {
    /// The certificate table of an extended report is malformed (see
    /// [`cert_table::parse`](crate::cert_table::parse)); the text names the entry and the problem.
    #[error("certificate table: {0}")]
    Table(String),
    /// The bundle has no VCEK, the one certificate of a VCEK chain that has no pinned copy.
    #[error("no VCEK certificate was supplied")]
    MissingVcek,
    /// The report is signed by a VLEK and the bundle has none (a cloud provider's host
    /// supplies it in the certificate table; AMD's KDS does not serve VLEKs).
    #[error("the report is signed by a VLEK and no VLEK certificate was supplied")]
    MissingVlek,
    /// The report's chip id is masked (all zeros) and no VCEK came with it: AMD's KDS looks
    /// VCEKs up by chip id, so there is nothing to ask it for.
    #[error("no VCEK was supplied and the report's chip id is masked, so its VCEK cannot be looked up at AMD's KDS: the host must supply it")]
    NoVcekToFetch,
    /// A certificate is neither valid DER nor a well-formed PEM `CERTIFICATE` block.
    #[error("{which} is not a valid X.509 certificate (DER or PEM): {reason}")]
    Decode {
        /// Which certificate (`VCEK`, `ASK`, `ARK`, `ASK/ARK chain`).
        which: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The VCEK's key is not an EC key on secp384r1, or its point does not decode.
    #[error("VCEK public key is not an ECDSA P-384 key: {0}")]
    VcekKey(String),
    /// An ASK or ARK public key is not a decodable RSA key.
    #[error("{which} public key is not a usable RSA key: {reason}")]
    RsaKey {
        /// Which certificate (`ASK` or `ARK`).
        which: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The CRL is not a DER X.509 CertificateList; holds the decoder's message.
    #[error("CRL is not a valid DER certificate list: {0}")]
    CrlDecode(String),
}

/// The VCEK does not chain to a pinned, valid, unrevoked root (step 3), or a root being loaded
/// is not self-consistent.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertChainError {
    /// [`TrustRoots`](crate::TrustRoots) has no ARK at all for the product.
    #[error("no trusted ARK is configured for {product}")]
    NoRootForProduct {
        /// The product whose root is missing.
        product: Product,
    },
    /// The evidence brought an ARK whose public key is none of the pinned roots of the product;
    /// a chain that verifies against a self-made root proves nothing.
    #[error("the supplied ARK for {product} is not a pinned root (a self-consistent chain to another root is not trusted)")]
    UntrustedRoot {
        /// The product whose pinned roots were compared.
        product: Product,
    },
    /// Neither the supplied ASK nor a pinned default ASK verifies against a pinned ARK of the
    /// product (or there was no ASK at all). Also raised when a root file pairs an ASK with the
    /// wrong ARK.
    #[error("the ASK is not signed by any trusted {product} ARK")]
    AskNotSignedByArk {
        /// The product whose ARKs were tried.
        product: Product,
    },
    /// The VCEK's signature does not verify with the ASK's key: a forged VCEK, or an ASK of
    /// another product.
    #[error("the VCEK is not signed by the {product} ASK")]
    VcekNotSignedByAsk {
        /// The product of the ASK.
        product: Product,
    },
    /// Neither the supplied ASVK nor the pinned one verifies against a pinned ARK of the
    /// product: the VLEK's issuer is not AMD's.
    #[error("the ASVK is not signed by any trusted {product} ARK")]
    AsvkNotSignedByArk {
        /// The product whose ARKs were tried.
        product: Product,
    },
    /// The VLEK's signature does not verify with the ASVK's key: a forged VLEK, or an ASVK of
    /// another product.
    #[error("the VLEK is not signed by the {product} ASVK")]
    VlekNotSignedByAsvk {
        /// The product of the ASVK.
        product: Product,
    },
    /// A root being loaded as a trust anchor does not verify its own signature (a corrupt or
    /// wrong root file).
    #[error("the ARK self-signature is invalid")]
    ArkSelfSignature,
    /// A certificate's issuer Name is not equal to the subject Name of the certificate that
    /// signed it.
    #[error("{which} issuer does not name the {issuer} subject")]
    IssuerMismatch {
        /// The certificate whose issuer was checked (`ASK` or `VCEK`).
        which: &'static str,
        /// The certificate whose subject it must name (`ARK` or `ASK`).
        issuer: &'static str,
    },
    /// A certificate is not signed with RSASSA-PSS, SHA-384, MGF1-SHA-384 and a 48-byte salt
    /// (the only scheme AMD uses), or its outer and TBS algorithm identifiers differ. Other
    /// schemes are refused, not negotiated, to rule out downgrades.
    #[error("{which} signature algorithm is {found}, expected RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48")]
    SignatureAlgorithm {
        /// Which certificate (`ARK`, `ASK`, `VCEK`).
        which: &'static str,
        /// The algorithm OID found, or a note that the PSS parameters differ.
        found: String,
    },
    /// The verification time is before a certificate's notBefore (or, for a cached chain,
    /// before the latest notBefore along it).
    #[error("{which} is not valid before {not_before} (unix), verification time is {at}")]
    NotYetValid {
        /// Which certificate (`ARK`, `ASK`, `VCEK`), or `certificate chain` for a cached
        /// [`VerifiedVcek`](crate::VerifiedVcek).
        which: &'static str,
        /// Start of validity, unix seconds.
        not_before: u64,
        /// Verification time, unix seconds.
        at: u64,
    },
    /// The verification time is after a certificate's notAfter (or, for a cached chain, after
    /// the earliest notAfter along it).
    #[error("{which} expired at {not_after} (unix), verification time is {at}")]
    Expired {
        /// Which certificate (`ARK`, `ASK`, `VCEK`), or `certificate chain` for a cached
        /// [`VerifiedVcek`](crate::VerifiedVcek).
        which: &'static str,
        /// End of validity, unix seconds.
        not_after: u64,
        /// Verification time, unix seconds.
        at: u64,
    },
    /// A CRL given to the verifier is signed by none of its trusted ARKs (or not with
    /// RSASSA-PSS/SHA-384/salt 48). It is refused when it is added, not ignored.
    #[error("the CRL (issuer {issuer:?}) is not signed by any trusted ARK")]
    CrlSignature {
        /// The CRL's issuer common name, as it claims.
        issuer: Option<String>,
    },
    /// A CRL of the chain's ARK has a thisUpdate in the future: it is not yet in force.
    #[error("the CRL is not valid before {this_update} (unix), verification time is {at}")]
    CrlNotYetValid {
        /// The CRL's thisUpdate, unix seconds.
        this_update: u64,
        /// Verification time, unix seconds.
        at: u64,
    },
    /// A CRL without nextUpdate never goes stale, so an old one could hide a revocation for
    /// ever; AMD's CRLs always carry it.
    #[error("the CRL has no nextUpdate: its freshness cannot be judged")]
    CrlNoNextUpdate,
    /// A certificate's version is not v3 (AMD issues only v3, with extensions).
    #[error("{which} is an X.509 version {found} certificate, expected version 3")]
    CertificateVersion {
        /// Which certificate (`ARK`, `ASK`, `VCEK`).
        which: &'static str,
        /// Its version (1, 2 or 3).
        found: u8,
    },
    /// A subject or issuer common name is not the one AMD's profile gives this certificate
    /// (`ARK-<product>`, `SEV-<product>` for the ASK, `SEV-VCEK`). This is what tells an ASK
    /// from an ASVK (`SEV-VLEK-<product>`).
    #[error("{which} {field} common name is {found:?}, expected {expected:?}")]
    CommonName {
        /// Which certificate (`ARK`, `ASK`, `VCEK`).
        which: &'static str,
        /// `subject` or `issuer`.
        field: &'static str,
        /// What AMD's profile says.
        expected: String,
        /// What the certificate says, if it has a common name.
        found: Option<String>,
    },
    /// An ARK or ASK is not a CA: basicConstraints CA:TRUE is missing, or its key usage does
    /// not include keyCertSign. Only a CA's key may sign the next certificate.
    #[error("{which} is not a certificate authority: {problem}")]
    NotCa {
        /// Which certificate (`ARK` or `ASK`).
        which: &'static str,
        /// What is missing.
        problem: &'static str,
    },
    /// A certificate carries a critical extension this verifier does not understand; X.509
    /// says such a certificate must be refused.
    #[error("{which} has a critical extension {oid} this verifier does not understand")]
    UnknownCriticalExtension {
        /// Which certificate (`ARK`, `ASK`, `VCEK`).
        which: &'static str,
        /// The extension's dotted OID.
        oid: String,
    },
    /// The CRL's nextUpdate has passed. A stale CRL could hide a recent revocation, so a fresh
    /// one must be configured.
    #[error("the CRL was due for renewal at {next_update} (unix), verification time is {at}")]
    CrlStale {
        /// The CRL's nextUpdate, unix seconds.
        next_update: u64,
        /// Verification time, unix seconds.
        at: u64,
    },
    /// The ASK's or the VCEK's serial number is listed in the ARK's CRL.
    #[error("{which} serial {serial} is revoked by the AMD CRL")]
    Revoked {
        /// Which certificate (`ASK` or `VCEK`).
        which: &'static str,
        /// Its serial number, hex.
        serial: String,
    },
}

/// The report's ECDSA P-384 signature (bytes 0x2A0..0x330) does not verify (step 4).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// R or S is zero or not below the P-384 group order, so it is no signature at all.
    #[error("signature r/s are not valid P-384 scalars")]
    Malformed,
    /// The signature over bytes 0x000..0x2A0 does not verify with the VCEK's key: the signed
    /// bytes were altered, or another key signed them.
    #[error("the report signature does not verify with the VCEK public key")]
    Invalid,
    /// KEY_INFO.MASK_CHIP_KEY is set: the firmware wrote zeros where the signature goes, at the
    /// platform owner's request. Nothing vouches for such a report.
    #[error("the report is unsigned (key_info.mask_chip_key): nothing vouches for it")]
    Unsigned,
}

/// The report and the VCEK do not belong together, or the report is signed by a key this
/// verifier does not accept (step 5).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BindingError {
    /// KEY_INFO.SIGNING_KEY (bits 4:2) is neither VCEK (0) nor VLEK (1): 7 means the report is
    /// unsigned, other values are reserved. Holds the value found.
    #[error("key_info.signing_key is {0}, expected 0 (VCEK) or 1 (VLEK)")]
    UnsupportedSigningKey(u8),
    /// The report's KEY_INFO names one kind of endorsement key and the verified chain is of
    /// the other (a cached VCEK chain offered for a VLEK-signed report, or the reverse).
    #[error("the report is signed by a {report} but the certificate chain is a {chain} chain")]
    EndorserMismatch {
        /// What the report's KEY_INFO.SIGNING_KEY says.
        report: crate::Endorser,
        /// What the chain ends in.
        chain: crate::Endorser,
    },
    /// The VCEK lacks an extension for one of the TCB SPLs or the hwID, so it cannot be bound
    /// to a report.
    #[error("VCEK lacks the {name} extension ({oid})")]
    MissingExtension {
        /// AMD's name of the extension (`blSPL`, `hwID`, ...).
        name: &'static str,
        /// Its dotted OID (see [`oid`](crate::oid)).
        oid: &'static str,
    },
    /// A VCEK extension does not decode: an SPL that is not a DER INTEGER 0..=255, or a hwID of
    /// the wrong length for the product.
    #[error("VCEK {name} extension is malformed: {reason}")]
    MalformedExtension {
        /// AMD's name of the extension.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A TCB component in the VCEK differs from the report's reported_tcb. A VCEK is derived per
    /// TCB, so one for another (maybe older, vulnerable) TCB must not vouch for this report.
    #[error("VCEK {component} SPL is {vcek} but reported_tcb says {report}: the VCEK belongs to another TCB")]
    TcbMismatch {
        /// The first component that differs.
        component: TcbComponent,
        /// Its SPL in the VCEK extension.
        vcek: u8,
        /// Its SPL in the report's reported_tcb.
        report: u8,
    },
    /// The VCEK's hwID is not the report's chip_id (on Turin: not its first 8 bytes, or the
    /// other 56 bytes are not zero): the VCEK is another machine's.
    #[error("VCEK hwID does not equal the report chip_id: the VCEK belongs to another chip")]
    ChipIdMismatch,
    /// chip_id is all zeros (the platform's MaskChipId setting), so the report cannot be tied
    /// to a chip; refused unless
    /// [`Policy::allow_masked_chip_id`](crate::Policy::allow_masked_chip_id).
    #[error("chip_id is masked (all zeros) and the policy requires a chip id")]
    MaskedChipId,
    /// The VCEK's productName extension is missing or names another product than its chain
    /// (AMD writes the product, optionally with its stepping: `Milan-B0`, `Genoa`).
    #[error("VCEK productName is {found:?}, expected {expected} (or {expected}-<stepping>)")]
    ProductName {
        /// The product of the chain.
        expected: Product,
        /// What the extension says, if it is there.
        found: Option<String>,
    },
}

/// An authentic report that the relying party's [`Policy`](crate::Policy) refuses (step 6).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// Guest policy bit 19 (DEBUG) is set and [`Policy::allow_debug`](crate::Policy::allow_debug)
    /// is false.
    #[error("policy.debug is set: debugging lets the host read guest memory")]
    DebugAllowed,
    /// Guest policy bit 18 (MIGRATE_MA) is set and
    /// [`Policy::allow_migrate_agent`](crate::Policy::allow_migrate_agent) is false.
    #[error("policy.migrate_ma is set: a migration agent may export the guest")]
    MigrateAgentAllowed,
    /// The report is signed by a VLEK (a cloud provider's key, shared by its chips and naming
    /// none) and [`Policy::allow_vlek`](crate::Policy::allow_vlek) is false.
    #[error("the report is signed by a VLEK (a cloud provider's key) and the policy accepts only VCEK-signed reports (allow_vlek = false)")]
    VlekNotAllowed,
    /// The VLEK was issued to a cloud provider not in
    /// [`Policy::allowed_csp_ids`](crate::Policy::allowed_csp_ids).
    #[error("the VLEK was issued to cloud provider {csp_id:?}, which the policy does not list in allowed_csp_ids")]
    CspNotAllowed {
        /// The VLEK's csp_id extension.
        csp_id: String,
    },
    /// The report was requested from a VMPL above [`Policy::max_vmpl`](crate::Policy::max_vmpl);
    /// a less privileged VMPL does not speak for the whole guest.
    #[error("vmpl is {vmpl}, the policy requires at most {max}")]
    Vmpl {
        /// The report's VMPL.
        vmpl: u32,
        /// The highest VMPL the policy accepts.
        max: u32,
    },
    /// [`Policy::allow_smt`](crate::Policy::allow_smt) is false but guest policy bit 16 allows
    /// SMT or plat_info says SMT is enabled (SMT siblings share a core, a side channel).
    #[error(
        "SMT is allowed by the guest policy or enabled on the platform, and the policy forbids SMT"
    )]
    SmtNotAllowed,
    /// [`Policy::require_single_socket`](crate::Policy::require_single_socket) is set but guest
    /// policy bit 20 (SINGLE_SOCKET) is clear.
    #[error("policy.single_socket is not set and the policy requires single-socket guests")]
    SingleSocketRequired,
    /// The current or committed SNP firmware version is below
    /// [`Policy::min_abi`](crate::Policy::min_abi).
    #[error("{which} firmware ABI {major}.{minor} is below the minimum {min_major}.{min_minor}")]
    AbiTooOld {
        /// Which firmware version: `current` or `committed`.
        which: &'static str,
        /// Its major version.
        major: u8,
        /// Its minor version.
        minor: u8,
        /// The minimum major version.
        min_major: u8,
        /// The minimum minor version.
        min_minor: u8,
    },
    /// A TCB component is below the policy's minimum for the product. Components are compared
    /// one by one (see [`TcbVersion::first_below`](crate::TcbVersion::first_below)).
    #[error(
        "{which} {component} is {value}, below the {product} minimum {min} (minimum TCB {minimum})"
    )]
    TcbBelowMinimum {
        /// Which TCB: `reported_tcb`, `committed_tcb` or `launch_tcb`.
        which: &'static str,
        /// The product whose minimum applied.
        product: Product,
        /// The first component below its minimum.
        component: TcbComponent,
        /// Its SPL in the report.
        value: u8,
        /// Its minimum SPL.
        min: u8,
        /// The whole minimum TCB, for the message.
        minimum: TcbVersion,
    },
    /// The guest SVN is below [`Policy::min_guest_svn`](crate::Policy::min_guest_svn).
    #[error("guest_svn {svn} is below the minimum {min}")]
    GuestSvnTooLow {
        /// The report's guest_svn.
        svn: u32,
        /// The minimum.
        min: u32,
    },
    /// Guest policy bit 17 is must-be-one; firmware does not launch a guest with it clear, so
    /// such a report did not come from genuine firmware.
    #[error("policy reserved bit 17 must be one")]
    ReservedBitNotSet,
    /// plat_info contradicts a guest policy requirement the firmware enforces at launch (SMT
    /// forbidden but enabled, RAPL disabling or ciphertext hiding required but off), so the
    /// report is not from firmware that enforced the policy. Holds what disagrees.
    #[error("plat_info is inconsistent with the guest policy: {0}")]
    PlatInfoInconsistent(&'static str),
    /// The committed TCB or firmware version differs from the current one: the firmware was
    /// updated but not committed, so the platform can still be rolled back to what is
    /// committed. Refused unless
    /// [`Policy::allow_provisional_firmware`](crate::Policy::allow_provisional_firmware).
    #[error("provisional firmware: committed {what} {committed} differs from current {current} (the platform can be rolled back); allow_provisional_firmware accepts it")]
    ProvisionalFirmware {
        /// `TCB` or `firmware version`.
        what: &'static str,
        /// The committed value.
        committed: String,
        /// The current value.
        current: String,
    },
    /// A reported TCB component (the TCB the VCEK is for) is above the TCB the platform runs:
    /// no genuine firmware reports a TCB it does not run.
    #[error("reported_tcb {component} is {reported}, above current_tcb's {current}")]
    ReportedAboveCurrent {
        /// The first component above the current one.
        component: TcbComponent,
        /// Its SPL in reported_tcb.
        reported: u8,
        /// Its SPL in current_tcb.
        current: u8,
    },
    /// The current or committed firmware build is below
    /// [`Policy::min_build`](crate::Policy::min_build) for the product.
    #[error("{which} firmware build {build} is below the {product} minimum {min}")]
    BuildTooOld {
        /// `current` or `committed`.
        which: &'static str,
        /// The product whose minimum applied.
        product: Product,
        /// The build in the report.
        build: u8,
        /// The minimum build.
        min: u8,
    },
    /// The ABI the guest policy requires of the firmware is below
    /// [`Policy::min_guest_policy_abi`](crate::Policy::min_guest_policy_abi).
    #[error("the guest policy requires firmware ABI {major}.{minor}, below the minimum {min_major}.{min_minor}")]
    GuestPolicyAbiTooOld {
        /// The guest policy's ABI_MAJOR.
        major: u8,
        /// The guest policy's ABI_MINOR.
        minor: u8,
        /// The minimum major version.
        min_major: u8,
        /// The minimum minor version.
        min_minor: u8,
    },
    /// The guest policy requires a newer firmware ABI than the firmware that produced the
    /// report runs: firmware refuses to launch such a guest, so the report is not genuine.
    #[error(
        "the guest policy requires firmware ABI {required}, but the current firmware is {current}"
    )]
    GuestPolicyAbiAboveFirmware {
        /// The ABI the guest policy requires, `major.minor`.
        required: String,
        /// The current firmware version.
        current: String,
    },
    /// Guest policy CXL_ALLOW (bit 21) is set and [`Policy::allow_cxl`](crate::Policy::allow_cxl)
    /// is false: guest memory may live in CXL devices outside SNP's protection.
    #[error("policy.cxl_allow is set: guest memory may be placed in CXL-attached memory")]
    CxlAllowed,
    /// A guest policy bit the relying party requires is clear.
    #[error("the guest policy does not set {0}, which the policy requires")]
    GuestPolicyBitMissing(&'static str),
    /// A platform feature the relying party requires is off in plat_info.
    #[error("plat_info does not report {0}, which the policy requires")]
    PlatformFeatureMissing(&'static str),
    /// plat_info TIO_EN is set and [`Policy::allow_tio`](crate::Policy::allow_tio) is false.
    #[error("plat_info reports SEV-TIO enabled, which the policy refuses")]
    TioEnabled,
    /// A required mitigation bit is clear in the launch or current mitigation vector, or the
    /// report (before version 5) carries no mitigation vectors.
    #[error("{which} mitigation vector is {found:#x}, missing required bits {missing:#x}")]
    MitigationMissing {
        /// `launch` or `current`.
        which: &'static str,
        /// The vector in the report (0 if the report has none).
        found: u64,
        /// The required bits it lacks.
        missing: u64,
    },
    /// ID_KEY_DIGEST is not one of
    /// [`Policy::trusted_id_key_digests`](crate::Policy::trusted_id_key_digests): the image's
    /// ID block was signed by a key the relying party does not trust.
    #[error("id_key_digest {0} is not a trusted ID key")]
    IdKeyNotTrusted(String),
    /// No author key certified the ID key, or its digest is not one of
    /// [`Policy::trusted_author_key_digests`](crate::Policy::trusted_author_key_digests).
    #[error("author key {0} is not a trusted author key")]
    AuthorKeyNotTrusted(String),
    /// FAMILY_ID, IMAGE_ID or REPORT_ID_MA differs from the value the policy requires.
    #[error("{field} is {found}, the policy requires {expected}")]
    IdentityMismatch {
        /// `family_id`, `image_id` or `report_id_ma`.
        field: &'static str,
        /// The value in the report, hex.
        found: String,
        /// The value the policy requires, hex.
        expected: String,
    },
}

/// Why a claimed app identity does not match the evidence.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BootInfoError {
    /// host_data is not [`app_host_data`](crate::app_host_data) of the claimed app_id and
    /// compose_hash: the guest claims an identity the VMM did not launch it with.
    #[error("host_data is not SHA-256(\"snpkms/app/v1\" || app_id || compose_hash) for the claimed app_id and compose_hash")]
    HostDataMismatch,
}

/// Why a policy file was refused.
#[derive(Debug, Error)]
pub enum PolicyLoadError {
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("policy TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// The policy parses but cannot be meant (see [`Policy::validate`](crate::Policy::validate)).
    #[error("policy: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KINDS lists exactly what `kind` returns: one error of each variant (the match in `kind`
    /// is exhaustive, so a new variant fails to compile until it is here too).
    #[test]
    fn kinds_lists_every_kind() {
        let one_of_each = |e: &VerifyError| match e {
            VerifyError::Format(_)
            | VerifyError::Product(_)
            | VerifyError::Certificate(_)
            | VerifyError::CertChain(_)
            | VerifyError::Signature(_)
            | VerifyError::Binding(_)
            | VerifyError::Policy(_) => e.kind(),
        };
        let errors = [
            VerifyError::Format(FormatError::Length { actual: 0 }),
            VerifyError::Product(ProductError::NotAllowed(Product::Milan)),
            VerifyError::Certificate(CertError::MissingVcek),
            VerifyError::CertChain(CertChainError::ArkSelfSignature),
            VerifyError::Signature(SignatureError::Invalid),
            VerifyError::Binding(BindingError::ChipIdMismatch),
            VerifyError::Policy(PolicyError::DebugAllowed),
        ];
        let kinds: Vec<&str> = errors.iter().map(one_of_each).collect();
        assert_eq!(kinds, VerifyError::KINDS);
    }
}
