//! What the simulator-based verifier tests share.

use snpkms_simulator::SimAuthority;
use snpkms_verifier::UnixTime;
use std::sync::{Arc, OnceLock};

/// 2026-06-01: inside the validity of the simulator's certificates.
pub const AT: UnixTime = UnixTime(1_780_272_000);

/// The simulated AMD PKI, loaded once per test binary (RSA-4096 keys are slow to parse).
pub fn authority() -> Arc<SimAuthority> {
    static AUTHORITY: OnceLock<Arc<SimAuthority>> = OnceLock::new();
    AUTHORITY
        .get_or_init(|| Arc::new(SimAuthority::load()))
        .clone()
}
