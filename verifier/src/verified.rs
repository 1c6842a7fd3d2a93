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
    /// Report format version (2 to 5).
    pub version: u32,
    /// The product, as agreed by the CPUID (or configuration) and the VCEK chain.
    pub product: Product,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Launch digest of the initial guest memory and VMSAs (48 bytes).
    pub measurement: [u8; 48],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Unique chip identifier (64 bytes), bound to the VCEK's hwID; zero if masked.
    pub chip_id: [u8; 64],
    /// chip_id is all zeros (the platform's MaskChipId setting), so it was not compared with
    /// the VCEK's hwID. Only possible when
    /// [`Policy::allow_masked_chip_id`](crate::Policy::allow_masked_chip_id) is set.
    pub chip_id_masked: bool,
    /// Which key signed the report: the chip's VCEK, or a cloud provider's VLEK (whose
    /// reports carry no chip identity: see [`VerifiedReport::device_chip_id`]).
    pub endorser: crate::Endorser,
    /// The cloud provider the VLEK was issued to (its csp_id extension); `None` for a VCEK.
    pub csp_id: Option<String>,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// 32 bytes the host supplied at launch, not measured (see
    /// [`app_host_data`](crate::app_host_data)).
    pub host_data: [u8; 32],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// 64 bytes the guest supplied when requesting the report (a nonce or a key hash).
    pub report_data: [u8; 64],
    /// Guest security version number from the ID block.
    pub guest_svn: u32,
    /// The guest policy given at launch.
    pub policy: GuestPolicy,
    /// The VMPL the report was requested from (0 = most privileged).
    pub vmpl: u32,
    /// Platform state when the report was produced.
    pub plat_info: PlatformInfo,
    /// TCB the platform is running now.
    pub current_tcb: TcbVersion,
    /// TCB the VCEK is derived from; equal to the VCEK's SPL extensions.
    pub reported_tcb: TcbVersion,
    /// Committed TCB: the oldest the firmware can roll back to.
    pub committed_tcb: TcbVersion,
    /// TCB when the guest was launched.
    pub launch_tcb: TcbVersion,
    /// SNP firmware version running now.
    pub current_version: FirmwareVersion,
    /// Committed SNP firmware version.
    pub committed_version: FirmwareVersion,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Family ID from the ID block (16 bytes, chosen by the guest owner).
    pub family_id: [u8; 16],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Image ID from the ID block (16 bytes, chosen by the guest owner).
    pub image_id: [u8; 16],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// SHA-384 of the key that signed the ID block (48 bytes).
    pub id_key_digest: [u8; 48],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// SHA-384 of the author key that certified the ID key (48 bytes); zero unless
    /// `author_key_enabled`.
    pub author_key_digest: [u8; 48],
    /// KEY_INFO.AUTHOR_KEY_EN: `author_key_digest` is present.
    pub author_key_enabled: bool,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Identifier the firmware assigned to the guest at launch (32 bytes).
    pub report_id: [u8; 32],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// REPORT_ID of the guest's migration agent (32 bytes).
    pub report_id_ma: [u8; 32],
    /// CPUID family, model, stepping (version 3 and later).
    pub cpuid: Option<(u8, u8, u8)>,
    /// Launch and current mitigation vectors (version 5 and later).
    pub mit_vectors: Option<(u64, u64)>,
    /// Which trust anchor the chain ended at.
    pub root: RootOrigin,
    /// Only the verifier makes a `VerifiedReport`: this private field keeps every other crate
    /// from building one that no verification produced.
    #[serde(skip)]
    pub(crate) verified_by: VerifiedBy,
}

impl VerifiedReport {
    /// The chip id AMD's certificate vouches for: the report's chip id if a VCEK bound to it
    /// signed the report; `None` if the chip id is masked or a VLEK (a cloud provider's key,
    /// naming no chip) signed it. This is what device allow-lists may rely on.
    pub fn device_chip_id(&self) -> Option<[u8; 64]> {
        (self.endorser == crate::Endorser::Vcek && !self.chip_id_masked).then_some(self.chip_id)
    }
}

/// The verifier's mark on a [`VerifiedReport`]; it cannot be made outside this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy(pub(crate) ());
