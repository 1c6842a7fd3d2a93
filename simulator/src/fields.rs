//! Every field of a report, settable: the simulator can produce any report hardware could, and
//! many it could not (for negative tests).

use snpkms_verifier::{offsets, FirmwareVersion, REPORT_LEN};
use snpkms_verifier::{Product, TcbVersion};

/// The contents of an attestation report, field by field, before encoding and signing. Nothing
/// is checked: any value is written as given (SIG_ALGO is always 1, ECDSA P-384). TCB fields
/// are encoded in the layout of the product passed to [`ReportFields::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFields {
    /// Report format version (offset 0x00; the platform's default is 3, or 5 on Turin). It
    /// decides whether CPUID (3 and later) and the mitigation vectors (5 and later) are written.
    pub version: u32,
    /// GUEST_SVN from the ID block (0x04).
    pub guest_svn: u32,
    /// Guest policy bits (0x08), see `snpkms_verifier::GuestPolicy`.
    pub policy: u64,
    /// FAMILY_ID from the ID block (0x10).
    pub family_id: [u8; 16],
    /// IMAGE_ID from the ID block (0x20).
    pub image_id: [u8; 16],
    /// VMPL the report was requested at (0x30).
    pub vmpl: u32,
    /// CURRENT_TCB (0x38): the TCB the firmware runs at.
    pub current_tcb: TcbVersion,
    /// PLAT_INFO bits (0x40), see `snpkms_verifier::PlatformInfo`.
    pub plat_info: u64,
    /// KEY_INFO bits (0x48): AUTHOR_KEY_EN, MASK_CHIP_KEY and SIGNING_KEY (0 = VCEK), see
    /// `snpkms_verifier::KeyInfo`.
    pub key_info: u32,
    /// The 64 bytes the guest asked the report to carry (0x50).
    pub report_data: [u8; 64],
    /// Launch measurement (0x90).
    pub measurement: [u8; 48],
    /// HOST_DATA the VMM set at launch (0xC0).
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key (0xE0); zero without an ID block.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key (0x110); zero without one.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID of this guest (0x140).
    pub report_id: [u8; 32],
    /// REPORT_ID of its migration agent (0x160); all `0xff` without one.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB (0x180): the TCB whose VCEK signs the report; [`SimulatedPlatform::sign`]
    /// picks the VCEK by it.
    ///
    /// [`SimulatedPlatform::sign`]: crate::SimulatedPlatform::sign
    pub reported_tcb: TcbVersion,
    /// CPUID family, model, stepping; written for version 3 and later.
    pub cpuid: (u8, u8, u8),
    /// CHIP_ID (0x1A0): 64 bytes (on Turin hardware, 8 bytes then zeros).
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB (0x1E0): the TCB the firmware will not roll back below.
    pub committed_tcb: TcbVersion,
    /// Running firmware version (CURRENT_BUILD/MINOR/MAJOR, 0x1E8).
    pub current_version: FirmwareVersion,
    /// Committed firmware version (COMMITTED_BUILD/MINOR/MAJOR, 0x1EC).
    pub committed_version: FirmwareVersion,
    /// LAUNCH_TCB (0x1F0): the TCB at the guest's launch.
    pub launch_tcb: TcbVersion,
    /// Launch and current mitigation vectors (0x1F8, 0x200); written for version 5 and later.
    pub mit_vectors: (u64, u64),
}

/// CPUID family/model/stepping of a representative part of each product.
pub fn cpuid_of(product: Product) -> (u8, u8, u8) {
    match product {
        Product::Milan => (0x19, 0x01, 0x01),
        Product::Genoa => (0x19, 0x11, 0x01),
        Product::Turin => (0x1a, 0x02, 0x01),
    }
}

impl ReportFields {
    /// The unsigned report bytes (signature area zero).
    pub fn encode(&self, product: Product) -> [u8; REPORT_LEN] {
        let mut r = [0u8; REPORT_LEN];
        let mut put = |off: usize, bytes: &[u8]| r[off..off + bytes.len()].copy_from_slice(bytes);
        put(offsets::VERSION, &self.version.to_le_bytes());
        put(offsets::GUEST_SVN, &self.guest_svn.to_le_bytes());
        put(offsets::POLICY, &self.policy.to_le_bytes());
        put(offsets::FAMILY_ID, &self.family_id);
        put(offsets::IMAGE_ID, &self.image_id);
        put(offsets::VMPL, &self.vmpl.to_le_bytes());
        put(offsets::SIG_ALGO, &1u32.to_le_bytes());
        put(offsets::CURRENT_TCB, &self.current_tcb.encode(product));
        put(offsets::PLAT_INFO, &self.plat_info.to_le_bytes());
        put(offsets::KEY_INFO, &self.key_info.to_le_bytes());
        put(offsets::REPORT_DATA, &self.report_data);
        put(offsets::MEASUREMENT, &self.measurement);
        put(offsets::HOST_DATA, &self.host_data);
        put(offsets::ID_KEY_DIGEST, &self.id_key_digest);
        put(offsets::AUTHOR_KEY_DIGEST, &self.author_key_digest);
        put(offsets::REPORT_ID, &self.report_id);
        put(offsets::REPORT_ID_MA, &self.report_id_ma);
        put(offsets::REPORTED_TCB, &self.reported_tcb.encode(product));
        if self.version >= 3 {
            put(
                offsets::CPUID_FAM,
                &[self.cpuid.0, self.cpuid.1, self.cpuid.2],
            );
        }
        put(offsets::CHIP_ID, &self.chip_id);
        put(offsets::COMMITTED_TCB, &self.committed_tcb.encode(product));
        let v = |v: FirmwareVersion| [v.build, v.minor, v.major];
        put(offsets::CURRENT_BUILD, &v(self.current_version));
        put(offsets::COMMITTED_BUILD, &v(self.committed_version));
        put(offsets::LAUNCH_TCB, &self.launch_tcb.encode(product));
        if self.version >= 5 {
            put(
                offsets::LAUNCH_MIT_VECTOR,
                &self.mit_vectors.0.to_le_bytes(),
            );
            put(
                offsets::CURRENT_MIT_VECTOR,
                &self.mit_vectors.1.to_le_bytes(),
            );
        }
        r
    }
}
