//! QEMU vCPU models: under QEMU the VMSA's RDX holds the model's CPUID signature, so the model is
//! part of the measurement.

use crate::MeasureError;
use sev::measurement::vcpu_types::CpuType;

/// The models sev-snp-measure 0.0.13 knows (QEMU's builtin_x86_defs); the sev crate knows a few
/// more, but only these are checked against the reference.
const NAMES: [&str; 16] = [
    "EPYC",
    "EPYC-v1",
    "EPYC-v2",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v1",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Milan",
    "EPYC-Milan-v1",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
    "EPYC-Genoa-v1",
    "EPYC-Turin",
];

/// A QEMU vCPU model and its CPUID family/model/stepping signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuType {
    name: &'static str,
    signature: u32,
}

impl VcpuType {
    /// The canonical QEMU name, e.g. `EPYC-v4`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// CPUID Fn0000_0001_EAX of the model.
    pub fn signature(&self) -> u32 {
        self.signature
    }

    /// Every supported model, in QEMU's order.
    pub fn all() -> impl Iterator<Item = VcpuType> {
        NAMES.iter().filter_map(|name| name.parse().ok())
    }
}

impl std::str::FromStr for VcpuType {
    type Err = MeasureError;

    /// Case-insensitive, like the sev crate.
    fn from_str(s: &str) -> Result<VcpuType, MeasureError> {
        let unknown = || MeasureError::UnknownVcpuType {
            name: s.to_owned(),
            supported: NAMES.join(", "),
        };
        let name = NAMES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .ok_or_else(unknown)?;
        let cpu = CpuType::try_from(*name).map_err(|_| unknown())?;
        let signature = u32::try_from(cpu.sig()).map_err(|_| unknown())?;
        Ok(VcpuType { name, signature })
    }
}

impl std::fmt::Display for VcpuType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves() {
        assert_eq!(VcpuType::all().count(), NAMES.len());
    }

    #[test]
    fn signatures_follow_family_model_stepping() {
        // AMD CPUID spec #25481, Fn0000_0001_EAX: Genoa is family 0x19 model 0x11 stepping 0.
        let genoa: VcpuType = "epyc-genoa".parse().unwrap();
        assert_eq!(genoa.name(), "EPYC-Genoa");
        assert_eq!(genoa.signature(), 0x00a1_0f10);
        let naples: VcpuType = "EPYC-v4".parse().unwrap();
        assert_eq!(naples.signature(), 0x0080_0f12);
    }
}
