//! Every way a measurement can be refused. Each variant names the field and the bound it broke, so
//! that an operator can tell a corrupt download from a firmware build that cannot launch SNP guests.

/// Why no launch digest was computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The OVMF image is too short to hold even the footer table's own entry and the 32-byte
    /// reset-vector area after it.
    #[error("OVMF image is truncated: {len} bytes, the footer table alone needs {min}")]
    OvmfTruncated {
        /// Length of the image, in bytes.
        len: usize,
        /// Shortest image that could hold the footer entry, in bytes.
        min: usize,
    },

    /// The OVMF image is not a whole number of 4096-byte pages, or is larger than 4 GiB: it is
    /// mapped page by page to end at 4 GiB, so no other size has defined guest addresses.
    #[error(
        "OVMF image is {len} bytes: it must be a whole number of 4096-byte pages, at most 4 GiB \
         (it is mapped page by page just below 4 GiB)"
    )]
    OvmfSize {
        /// Length of the image, in bytes.
        len: usize,
    },

    /// The entry that ends 32 bytes before the end of the image is not the OVMF footer table:
    /// not an OVMF image, or a build without QEMU's GUIDed table.
    #[error(
        "OVMF footer table GUID is {found}, expected {expected}: not an OVMF image, \
         or a build without the QEMU/SEV footer table"
    )]
    FooterGuid {
        /// The GUID found there, in canonical `xxxxxxxx-xxxx-…` form.
        found: String,
        /// The footer table GUID (`96b582de-1fb2-45f7-baea-a366c55a082d`).
        expected: String,
    },

    /// The footer entry's length (that of the whole table, itself included) is below its own
    /// 18-byte header or reaches before the start of the image.
    #[error(
        "OVMF footer table length {size} is out of bounds: it must be between 18 and {max} (the \
         footer entry plus everything before it)"
    )]
    FooterSize {
        /// The length field, in bytes.
        size: u16,
        /// The largest length the image allows, in bytes.
        max: usize,
    },

    /// A footer table entry's length is below its own 18-byte header or runs past the start of
    /// the table.
    #[error(
        "OVMF footer table entry {guid} has length {size}, out of bounds: it must be between 18 \
         and the {available} bytes left in the table"
    )]
    TableEntryLength {
        /// The entry's GUID, in canonical `xxxxxxxx-xxxx-…` form.
        guid: String,
        /// The entry's length field (data, length and GUID), in bytes.
        size: u16,
        /// Bytes of the table left for this entry and those below it.
        available: usize,
    },

    /// The entries do not add up to the footer's table length: fewer bytes than an entry header
    /// are left over at the start of the table.
    #[error("OVMF footer table ends with {left} bytes that are not a whole entry")]
    TableTrailing {
        /// Bytes left over.
        left: usize,
    },

    /// Two footer table entries have the same GUID. QEMU and sev-snp-measure would read
    /// different ones, so the digest would depend on the tool.
    #[error(
        "OVMF footer table has two {guid} entries: QEMU uses the one nearest the footer, other \
         tools the other, so the measurement would be ambiguous"
    )]
    DuplicateTableEntry {
        /// The repeated GUID, in canonical `xxxxxxxx-xxxx-…` form.
        guid: String,
    },

    /// A footer table entry the measurement needs is absent: the SEV-ES reset block (always),
    /// or the SEV hash table (when a kernel is measured).
    #[error("OVMF footer table has no {name} entry ({guid})")]
    TableEntryMissing {
        /// What the entry is, e.g. `SEV-ES reset block`.
        name: &'static str,
        /// Its GUID, in canonical `xxxxxxxx-xxxx-…` form.
        guid: String,
    },

    /// A footer table entry's data is too short for the fields read from it (a `u32` address,
    /// or a `u32` base and size).
    #[error("OVMF footer table entry {name} holds {len} bytes, needs at least {need}")]
    TableEntryTooShort {
        /// What the entry is, e.g. `SEV metadata`.
        name: &'static str,
        /// Bytes of data in the entry (without its 18-byte header).
        len: usize,
        /// Bytes needed.
        need: usize,
    },

    /// The footer table has no SEV metadata entry, so the firmware lists no pages to
    /// pre-validate and QEMU refuses to launch it as an SNP guest.
    #[error(
        "OVMF has no SEV metadata (footer table entry {guid}): QEMU refuses to launch an SNP guest \
         with it (Debian's OVMF_CODE_4M.fd is such a build; use OVMF_CODE.fd or an AmdSev build)"
    )]
    NoSevMetadata {
        /// The SEV metadata GUID looked for, in canonical `xxxxxxxx-xxxx-…` form.
        guid: String,
    },

    /// The SEV metadata offset, counted back from the end of the image, is smaller than the
    /// 16-byte metadata header or larger than the image.
    #[error(
        "SEV metadata offset {offset:#x} (from the end of the image) is out of range for a \
         {len}-byte image"
    )]
    MetadataOffset {
        /// The offset from the end of the image, in bytes, as stored.
        offset: u32,
        /// Length of the image, in bytes.
        len: usize,
    },

    /// The SEV metadata does not start with `ASEV`: its offset points at something else.
    #[error("SEV metadata signature is {found:02x?}, expected \"ASEV\"")]
    MetadataSignature {
        /// The four bytes found instead.
        found: [u8; 4],
    },

    /// The SEV metadata has a version other than 1, the only layout known.
    #[error("SEV metadata version is {version}, only version 1 is known")]
    MetadataVersion {
        /// The version found.
        version: u32,
    },

    /// The SEV metadata's length is smaller than its header plus its sections (16 + 12 ×
    /// `num_items` bytes) or runs past the end of the image.
    #[error(
        "SEV metadata length {size} cannot hold its {num_items} sections of 12 bytes after the \
         16-byte header, within the {available} bytes to the end of the image"
    )]
    MetadataLength {
        /// The length field (header and sections), in bytes.
        size: u32,
        /// The number of sections the header declares.
        num_items: u32,
        /// Bytes from the start of the metadata to the end of the image.
        available: usize,
    },

    /// An SEV metadata section has a type this crate does not know how to measure.
    #[error(
        "SEV metadata section {index} has unsupported type {section_type:#x} (known: 1 SNP_SEC_MEM, \
         2 SNP_SECRETS, 3 CPUID, 4 SVSM_CAA, 0x10 SNP_KERNEL_HASHES)"
    )]
    UnsupportedSectionType {
        /// Position of the section in the metadata, from 0.
        index: usize,
        /// The type found.
        section_type: u32,
    },

    /// An SEV metadata section does not start on a page boundary. KVM launch-updates whole
    /// pages by frame number while sev-snp-measure hashes the unaligned address, so no tool's
    /// digest would match the report's.
    #[error(
        "SEV metadata section {index} ({kind}) starts at {gpa:#x}, not on a page boundary: \
         QEMU would launch-update the enclosing page instead"
    )]
    SectionMisaligned {
        /// Position of the section in the metadata, from 0.
        index: usize,
        /// Its type name, e.g. `SNP_SEC_MEM`.
        kind: &'static str,
        /// Its guest physical start address.
        gpa: u32,
    },

    /// An SEV metadata section has a size its type cannot have: SNP_SECRETS and CPUID must be
    /// exactly one page (the only size on which QEMU and sev-snp-measure agree), SNP_KERNEL_HASHES
    /// one page when a kernel is measured, the others a whole number of pages.
    #[error("SEV metadata section {index} ({kind}) has size {size:#x}, expected {expected}")]
    SectionSize {
        /// Position of the section in the metadata, from 0.
        index: usize,
        /// Its type name, e.g. `SNP_SECRETS`.
        kind: &'static str,
        /// Its size, in bytes.
        size: u32,
        /// The size its type needs, in words.
        expected: &'static str,
    },

    /// A kernel was given, but the firmware has no SNP_KERNEL_HASHES section, so nothing would
    /// measure the kernel's hashes or have OVMF check them.
    #[error(
        "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES section, so the \
         firmware cannot verify it (use an AmdSev OVMF build)"
    )]
    MissingKernelHashesSection,

    /// The area the footer table's SEV hash table entry names for the kernel hash table cannot
    /// hold it as measured: QEMU refuses it (zero base, or smaller than the 176-byte padded
    /// table), or the table would not lie within the SNP_KERNEL_HASHES section's page.
    #[error(
        "the OVMF kernel hash table area (base {base:#x}, size {size:#x}) is unusable: {reason}"
    )]
    HashTableArea {
        /// Guest physical address of the area.
        base: u32,
        /// Its size, in bytes.
        size: u32,
        /// Which of those conditions failed.
        reason: &'static str,
    },

    /// The vCPU model name is not one sev-snp-measure knows (matching ignores case).
    #[error("unknown vCPU type {name:?}; supported: {supported}")]
    UnknownVcpuType {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        supported: String,
    },

    /// [`Vmm::Qemu`](crate::Vmm::Qemu) needs a vCPU model: QEMU puts its CPUID signature in
    /// every vCPU's initial RDX, which is measured.
    #[error("a vCPU type is required with the qemu VMM (its CPUID signature is in every VMSA)")]
    MissingVcpuType,

    /// The VMM name is not `qemu`, `ec2` or `gce` (matching ignores case).
    #[error("unknown VMM type {name:?}; supported: qemu, ec2, gce")]
    UnknownVmm {
        /// The name given.
        name: String,
    },

    /// Zero vCPUs were asked for; a guest needs at least its boot vCPU.
    #[error("the vCPU count must be at least 1")]
    NoVcpus,

    /// More than one vCPU was asked for, but the firmware's SEV-ES reset block gives AP reset
    /// address 0, so the application processors have nowhere to start.
    #[error(
        "the OVMF SEV-ES reset block gives AP reset address 0, so only the boot vCPU can start, \
         but {vcpus} vCPUs were asked for"
    )]
    NoApResetAddress {
        /// The vCPU count asked for.
        vcpus: u32,
    },

    /// The guest features lack SNPActive (bit 0), which every SNP guest's VMSA has: the digest
    /// could never appear in a report.
    #[error(
        "guest features {features:#x} lack SNPActive (bit 0): no SNP guest runs with them, so \
         this measurement could never appear in a report"
    )]
    SnpNotActive {
        /// The SEV_FEATURES value given.
        features: u64,
    },
}
