//! Typed errors, one per failing check. Every message names the field that failed and, where it
//! helps, the expected value, so an operator can tell a misconfigured guest from an attack.

use crate::product::Product;
use crate::tcb::{TcbComponent, TcbVersion};
use thiserror::Error;

/// Any reason evidence is rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    #[error("report format: {0}")]
    Format(#[from] FormatError),
    #[error("product: {0}")]
    Product(#[from] ProductError),
    #[error("certificates: {0}")]
    Certificate(#[from] CertError),
    #[error("certificate chain: {0}")]
    Chain(#[from] ChainError),
    #[error("report signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("VCEK binding: {0}")]
    Binding(#[from] BindingError),
    #[error("guest policy: {0}")]
    Policy(#[from] PolicyError),
}

impl VerifyError {
    /// A stable short label for metrics and machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Format(_) => "format",
            VerifyError::Product(_) => "product",
            VerifyError::Certificate(_) => "certificate",
            VerifyError::Chain(_) => "chain",
            VerifyError::Signature(_) => "signature",
            VerifyError::Binding(_) => "binding",
            VerifyError::Policy(_) => "policy",
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FormatError {
    #[error("report is {actual} bytes, expected exactly 1184")]
    Length { actual: usize },
    #[error("report version {version} is outside the accepted window {min}..={max}")]
    Version { version: u32, min: u32, max: u32 },
    #[error("signature_algo is {sig_algo}, expected 1 (ECDSA P-384 with SHA-384)")]
    SignatureAlgorithm { sig_algo: u32 },
    #[error("{field} must be zero but byte 0x{offset:03x} is not")]
    NonZeroReserved { field: &'static str, offset: usize },
    #[error("{field} has reserved bits set (value 0x{value:x})")]
    ReservedBits { field: &'static str, value: u64 },
    #[error("{field} has a non-zero reserved byte {byte} for the {product} TCB layout")]
    TcbReserved {
        field: &'static str,
        byte: usize,
        product: Product,
    },
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProductError {
    #[error("CPUID family 0x{family:02x} model 0x{model:02x} is not an SEV-SNP product we know (Milan, Genoa, Turin)")]
    UnknownCpuid { family: u8, model: u8 },
    #[error("version {version} report carries no CPUID and the VCEK issuer names no product: configure product_for_v2")]
    Undetermined { version: u32 },
    #[error("report CPUID says {report} but the VCEK was issued by the {certificate} ASK")]
    Mismatch {
        report: Product,
        certificate: Product,
    },
    #[error("product {0} is not allowed by the policy")]
    NotAllowed(Product),
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertError {
    #[error("certificate table: {0}")]
    Table(String),
    #[error("no VCEK certificate was supplied")]
    MissingVcek,
    #[error("{which} is not a valid X.509 certificate (DER or PEM): {reason}")]
    Decode { which: &'static str, reason: String },
    #[error("VCEK public key is not an ECDSA P-384 key: {0}")]
    VcekKey(String),
    #[error("{which} public key is not a usable RSA key: {reason}")]
    RsaKey { which: &'static str, reason: String },
    #[error("CRL is not a valid DER certificate list: {0}")]
    CrlDecode(String),
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChainError {
    #[error("no trusted ARK is configured for {product}")]
    NoRootForProduct { product: Product },
    #[error("the supplied ARK for {product} is not a pinned root (a self-consistent chain to another root is not trusted)")]
    UntrustedRoot { product: Product },
    #[error("the ASK is not signed by any trusted {product} ARK")]
    AskNotSignedByArk { product: Product },
    #[error("the VCEK is not signed by the {product} ASK")]
    VcekNotSignedByAsk { product: Product },
    #[error("the ARK self-signature is invalid")]
    ArkSelfSignature,
    #[error("{which} issuer does not name the {issuer} subject")]
    IssuerMismatch {
        which: &'static str,
        issuer: &'static str,
    },
    #[error("{which} signature algorithm is {found}, expected RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48")]
    SignatureAlgorithm { which: &'static str, found: String },
    #[error("{which} is not valid before {not_before} (unix), verification time is {at}")]
    NotYetValid {
        which: &'static str,
        not_before: u64,
        at: u64,
    },
    #[error("{which} expired at {not_after} (unix), verification time is {at}")]
    Expired {
        which: &'static str,
        not_after: u64,
        at: u64,
    },
    #[error("the CRL is not signed by the {product} ARK")]
    CrlSignature { product: Product },
    #[error("the CRL was due for renewal at {next_update} (unix), verification time is {at}")]
    CrlStale { next_update: u64, at: u64 },
    #[error("{which} serial {serial} is revoked by the AMD CRL")]
    Revoked { which: &'static str, serial: String },
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature r/s are not valid P-384 scalars")]
    Malformed,
    #[error("the report signature does not verify with the VCEK public key")]
    Invalid,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BindingError {
    #[error("report is signed by a VLEK: VLEK is not supported, use VCEK-signed reports")]
    VlekNotSupported,
    #[error("key_info.signing_key is {0}, expected 0 (VCEK)")]
    UnsupportedSigningKey(u8),
    #[error("VCEK lacks the {name} extension ({oid})")]
    MissingExtension {
        name: &'static str,
        oid: &'static str,
    },
    #[error("VCEK {name} extension is malformed: {reason}")]
    MalformedExtension { name: &'static str, reason: String },
    #[error("VCEK {component} SPL is {vcek} but reported_tcb says {report}: the VCEK belongs to another TCB")]
    TcbMismatch {
        component: TcbComponent,
        vcek: u8,
        report: u8,
    },
    #[error("VCEK hwID does not equal the report chip_id: the VCEK belongs to another chip")]
    ChipIdMismatch,
    #[error("chip_id is masked (key_info.mask_chip_key) and the policy requires a chip id")]
    MaskedChipId,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy.debug is set: debugging lets the host read guest memory")]
    DebugAllowed,
    #[error("policy.migrate_ma is set: a migration agent may export the guest")]
    MigrateAgentAllowed,
    #[error("vmpl is {vmpl}, the policy requires at most {max}")]
    Vmpl { vmpl: u32, max: u32 },
    #[error(
        "SMT is allowed by the guest policy or enabled on the platform, and the policy forbids SMT"
    )]
    SmtNotAllowed,
    #[error("policy.single_socket is not set and the policy requires single-socket guests")]
    SingleSocketRequired,
    #[error("{which} firmware ABI {major}.{minor} is below the minimum {min_major}.{min_minor}")]
    AbiTooOld {
        which: &'static str,
        major: u8,
        minor: u8,
        min_major: u8,
        min_minor: u8,
    },
    #[error(
        "{which} {component} is {value}, below the {product} minimum {min} (minimum TCB {minimum})"
    )]
    TcbBelowMinimum {
        which: &'static str,
        product: Product,
        component: TcbComponent,
        value: u8,
        min: u8,
        minimum: TcbVersion,
    },
    #[error("guest_svn {svn} is below the minimum {min}")]
    GuestSvnTooLow { svn: u32, min: u32 },
    #[error("policy reserved bit 17 must be one")]
    ReservedBitNotSet,
    #[error("plat_info is inconsistent with the guest policy: {0}")]
    PlatInfoInconsistent(&'static str),
}

/// Why a claimed app identity does not match the evidence.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BootInfoError {
    #[error("host_data is not SHA-256(\"snpkms/app/v1\" || app_id || compose_hash) for the claimed app_id and compose_hash")]
    HostDataMismatch,
}

/// Why a policy file was refused.
#[derive(Debug, Error)]
pub enum PolicyLoadError {
    #[error("policy TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("policy: {0}")]
    Invalid(String),
}
