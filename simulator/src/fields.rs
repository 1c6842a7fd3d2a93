//! Every field of a report, settable: the simulator can produce any report hardware could, and
//! many it could not (for negative tests).

use snpkms_verifier::report::{offsets, FirmwareVersion, REPORT_LEN};
use snpkms_verifier::{Product, TcbVersion};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFields {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub current_tcb: TcbVersion,
    pub plat_info: u64,
    pub key_info: u32,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: TcbVersion,
    /// CPUID family, model, stepping; written for version 3 and later.
    pub cpuid: (u8, u8, u8),
    pub chip_id: [u8; 64],
    pub committed_tcb: TcbVersion,
    pub current_version: FirmwareVersion,
    pub committed_version: FirmwareVersion,
    pub launch_tcb: TcbVersion,
    /// Written for version 5 and later.
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
