//! The SEV-SNP platform a guest or a KMS node runs on, behind one trait: [`Attestor`] gives
//! attestation reports (with the certificate table the host supplies) and the guest's sealing
//! key. Real hardware ([`hardware`]: configfs-tsm for reports, `/dev/sev-guest` for keys) and
//! the simulator (feature `simulator`) implement it alike, so everything above runs unchanged on
//! both; production code never names the simulator.

#![warn(missing_docs)]

pub mod hardware;
#[cfg(feature = "simulator")]
mod simulated;

#[cfg(feature = "simulator")]
pub use simulated::SimulatedAttestor;

use zeroize::Zeroizing;

/// A report and the certificate table the host supplied with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpEvidence {
    /// The 1184-byte ATTESTATION_REPORT.
    pub report: Vec<u8>,
    /// The host's certificate table (may be empty: the VCEK then comes from elsewhere).
    pub cert_table: Vec<u8>,
}

/// Why the platform gave no evidence or key.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// No SNP interface on this machine.
    #[error("no SNP evidence source found: {0}")]
    NotFound(String),
    /// The interface refused or failed.
    #[error("{source_name}: {message}")]
    Device {
        /// "configfs-tsm", "sev-guest" or "simulator".
        source_name: &'static str,
        /// What went wrong, with the path or request.
        message: String,
    },
}

/// A source of SNP attestation evidence and of the guest's sealing key.
pub trait Attestor: Send + Sync {
    /// A short name for messages ("configfs-tsm", "sev-guest", "simulator").
    fn name(&self) -> &'static str;
    /// An extended report at VMPL 0 carrying `report_data`.
    fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, PlatformError>;
    /// A key only this guest image on this chip can derive, bound to its measurement, its
    /// policy and the TCB version `tcb_version` (raw TCB_VERSION, as reports carry it), used to
    /// seal state at rest. Firmware refuses a TCB version above the committed TCB, so state
    /// sealed at one TCB cannot be unsealed after a rollback below it.
    fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, PlatformError>;
}
