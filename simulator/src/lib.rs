//! A simulated AMD SEV-SNP platform for tests and the local dev stack.
//!
//! Reports are signed exactly like hardware (ECDSA P-384 over bytes 0x000..0x2A0 with a VCEK
//! that carries AMD's TCB and hwID extensions), and the VCEK chains to a test ARK/ASK. They go
//! through the same verifier as real evidence; the only difference is the root, which a
//! verifier trusts only when told to with [`trust_simulator_root`].

#![warn(missing_docs)]

mod authority;
mod cert_builder;
mod fields;
mod guest;
mod platform;

pub use authority::{
    AuthorityNames, SimAuthority, ARK_KEY_PEM, ARK_PEMS, ASK_KEY_PEM, NOT_AFTER, NOT_BEFORE,
};
pub use cert_builder::ProfileDeviation;
pub use fields::{cpuid_of, ReportFields};
pub use guest::{DerivedKeyError, DerivedKeyRequest, Evidence, GuestLaunch, SimulatedGuest};
pub use platform::{default_plat_info, default_tcb, SimulatedPlatform};

use snpkms_verifier::RootError;
use snpkms_verifier::TrustRoots;

/// Label of the simulator's trust anchor in verification results and logs.
pub const SIMULATOR_ROOT_LABEL: &str = "simulator";

/// Adds the simulator's ARKs (committed test fixtures, one per product) to `roots`, each with
/// its ASK as AMD's roots come with theirs: a VCEK fetched from a KDS stand-in (which serves
/// the VCEK alone) chains to it.
pub fn trust_simulator_root(roots: &mut TrustRoots) -> Result<(), RootError> {
    for ((product, ark), (_, ask)) in ARK_PEMS.into_iter().zip(authority::ASK_PEMS) {
        let chain = format!("{}\n{}", ask.trim_end(), ark);
        roots.add_pem(&[product], SIMULATOR_ROOT_LABEL, chain.as_bytes())?;
    }
    Ok(())
}
