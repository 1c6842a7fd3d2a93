//! BootInfo: what the on-chain registry decides on. It joins the verified evidence with the app
//! identity the guest claims, and checks that claim against `host_data`.

use crate::error::BootInfoError;
use crate::product::Product;
use crate::tcb::TcbVersion;
use crate::verified::VerifiedReport;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Domain separator of the host_data binding; versioned so the scheme can change without
/// a value of one version ever being read as another.
pub const HOST_DATA_DOMAIN: &[u8] = b"snpkms/app/v1";

/// `SHA-256("snpkms/app/v1" || app_id || compose_hash)`: the value the VMM sets as host_data at
/// launch. The measured guest OS refuses to run a compose whose hash differs, so a report with
/// this host_data can only come from a guest running that compose for that app.
pub fn app_host_data(app_id: &[u8; 20], compose_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HOST_DATA_DOMAIN);
    h.update(app_id);
    h.update(compose_hash);
    h.finalize().into()
}

/// The facts the registry's `isAppAllowed` / `isKmsAllowed` decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootInfo {
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Launch digest of the guest (report MEASUREMENT, 48 bytes).
    pub measurement: [u8; 48],
    /// The chip the guest runs on (report CHIP_ID, 64 bytes), as AMD's VCEK vouches for it;
    /// `None` when nothing does: the chip id is masked, or a cloud provider's VLEK signed the
    /// report. The registry encodes `None` as an empty `chipId`, which matches no device
    /// list: only apps that allow any device (and registries that allow any KMS chip) accept
    /// such guests.
    #[serde(serialize_with = "serialize_chip_id")]
    pub chip_id: Option<[u8; 64]>,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// The app the guest claims to be (the registry's 20-byte app id); zero for a KMS node.
    pub app_id: [u8; 20],
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Hash of the compose the guest claims to run (32 bytes); zero for a KMS node.
    pub compose_hash: [u8; 32],
    /// The SEV-SNP product the evidence came from.
    pub product: Product,
    /// The TCB the VCEK was issued for.
    pub reported_tcb: TcbVersion,
    /// The committed TCB (the oldest the platform can roll back to).
    pub committed_tcb: TcbVersion,
    /// The TCB when the guest was launched.
    pub launch_tcb: TcbVersion,
    #[serde(serialize_with = "crate::hex_serde::serialize")]
    /// Report HOST_DATA (32 bytes, set by the host at launch); for an app it equals
    /// [`app_host_data`] of `app_id` and `compose_hash`.
    pub host_data: [u8; 32],
    /// Guest security version number from the ID block.
    pub guest_svn: u32,
}

impl BootInfo {
    /// BootInfo of an app guest: only if host_data commits to the claimed app and compose, or a
    /// guest of app A could ask for the keys of app B.
    pub fn for_app(
        report: &VerifiedReport,
        app_id: [u8; 20],
        compose_hash: [u8; 32],
    ) -> Result<BootInfo, BootInfoError> {
        if app_host_data(&app_id, &compose_hash) != report.host_data {
            return Err(BootInfoError::HostDataMismatch);
        }
        Ok(Self::build(report, app_id, compose_hash))
    }

    /// BootInfo of a KMS node: the registry decides on its measurement, TCB and chip only.
    pub fn for_kms(report: &VerifiedReport) -> BootInfo {
        Self::build(report, [0; 20], [0; 32])
    }

    fn build(report: &VerifiedReport, app_id: [u8; 20], compose_hash: [u8; 32]) -> BootInfo {
        BootInfo {
            measurement: report.measurement,
            chip_id: report.device_chip_id(),
            app_id,
            compose_hash,
            product: report.product,
            reported_tcb: report.reported_tcb,
            committed_tcb: report.committed_tcb,
            launch_tcb: report.launch_tcb,
            host_data: report.host_data,
            guest_svn: report.guest_svn,
        }
    }
}

fn serialize_chip_id<S: serde::Serializer>(
    chip_id: &Option<[u8; 64]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match chip_id {
        Some(id) => crate::hex_serde::serialize(id, s),
        None => s.serialize_none(),
    }
}

impl BootInfo {
    /// The chip id as the registry's ABI carries it: 64 bytes, or empty for none.
    pub fn chip_id_bytes(&self) -> &[u8] {
        self.chip_id.as_ref().map_or(&[], |id| &id[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_data_vector() {
        // SHA-256("snpkms/app/v1" || 0x11*20 || 0x22*32), computed independently with:
        // python3 -c 'import hashlib;print(hashlib.sha256(b"snpkms/app/v1"+b"\x11"*20+b"\x22"*32).hexdigest())'
        assert_eq!(
            hex::encode(app_host_data(&[0x11; 20], &[0x22; 32])),
            HOST_DATA_VECTOR
        );
    }
    const HOST_DATA_VECTOR: &str =
        "8ced631e6762aa3362e4b91ba12e911d9e46a11e4fc276d1816da37a6bb579fd";
}
