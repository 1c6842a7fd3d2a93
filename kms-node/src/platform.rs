//! The node's own TEE, from its configuration.

use crate::config::PlatformConfig;
use snpkms_guest::{EvidenceSource, SimulatedSource};
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("platform: {0}")]
    Config(String),
    #[error("platform: {0}")]
    Guest(#[from] snpkms_guest::GuestError),
}

/// Opens the configured platform. The simulator is for development: its evidence only passes
/// verifiers that trust the simulator root.
pub fn open(cfg: &PlatformConfig) -> Result<Arc<dyn EvidenceSource>, PlatformError> {
    match cfg {
        PlatformConfig::Hardware => Ok(snpkms_guest::hardware::detect()?),
        PlatformConfig::Simulator {
            product,
            chip_seed,
            measurement,
        } => {
            let measurement: [u8; 48] = hex::decode(measurement.trim_start_matches("0x"))
                .ok()
                .and_then(|m| m.try_into().ok())
                .ok_or_else(|| {
                    PlatformError::Config(
                        "platform.measurement must be 48 bytes of hex".to_string(),
                    )
                })?;
            Ok(Arc::new(simulated_kms(*product, chip_seed, measurement)))
        }
    }
}

/// A simulated KMS guest: the given chip and image, VMPL 0, default policy.
pub fn simulated_kms(
    product: snpkms_verifier::Product,
    chip_seed: &str,
    measurement: [u8; 48],
) -> SimulatedSource {
    let platform = SimulatedPlatform::new(
        Arc::new(SimAuthority::load()),
        product,
        chip_seed.as_bytes(),
    );
    SimulatedSource::new(SimulatedGuest::new(
        Arc::new(platform),
        GuestLaunch {
            measurement,
            ..GuestLaunch::default()
        },
    ))
}
