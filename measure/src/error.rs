//! Every way a measurement can be refused. Each variant names the field and the bound it broke, so
//! that an operator can tell a corrupt download from a firmware build that cannot launch SNP guests.

/// Why no launch digest was computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    #[error("OVMF image is truncated: {len} bytes, the footer table alone needs {min}")]
    OvmfTruncated { len: usize, min: usize },

    #[error(
        "OVMF image is {len} bytes: it must be a whole number of 4096-byte pages, at most 4 GiB \
         (it is mapped page by page just below 4 GiB)"
    )]
    OvmfSize { len: usize },

    #[error(
        "OVMF footer table GUID is {found}, expected {expected}: not an OVMF image, \
         or a build without the QEMU/SEV footer table"
    )]
    FooterGuid { found: String, expected: String },

    #[error(
        "OVMF footer table length {size} is out of bounds: it must be between 18 and {max} (the \
         footer entry plus everything before it)"
    )]
    FooterSize { size: u16, max: usize },

    #[error(
        "OVMF footer table entry {guid} has length {size}, out of bounds: it must be between 18 \
         and the {available} bytes left in the table"
    )]
    TableEntryLength {
        guid: String,
        size: u16,
        available: usize,
    },

    #[error("OVMF footer table ends with {left} bytes that are not a whole entry")]
    TableTrailing { left: usize },

    #[error(
        "OVMF footer table has two {guid} entries: QEMU uses the one nearest the footer, other \
         tools the other, so the measurement would be ambiguous"
    )]
    DuplicateTableEntry { guid: String },

    #[error("OVMF footer table has no {name} entry ({guid})")]
    TableEntryMissing { name: &'static str, guid: String },

    #[error("OVMF footer table entry {name} holds {len} bytes, needs at least {need}")]
    TableEntryTooShort {
        name: &'static str,
        len: usize,
        need: usize,
    },

    #[error(
        "OVMF has no SEV metadata (footer table entry {guid}): QEMU refuses to launch an SNP guest \
         with it (Debian's OVMF_CODE_4M.fd is such a build; use OVMF_CODE.fd or an AmdSev build)"
    )]
    NoSevMetadata { guid: String },

    #[error(
        "SEV metadata offset {offset:#x} (from the end of the image) is out of range for a \
         {len}-byte image"
    )]
    MetadataOffset { offset: u32, len: usize },

    #[error("SEV metadata signature is {found:02x?}, expected \"ASEV\"")]
    MetadataSignature { found: [u8; 4] },

    #[error("SEV metadata version is {version}, only version 1 is known")]
    MetadataVersion { version: u32 },

    #[error(
        "SEV metadata length {size} cannot hold its {num_items} sections of 12 bytes after the \
         16-byte header, within the {available} bytes to the end of the image"
    )]
    MetadataLength {
        size: u32,
        num_items: u32,
        available: usize,
    },

    #[error(
        "SEV metadata section {index} has unsupported type {section_type:#x} (known: 1 SNP_SEC_MEM, \
         2 SNP_SECRETS, 3 CPUID, 4 SVSM_CAA, 0x10 SNP_KERNEL_HASHES)"
    )]
    UnsupportedSectionType { index: usize, section_type: u32 },

    #[error(
        "SEV metadata section {index} ({kind}) starts at {gpa:#x}, not on a page boundary: \
         QEMU would launch-update the enclosing page instead"
    )]
    SectionMisaligned {
        index: usize,
        kind: &'static str,
        gpa: u32,
    },

    #[error("SEV metadata section {index} ({kind}) has size {size:#x}, expected {expected}")]
    SectionSize {
        index: usize,
        kind: &'static str,
        size: u32,
        expected: &'static str,
    },

    #[error(
        "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES section, so the \
         firmware cannot verify it (use an AmdSev OVMF build)"
    )]
    MissingKernelHashesSection,

    #[error(
        "the OVMF kernel hash table area (base {base:#x}, size {size:#x}) is unusable: {reason}"
    )]
    HashTableArea {
        base: u32,
        size: u32,
        reason: &'static str,
    },

    #[error("unknown vCPU type {name:?}; supported: {supported}")]
    UnknownVcpuType { name: String, supported: String },

    #[error("a vCPU type is required with the qemu VMM (its CPUID signature is in every VMSA)")]
    MissingVcpuType,

    #[error("unknown VMM type {name:?}; supported: qemu, ec2, gce")]
    UnknownVmm { name: String },

    #[error("the vCPU count must be at least 1")]
    NoVcpus,

    #[error(
        "the OVMF SEV-ES reset block gives AP reset address 0, so only the boot vCPU can start, \
         but {vcpus} vCPUs were asked for"
    )]
    NoApResetAddress { vcpus: u32 },

    #[error(
        "guest features {features:#x} lack SNPActive (bit 0): no SNP guest runs with them, so \
         this measurement could never appear in a report"
    )]
    SnpNotActive { features: u64 },
}
