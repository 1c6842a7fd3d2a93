//! The result of a successful verification: typed fields a caller can rely on.

use crate::policy_bits::{GuestPolicy, PlatformInfo};
use crate::product::Product;
use crate::report::FirmwareVersion;
use crate::roots::RootOrigin;
use crate::tcb::TcbVersion;
use serde::Serialize;

/// A report that passed every check: genuine AMD signature chained to a trusted root, VCEK bound
/// to this chip and TCB, and the policy satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedReport {
    pub version: u32,
    pub product: Product,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub measurement: [u8; 48],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub chip_id: [u8; 64],
    pub chip_id_masked: bool,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub host_data: [u8; 32],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub report_data: [u8; 64],
    pub guest_svn: u32,
    pub policy: GuestPolicy,
    pub vmpl: u32,
    pub plat_info: PlatformInfo,
    pub current_tcb: TcbVersion,
    pub reported_tcb: TcbVersion,
    pub committed_tcb: TcbVersion,
    pub launch_tcb: TcbVersion,
    pub current_version: FirmwareVersion,
    pub committed_version: FirmwareVersion,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub family_id: [u8; 16],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub image_id: [u8; 16],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub id_key_digest: [u8; 48],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub author_key_digest: [u8; 48],
    pub author_key_enabled: bool,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub report_id: [u8; 32],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    pub report_id_ma: [u8; 32],
    /// CPUID family, model, stepping (version 3 and later).
    pub cpuid: Option<(u8, u8, u8)>,
    /// Launch and current mitigation vectors (version 5 and later).
    pub mit_vectors: Option<(u64, u64)>,
    /// Which trust anchor the chain ended at.
    pub root: RootOrigin,
}
