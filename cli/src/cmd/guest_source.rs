//! Where a guest command gets its evidence: real hardware (auto-detected) or the simulator.

use anyhow::Context;
use snpkms_platform::Attestor;
use snpkms_verifier::Product;
use std::sync::Arc;

#[derive(clap::Args, Clone)]
pub struct SourceArgs {
    /// Evidence source: `auto` (configfs-tsm on SNP hardware) or `simulator` (development).
    #[arg(long, default_value = "auto", value_parser = ["auto", "simulator"])]
    pub source: String,
    /// Simulated product.
    #[arg(long, default_value = "milan")]
    pub sim_product: Product,
    /// Simulated chip (any string; the same string is the same chip).
    #[arg(long, default_value = "snpkms-dev-guest")]
    pub sim_chip_seed: String,
    /// Simulated launch measurement (48 bytes hex): the OS image registered on-chain.
    #[arg(long)]
    pub sim_measurement: Option<String>,
}

impl SourceArgs {
    /// Opens the source. The simulated VMM sets host_data to `host_data`, as a real VMM does
    /// from the app id and compose hash.
    pub fn open(&self, host_data: [u8; 32]) -> anyhow::Result<Arc<dyn Attestor>> {
        match self.source.as_str() {
            "simulator" => self.simulator(host_data),
            _ => {
                let source = snpkms_platform::hardware::detect()?;
                eprintln!("evidence source: {}", source.name());
                Ok(source)
            }
        }
    }

    #[cfg(not(feature = "simulator"))]
    fn simulator(&self, _: [u8; 32]) -> anyhow::Result<Arc<dyn Attestor>> {
        anyhow::bail!("--source simulator: this snpkms was built without the `simulator` feature")
    }

    #[cfg(feature = "simulator")]
    fn simulator(&self, host_data: [u8; 32]) -> anyhow::Result<Arc<dyn Attestor>> {
        use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
        let measurement = match &self.sim_measurement {
            Some(hex) => parse_hex::<48>(hex).context("--sim-measurement")?,
            None => anyhow::bail!("--source simulator needs --sim-measurement (the OS image digest registered on-chain)"),
        };
        let platform = SimulatedPlatform::new(
            Arc::new(SimAuthority::load()),
            self.sim_product,
            self.sim_chip_seed.as_bytes(),
        );
        Ok(Arc::new(snpkms_platform::SimulatedAttestor::new(
            SimulatedGuest::new(
                Arc::new(platform),
                GuestLaunch {
                    measurement,
                    host_data,
                    ..GuestLaunch::default()
                },
            ),
        )))
    }
}

pub fn parse_hex<const N: usize>(s: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x"))
        .with_context(|| format!("{s:?} is not hex"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("expected {N} bytes of hex, got {}", b.len()))
}
