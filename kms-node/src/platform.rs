//! The node's own TEE, from its configuration: its evidence and its sealing key.

use crate::config::PlatformConfig;
use snpkms_platform::Attestor;
use std::sync::Arc;

/// Why the node's own TEE gave no evidence or sealing key.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// `[platform]` cannot be used: a simulator `measurement` that is not 48 bytes of hex, or
    /// `kind = "simulator"` in a build without the simulator.
    #[error("platform: {0}")]
    Config(String),
    /// The SNP guest device (or the simulator) is missing or refused a report or a derived key
    /// (e.g. a TCB above the committed one: firmware rolled back).
    #[error("platform: {0}")]
    Device(#[from] snpkms_platform::PlatformError),
    /// The node's own report does not parse, so its committed TCB (which the sealing key is
    /// bound to) is unknown.
    #[error("platform: the node's own report cannot be read: {0}")]
    OwnReport(#[from] snpkms_verifier::FormatError),
}

/// Opens the configured platform. The simulator is for development: its evidence only passes
/// verifiers that trust the simulator root, which a hardware node never does.
pub fn open(cfg: &PlatformConfig) -> Result<Arc<dyn Attestor>, PlatformError> {
    match cfg {
        PlatformConfig::Hardware => Ok(snpkms_platform::hardware::detect()?),
        PlatformConfig::Simulator {
            product,
            chip_seed,
            measurement,
        } => simulator(*product, chip_seed, measurement),
    }
}

#[cfg(feature = "simulator")]
fn simulator(
    product: snpkms_verifier::Product,
    chip_seed: &str,
    measurement: &str,
) -> Result<Arc<dyn Attestor>, PlatformError> {
    let measurement: [u8; 48] = hex::decode(measurement.trim_start_matches("0x"))
        .ok()
        .and_then(|m| m.try_into().ok())
        .ok_or_else(|| {
            PlatformError::Config("platform.measurement must be 48 bytes of hex".to_string())
        })?;
    Ok(Arc::new(simulated_kms(product, chip_seed, measurement)))
}

#[cfg(not(feature = "simulator"))]
fn simulator(
    _: snpkms_verifier::Product,
    _: &str,
    _: &str,
) -> Result<Arc<dyn Attestor>, PlatformError> {
    Err(PlatformError::Config(
        "platform.kind = \"simulator\": this build has no simulator (built without the `simulator` feature)".into(),
    ))
}

/// A simulated KMS guest: the given chip and image, VMPL 0, default policy.
#[cfg(feature = "simulator")]
pub fn simulated_kms(
    product: snpkms_verifier::Product,
    chip_seed: &str,
    measurement: [u8; 48],
) -> snpkms_platform::SimulatedAttestor {
    use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
    let platform = SimulatedPlatform::new(
        Arc::new(SimAuthority::load()),
        product,
        chip_seed.as_bytes(),
    );
    snpkms_platform::SimulatedAttestor::new(SimulatedGuest::new(
        Arc::new(platform),
        GuestLaunch {
            measurement,
            ..GuestLaunch::default()
        },
    ))
}

/// The committed TCB of the platform that made `report` (the node's own, unverified: it comes
/// from this VM's firmware), as the raw TCB_VERSION a sealing key is bound to.
pub fn committed_tcb(report: &[u8]) -> Result<[u8; 8], PlatformError> {
    let parsed = snpkms_verifier::ParsedReport::parse(report, Default::default())?;
    Ok(parsed.raw_tcbs().committed)
}
