//! Where evidence comes from. Real hardware and the simulator implement the same trait, so
//! everything above it (the client, the KMS node's own attestation) runs unchanged on both.

use zeroize::Zeroizing;

/// A report and the certificate table the host supplied with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpEvidence {
    pub report: Vec<u8>,
    pub cert_table: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("no SNP evidence source found: {0}")]
    NotFound(String),
    #[error("{source_name}: {message}")]
    Device {
        source_name: &'static str,
        message: String,
    },
}

/// A source of SNP attestation evidence and of the guest's sealing key.
pub trait EvidenceSource: Send + Sync {
    /// A short name for messages ("configfs-tsm", "sev-guest", "simulator").
    fn name(&self) -> &'static str;
    /// An extended report at VMPL 0 carrying `report_data`.
    fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, GuestError>;
    /// A key only this guest image on this chip can derive, bound to its measurement, its
    /// policy and the TCB version `tcb_version` (raw TCB_VERSION, as reports carry it), used to
    /// seal state at rest. Firmware refuses a TCB version above the committed TCB, so state
    /// sealed at one TCB cannot be unsealed after a rollback below it.
    fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, GuestError>;
}

#[cfg(feature = "simulator")]
pub use simulated::SimulatedSource;

#[cfg(feature = "simulator")]
mod simulated {
    use super::{EvidenceSource, GuestError, SnpEvidence};
    use snpkms_simulator::{DerivedKeyRequest, SimulatedGuest};
    use zeroize::Zeroizing;

    /// The simulator, for tests and the dev stack.
    pub struct SimulatedSource {
        guest: SimulatedGuest,
    }

    impl SimulatedSource {
        pub fn new(guest: SimulatedGuest) -> SimulatedSource {
            SimulatedSource { guest }
        }

        pub fn guest(&self) -> &SimulatedGuest {
            &self.guest
        }
    }

    impl EvidenceSource for SimulatedSource {
        fn name(&self) -> &'static str {
            "simulator"
        }

        fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, GuestError> {
            let e = self.guest.extended_report(report_data, 0);
            Ok(SnpEvidence {
                report: e.report,
                cert_table: e.cert_table,
            })
        }

        fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, GuestError> {
            let product = self.guest.platform().product();
            let err = |message: String| GuestError::Device {
                source_name: "simulator",
                message,
            };
            let tcb = snpkms_verifier::TcbVersion::decode(tcb_version, product)
                .map_err(|byte| err(format!("TCB_VERSION byte {byte} is reserved on {product}")))?;
            self.guest
                .derived_key(DerivedKeyRequest::sealing(tcb))
                .map(Zeroizing::new)
                .map_err(|e| err(format!("MSG_KEY_REQ: {e}")))
        }
    }
}
