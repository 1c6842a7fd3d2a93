//! The simulator as a platform, for tests and the dev stack.

use crate::{Attestor, PlatformError, SnpEvidence};
use snpkms_simulator::{DerivedKeyRequest, SimulatedGuest};
use zeroize::Zeroizing;

/// A guest on the simulated platform. Its evidence verifies only where the simulator's root is
/// trusted, which a hardware node never does.
pub struct SimulatedAttestor {
    guest: SimulatedGuest,
}

impl SimulatedAttestor {
    /// The attestor of this simulated guest.
    pub fn new(guest: SimulatedGuest) -> SimulatedAttestor {
        SimulatedAttestor { guest }
    }

    /// The simulated guest.
    pub fn guest(&self) -> &SimulatedGuest {
        &self.guest
    }
}

impl Attestor for SimulatedAttestor {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn attest(&self, report_data: [u8; 64]) -> Result<SnpEvidence, PlatformError> {
        let e = self.guest.extended_report(report_data, 0);
        Ok(SnpEvidence {
            report: e.report,
            cert_table: e.cert_table,
        })
    }

    fn sealing_key(&self, tcb_version: [u8; 8]) -> Result<Zeroizing<[u8; 32]>, PlatformError> {
        let product = self.guest.platform().product();
        let err = |message: String| PlatformError::Device {
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
