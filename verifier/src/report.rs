//! The ATTESTATION_REPORT structure (SEV-SNP firmware ABI, table "ATTESTATION_REPORT Structure"):
//! bytes in, typed fields out. No cryptography here.
//!
//! Parsing keeps the raw bytes: the signature covers bytes `0x000..0x2A0` exactly as the firmware
//! wrote them, so verification must never hash a re-encoded copy of these fields.

use crate::error::FormatError;
use crate::policy_bits::{GuestPolicy, KeyInfo, PlatformInfo};

/// Size of an ATTESTATION_REPORT in bytes (0x4A0 = 1184): the signed body, the signature and
/// the reserved tail. Every version has this size.
pub const REPORT_LEN: usize = 0x4A0;
/// End of the signed part of the report.
pub const SIGNED_LEN: usize = 0x2A0;
/// The only signature algorithm SNP defines: ECDSA P-384 with SHA-384.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

const SIG_R: usize = 0x2A0;
const SIG_S: usize = 0x2E8;
const SIG_COMPONENT_LEN: usize = 72;
/// P-384 scalars are 48 bytes; the firmware zero-pads them to 72 little-endian bytes.
const SCALAR_LEN: usize = 48;
const UNSIGNED_TAIL: std::ops::Range<usize> = 0x330..REPORT_LEN;

/// A structurally valid report: exact length, known version, known signature algorithm and
/// every product-independent must-be-zero byte zero. TCB fields stay raw until the product is
/// known, because their layout depends on it.
#[derive(Clone)]
pub struct ParsedReport {
    raw: Box<[u8; REPORT_LEN]>,
}

/// The report versions the firmware has defined so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionWindow {
    /// Lowest accepted report version (inclusive).
    pub min: u32,
    /// Highest accepted report version (inclusive).
    pub max: u32,
}

impl Default for VersionWindow {
    fn default() -> Self {
        VersionWindow { min: 2, max: 5 }
    }
}

/// Raw (product-dependent) TCB fields of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTcbs {
    /// CURRENT_TCB (offset 0x38): the TCB the platform is running now.
    pub current: [u8; 8],
    /// REPORTED_TCB (offset 0x180): the TCB the host chose to report, which the VCEK that
    /// signed the report is derived from.
    pub reported: [u8; 8],
    /// COMMITTED_TCB (offset 0x1E0): the committed TCB, the oldest the firmware can be rolled
    /// back to.
    pub committed: [u8; 8],
    /// LAUNCH_TCB (offset 0x1F0): the current TCB when the guest was launched or imported.
    pub launch: [u8; 8],
}

/// A firmware version as the report carries it (major.minor, build).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct FirmwareVersion {
    /// Major ABI version.
    pub major: u8,
    /// Minor ABI version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl std::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{} (build {})", self.major, self.minor, self.build)
    }
}

/// Reserved ranges that the firmware always writes as zero, with the name used in errors.
/// A non-zero byte there means the bytes did not come from the firmware we understand, or that
/// a parser elsewhere would read fields we ignore.
fn reserved_ranges(version: u32) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let mut ranges = vec![
        ("reserved after key_info", 0x4C..0x50),
        ("current version reserved byte", 0x1EB..0x1EC),
        ("committed version reserved byte", 0x1EF..0x1F0),
    ];
    if version >= 3 {
        ranges.push(("reserved after cpuid", 0x18B..0x1A0));
    } else {
        ranges.push(("reserved after reported_tcb", 0x188..0x1A0));
    }
    if version >= 5 {
        ranges.push(("reserved after current_mit_vector", 0x208..SIGNED_LEN));
    } else {
        ranges.push(("reserved after launch_tcb", 0x1F8..SIGNED_LEN));
    }
    ranges
}

impl ParsedReport {
    /// Checks the format of `bytes` (step 1 of verification).
    pub fn parse(bytes: &[u8], versions: VersionWindow) -> Result<ParsedReport, FormatError> {
        let raw: Box<[u8; REPORT_LEN]> =
            bytes
                .to_vec()
                .into_boxed_slice()
                .try_into()
                .map_err(|_| FormatError::Length {
                    actual: bytes.len(),
                })?;
        let report = ParsedReport { raw };

        let version = report.version();
        if version < versions.min || version > versions.max {
            return Err(FormatError::Version {
                version,
                min: versions.min,
                max: versions.max,
            });
        }
        let sig_algo = report.u32_at(0x34);
        if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(FormatError::SignatureAlgorithm { sig_algo });
        }
        for (field, range) in reserved_ranges(version) {
            report.require_zero(field, range)?;
        }
        let key_info = report.u32_at(0x48);
        if key_info & !KeyInfo::DEFINED_BITS != 0 {
            return Err(FormatError::ReservedBits {
                field: "key_info",
                value: u64::from(key_info),
            });
        }
        let policy = report.u64_at(0x08);
        if policy & !GuestPolicy::DEFINED_BITS != 0 {
            return Err(FormatError::ReservedBits {
                field: "policy",
                value: policy,
            });
        }
        // The signature fields are not covered by the signature, so their padding must be zero:
        // nothing else is there. This does not make a report's bytes unique: ECDSA signatures
        // are malleable ((r, n - s) verifies too) and genuine AMD reports carry high-S values,
        // so neither form can be refused. Nothing may key a cache, a dedup or a replay check on
        // a report's bytes or its signature; replays are stopped by the nonce in report_data.
        report.require_zero("signature.r high bytes", SIG_R + SCALAR_LEN..SIG_S)?;
        report.require_zero(
            "signature.s high bytes",
            SIG_S + SCALAR_LEN..SIG_S + SIG_COMPONENT_LEN,
        )?;
        report.require_zero("unsigned tail 0x330..0x4A0", UNSIGNED_TAIL)?;
        Ok(report)
    }

    fn require_zero(
        &self,
        field: &'static str,
        range: std::ops::Range<usize>,
    ) -> Result<(), FormatError> {
        match self.raw[range.clone()].iter().position(|&b| b != 0) {
            Some(i) => Err(FormatError::NonZeroReserved {
                field,
                offset: range.start + i,
            }),
            None => Ok(()),
        }
    }

    fn u32_at(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.array(offset))
    }

    fn u64_at(&self, offset: usize) -> u64 {
        u64::from_le_bytes(self.array(offset))
    }

    fn array<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.raw[offset..offset + N]);
        out
    }

    /// The whole report exactly as received.
    pub fn raw(&self) -> &[u8; REPORT_LEN] {
        &self.raw
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }

    /// r and s as 48-byte big-endian scalars (the report stores them little-endian, padded).
    pub fn signature_scalars(&self) -> ([u8; SCALAR_LEN], [u8; SCALAR_LEN]) {
        let mut r: [u8; SCALAR_LEN] = self.array(SIG_R);
        let mut s: [u8; SCALAR_LEN] = self.array(SIG_S);
        r.reverse();
        s.reverse();
        (r, s)
    }

    /// VERSION (offset 0x00): the report format version, within the accepted window.
    pub fn version(&self) -> u32 {
        self.u32_at(0x00)
    }
    /// GUEST_SVN (offset 0x04): the guest security version number from the ID block given at
    /// launch (0 without one).
    pub fn guest_svn(&self) -> u32 {
        self.u32_at(0x04)
    }
    /// POLICY (offset 0x08): the guest policy given at launch. Only defined bits are set.
    pub fn policy(&self) -> GuestPolicy {
        GuestPolicy(self.u64_at(0x08))
    }
    /// FAMILY_ID (offset 0x10, 16 bytes): chosen by the guest owner in the ID block (zero
    /// without one).
    pub fn family_id(&self) -> [u8; 16] {
        self.array(0x10)
    }
    /// IMAGE_ID (offset 0x20, 16 bytes): chosen by the guest owner in the ID block (zero
    /// without one).
    pub fn image_id(&self) -> [u8; 16] {
        self.array(0x20)
    }
    /// VMPL (offset 0x30): the VMPL the report was requested from; 0 is the most privileged.
    pub fn vmpl(&self) -> u32 {
        self.u32_at(0x30)
    }
    /// PLATFORM_INFO (offset 0x40): platform state (SMT, TSME, RAPL, ...) at report time.
    pub fn plat_info(&self) -> PlatformInfo {
        PlatformInfo(self.u64_at(0x40))
    }
    /// KEY_INFO (offset 0x48): which key signed the report and whether chip_id is masked. Only
    /// defined bits are set.
    pub fn key_info(&self) -> KeyInfo {
        KeyInfo(self.u32_at(0x48))
    }
    /// REPORT_DATA (offset 0x50, 64 bytes): supplied by the guest when requesting the report,
    /// typically a hash binding a key or nonce to it.
    pub fn report_data(&self) -> [u8; 64] {
        self.array(0x50)
    }
    /// MEASUREMENT (offset 0x90, 48 bytes): the launch digest, SHA-384-based, of the initial
    /// guest memory and VMSAs.
    pub fn measurement(&self) -> [u8; 48] {
        self.array(0x90)
    }
    /// HOST_DATA (offset 0xC0, 32 bytes): supplied by the host at launch and not measured. Here
    /// it carries [`app_host_data`](crate::app_host_data).
    pub fn host_data(&self) -> [u8; 32] {
        self.array(0xC0)
    }
    /// ID_KEY_DIGEST (offset 0xE0, 48 bytes): SHA-384 of the public key that signed the ID
    /// block (zero without one).
    pub fn id_key_digest(&self) -> [u8; 48] {
        self.array(0xE0)
    }
    /// AUTHOR_KEY_DIGEST (offset 0x110, 48 bytes): SHA-384 of the author key that certified the
    /// ID key; zero unless KEY_INFO.AUTHOR_KEY_EN is set.
    pub fn author_key_digest(&self) -> [u8; 48] {
        self.array(0x110)
    }
    /// REPORT_ID (offset 0x140, 32 bytes): an identifier the firmware assigns to the guest at
    /// launch.
    pub fn report_id(&self) -> [u8; 32] {
        self.array(0x140)
    }
    /// REPORT_ID_MA (offset 0x160, 32 bytes): the REPORT_ID of the guest's migration agent.
    pub fn report_id_ma(&self) -> [u8; 32] {
        self.array(0x160)
    }
    /// CPUID family, model and stepping; only version 3 and later carry them.
    pub fn cpuid(&self) -> Option<(u8, u8, u8)> {
        (self.version() >= 3).then(|| (self.raw[0x188], self.raw[0x189], self.raw[0x18A]))
    }
    /// CHIP_ID (offset 0x1A0, 64 bytes): the chip's unique identifier (a Turin VCEK's hwID
    /// covers only its first 8 bytes); all zero when the platform masks it (MaskChipId).
    pub fn chip_id(&self) -> [u8; 64] {
        self.array(0x1A0)
    }
    /// The SNP firmware version running now (CURRENT_BUILD/MINOR/MAJOR, offsets 0x1E8..0x1EB).
    pub fn current_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            build: self.raw[0x1E8],
            minor: self.raw[0x1E9],
            major: self.raw[0x1EA],
        }
    }
    /// The committed SNP firmware version (COMMITTED_BUILD/MINOR/MAJOR, offsets 0x1EC..0x1EF).
    pub fn committed_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            build: self.raw[0x1EC],
            minor: self.raw[0x1ED],
            major: self.raw[0x1EE],
        }
    }
    /// The four TCB_VERSION fields, undecoded: their layout depends on the product.
    pub fn raw_tcbs(&self) -> RawTcbs {
        RawTcbs {
            current: self.array(0x38),
            reported: self.array(0x180),
            committed: self.array(0x1E0),
            launch: self.array(0x1F0),
        }
    }
    /// Mitigation vectors exist from version 5 on.
    /// Mitigation vectors exist from version 5 on: LAUNCH_MIT_VECTOR (offset 0x1F8) and
    /// CURRENT_MIT_VECTOR (offset 0x200), the mitigations in force at launch and now.
    pub fn mit_vectors(&self) -> Option<(u64, u64)> {
        (self.version() >= 5).then(|| (self.u64_at(0x1F8), self.u64_at(0x200)))
    }
}

/// Field offsets, public so that the simulator writes reports with the very layout the parser
/// reads, and tests can tamper with named fields.
pub mod offsets {
    /// VERSION, u32.
    pub const VERSION: usize = 0x00;
    /// GUEST_SVN, u32.
    pub const GUEST_SVN: usize = 0x04;
    /// POLICY (guest policy), u64.
    pub const POLICY: usize = 0x08;
    /// FAMILY_ID, 16 bytes.
    pub const FAMILY_ID: usize = 0x10;
    /// IMAGE_ID, 16 bytes.
    pub const IMAGE_ID: usize = 0x20;
    /// VMPL, u32.
    pub const VMPL: usize = 0x30;
    /// SIGNATURE_ALGO, u32.
    pub const SIG_ALGO: usize = 0x34;
    /// CURRENT_TCB, 8 bytes.
    pub const CURRENT_TCB: usize = 0x38;
    /// PLATFORM_INFO, u64.
    pub const PLAT_INFO: usize = 0x40;
    /// KEY_INFO, u32.
    pub const KEY_INFO: usize = 0x48;
    /// REPORT_DATA, 64 bytes.
    pub const REPORT_DATA: usize = 0x50;
    /// MEASUREMENT, 48 bytes.
    pub const MEASUREMENT: usize = 0x90;
    /// HOST_DATA, 32 bytes.
    pub const HOST_DATA: usize = 0xC0;
    /// ID_KEY_DIGEST, 48 bytes.
    pub const ID_KEY_DIGEST: usize = 0xE0;
    /// AUTHOR_KEY_DIGEST, 48 bytes.
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    /// REPORT_ID, 32 bytes.
    pub const REPORT_ID: usize = 0x140;
    /// REPORT_ID_MA, 32 bytes.
    pub const REPORT_ID_MA: usize = 0x160;
    /// REPORTED_TCB, 8 bytes.
    pub const REPORTED_TCB: usize = 0x180;
    /// CPUID_FAM_ID, 1 byte (version 3 and later).
    pub const CPUID_FAM: usize = 0x188;
    /// CPUID_MOD_ID, 1 byte (version 3 and later).
    pub const CPUID_MOD: usize = 0x189;
    /// CPUID_STEP, 1 byte (version 3 and later).
    pub const CPUID_STEP: usize = 0x18A;
    /// CHIP_ID, 64 bytes.
    pub const CHIP_ID: usize = 0x1A0;
    /// COMMITTED_TCB, 8 bytes.
    pub const COMMITTED_TCB: usize = 0x1E0;
    /// CURRENT_BUILD, then CURRENT_MINOR and CURRENT_MAJOR in the next two bytes.
    pub const CURRENT_BUILD: usize = 0x1E8;
    /// COMMITTED_BUILD, then COMMITTED_MINOR and COMMITTED_MAJOR in the next two bytes.
    pub const COMMITTED_BUILD: usize = 0x1EC;
    /// LAUNCH_TCB, 8 bytes.
    pub const LAUNCH_TCB: usize = 0x1F0;
    /// LAUNCH_MIT_VECTOR, u64 (version 5 and later).
    pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
    /// CURRENT_MIT_VECTOR, u64 (version 5 and later).
    pub const CURRENT_MIT_VECTOR: usize = 0x200;
    /// Signature R, little-endian, zero-padded to
    /// [`SIGNATURE_COMPONENT_LEN`] bytes; the start of the unsigned part.
    pub const SIGNATURE_R: usize = super::SIG_R;
    /// Signature S, little-endian, zero-padded to [`SIGNATURE_COMPONENT_LEN`] bytes.
    pub const SIGNATURE_S: usize = super::SIG_S;
    /// Length of each of R and S in the report (72 bytes; a P-384 scalar uses the low 48).
    pub const SIGNATURE_COMPONENT_LEN: usize = super::SIG_COMPONENT_LEN;
}
