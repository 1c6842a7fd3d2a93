//! Reads what the launch measurement needs from an OVMF image: the GUIDed footer table QEMU parses
//! at load time, and the SEV metadata listing the pages the VMM must pre-validate. Every length and
//! offset in the file is checked before use; a malformed image is an error, never a panic.
//!
//! Layout (edk2 OvmfPkg/ResetVector, QEMU docs/specs/sev-guest-firmware.rst): the footer entry ends
//! 32 bytes before the end of the image; entries are stacked downwards from it, each being
//! `data || length: u16 || guid`, where `length` counts all three.

use crate::guid::Guid;
use crate::MeasureError;
use std::collections::HashMap;

pub(crate) const PAGE_SIZE: usize = 4096;
const FOUR_GIB: u64 = 1 << 32;
/// The footer table ends this far from the end of the image (the reset vector lives there).
const FOOTER_TRAILER: usize = 32;
const ENTRY_HEADER: usize = 18;
const METADATA_HEADER: usize = 16;
const METADATA_ITEM: usize = 12;

const FOOTER_GUID: Guid = Guid::parse("96b582de-1fb2-45f7-baea-a366c55a082d");
pub(crate) const SEV_HASH_TABLE_RV_GUID: Guid = Guid::parse("7255371f-3a3b-4b04-927b-1da6efa8d454");
const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::parse("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
const SEV_METADATA_GUID: Guid = Guid::parse("dc886566-984a-4798-a75e-5585a7bf67cc");

/// The kind of an SEV metadata section, which decides its page type in the launch digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SectionKind {
    SecMem,
    Secrets,
    Cpuid,
    SvsmCaa,
    KernelHashes,
}

impl SectionKind {
    fn from_u32(value: u32) -> Option<SectionKind> {
        Some(match value {
            1 => SectionKind::SecMem,
            2 => SectionKind::Secrets,
            3 => SectionKind::Cpuid,
            4 => SectionKind::SvsmCaa,
            0x10 => SectionKind::KernelHashes,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SectionKind::SecMem => "SNP_SEC_MEM",
            SectionKind::Secrets => "SNP_SECRETS",
            SectionKind::Cpuid => "CPUID",
            SectionKind::SvsmCaa => "SVSM_CAA",
            SectionKind::KernelHashes => "SNP_KERNEL_HASHES",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) index: usize,
    pub(crate) gpa: u32,
    pub(crate) size: u32,
    pub(crate) kind: SectionKind,
}

/// Where QEMU writes the kernel/initrd/cmdline hash table (the SEV_HASH_TABLE_RV_GUID entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashTableArea {
    pub(crate) base: u32,
    pub(crate) size: u32,
}

/// A parsed, validated OVMF image.
#[derive(Debug)]
pub(crate) struct Ovmf<'a> {
    data: &'a [u8],
    /// AP reset address from the SEV-ES reset block; the APs' VMSAs start there.
    pub(crate) ap_reset_eip: u32,
    /// Present when the footer table carries an SEV hash table entry, valid or not: it is only
    /// checked when a kernel is measured, as QEMU does.
    pub(crate) hash_table: Option<Result<HashTableArea, MeasureError>>,
    pub(crate) sections: Vec<Section>,
}

impl<'a> Ovmf<'a> {
    pub(crate) fn parse(data: &'a [u8]) -> Result<Ovmf<'a>, MeasureError> {
        let min = FOOTER_TRAILER + ENTRY_HEADER;
        if data.len() < min {
            return Err(MeasureError::OvmfTruncated {
                len: data.len(),
                min,
            });
        }
        // Measured as whole pages mapped to end at 4 GiB; anything else has no defined GPA.
        if !data.len().is_multiple_of(PAGE_SIZE) || data.len() as u64 > FOUR_GIB {
            return Err(MeasureError::OvmfSize { len: data.len() });
        }
        let table = parse_footer_table(data)?;

        let reset = table_entry(&table, SEV_ES_RESET_BLOCK_GUID, "SEV-ES reset block")?;
        let ap_reset_eip = le_u32_at(reset, 0).ok_or(MeasureError::TableEntryTooShort {
            name: "SEV-ES reset block",
            len: reset.len(),
            need: 4,
        })?;

        let hash_table = table.get(&SEV_HASH_TABLE_RV_GUID).map(|entry| {
            // QEMU reads a {base, size} pair of u32.
            match (le_u32_at(entry, 0), le_u32_at(entry, 4)) {
                (Some(base), Some(size)) => Ok(HashTableArea { base, size }),
                _ => Err(MeasureError::TableEntryTooShort {
                    name: "SEV hash table",
                    len: entry.len(),
                    need: 8,
                }),
            }
        });

        let metadata =
            table
                .get(&SEV_METADATA_GUID)
                .ok_or_else(|| MeasureError::NoSevMetadata {
                    guid: SEV_METADATA_GUID.to_string(),
                })?;
        let offset = le_u32_at(metadata, 0).ok_or(MeasureError::TableEntryTooShort {
            name: "SEV metadata",
            len: metadata.len(),
            need: 4,
        })?;
        let sections = parse_sev_metadata(data, offset)?;

        Ok(Ovmf {
            data,
            ap_reset_eip,
            hash_table,
            sections,
        })
    }

    pub(crate) fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The firmware is mapped so that it ends at 4 GiB.
    pub(crate) fn gpa(&self) -> u64 {
        FOUR_GIB - self.data.len() as u64
    }
}

fn table_entry<'t>(
    table: &HashMap<Guid, &'t [u8]>,
    guid: Guid,
    name: &'static str,
) -> Result<&'t [u8], MeasureError> {
    table
        .get(&guid)
        .copied()
        .ok_or_else(|| MeasureError::TableEntryMissing {
            name,
            guid: guid.to_string(),
        })
}

fn parse_footer_table(data: &[u8]) -> Result<HashMap<Guid, &[u8]>, MeasureError> {
    // The caller checked data.len() >= FOOTER_TRAILER + ENTRY_HEADER.
    let footer_start = data.len() - FOOTER_TRAILER - ENTRY_HEADER;
    let (size, guid) =
        entry_header(data, footer_start + ENTRY_HEADER).ok_or(MeasureError::OvmfTruncated {
            len: data.len(),
            min: FOOTER_TRAILER + ENTRY_HEADER,
        })?;
    if guid != FOOTER_GUID {
        return Err(MeasureError::FooterGuid {
            found: guid.to_string(),
            expected: FOOTER_GUID.to_string(),
        });
    }
    let table_len = usize::from(size)
        .checked_sub(ENTRY_HEADER)
        .filter(|len| *len <= footer_start)
        .ok_or(MeasureError::FooterSize {
            size,
            max: footer_start + ENTRY_HEADER,
        })?;

    let mut entries = HashMap::new();
    // `end` walks down from the footer; the table occupies data[footer_start - table_len..footer_start].
    let table_start = footer_start - table_len;
    let mut end = footer_start;
    while end - table_start >= ENTRY_HEADER {
        let available = end - table_start;
        let (len, guid) =
            entry_header(data, end).ok_or(MeasureError::TableTrailing { left: available })?;
        let len_usize = usize::from(len);
        if len_usize < ENTRY_HEADER || len_usize > available {
            return Err(MeasureError::TableEntryLength {
                guid: guid.to_string(),
                size: len,
                available,
            });
        }
        let entry = data
            .get(end - len_usize..end - ENTRY_HEADER)
            .ok_or_else(|| MeasureError::TableEntryLength {
                guid: guid.to_string(),
                size: len,
                available,
            })?;
        if entries.insert(guid, entry).is_some() {
            return Err(MeasureError::DuplicateTableEntry {
                guid: guid.to_string(),
            });
        }
        end -= len_usize;
    }
    if end != table_start {
        return Err(MeasureError::TableTrailing {
            left: end - table_start,
        });
    }
    Ok(entries)
}

/// Reads the `length: u16 || guid` header of the entry that ends at `end`.
fn entry_header(data: &[u8], end: usize) -> Option<(u16, Guid)> {
    let mut header = Reader(data.get(end.checked_sub(ENTRY_HEADER)?..end)?);
    let size = header.array::<2>().map(u16::from_le_bytes)?;
    let guid = header.array::<16>()?;
    Some((size, Guid::from_bytes(guid)))
}

fn parse_sev_metadata(data: &[u8], offset_from_end: u32) -> Result<Vec<Section>, MeasureError> {
    let offset_err = MeasureError::MetadataOffset {
        offset: offset_from_end,
        len: data.len(),
    };
    let offset = usize::try_from(offset_from_end).map_err(|_| offset_err.clone())?;
    if offset < METADATA_HEADER || offset > data.len() {
        return Err(offset_err);
    }
    // The header and its items must lie in the `available` bytes up to the end of the image.
    let start = data.len() - offset;
    let available = offset;
    let mut header = Reader(data.get(start..).ok_or(offset_err.clone())?);
    let (Some(signature), Some(size), Some(version), Some(num_items)) = (
        header.array::<4>(),
        header.u32(),
        header.u32(),
        header.u32(),
    ) else {
        return Err(offset_err);
    };
    if &signature != b"ASEV" {
        return Err(MeasureError::MetadataSignature { found: signature });
    }
    if version != 1 {
        return Err(MeasureError::MetadataVersion { version });
    }
    let length_err = MeasureError::MetadataLength {
        size,
        num_items,
        available,
    };
    // Widen before multiplying: num_items comes from the file and may be up to 2^32 - 1.
    let needed = u64::from(num_items) * METADATA_ITEM as u64 + METADATA_HEADER as u64;
    if u64::from(size) < needed || u64::from(size) > available as u64 {
        return Err(length_err);
    }
    let mut items = Reader(
        data.get(start + METADATA_HEADER..start + size as usize)
            .ok_or(length_err.clone())?,
    );
    (0..num_items as usize)
        .map(|index| match (items.u32(), items.u32(), items.u32()) {
            (Some(gpa), Some(size), Some(section_type)) => section(index, gpa, size, section_type),
            _ => Err(length_err.clone()),
        })
        .collect()
}

fn section(index: usize, gpa: u32, size: u32, section_type: u32) -> Result<Section, MeasureError> {
    let kind = SectionKind::from_u32(section_type).ok_or(MeasureError::UnsupportedSectionType {
        index,
        section_type,
    })?;
    // KVM takes a page frame number: QEMU would silently round an unaligned base down while
    // sev-snp-measure hashes the unaligned GPA, so no tool would agree with the hardware.
    if !(gpa as usize).is_multiple_of(PAGE_SIZE) {
        return Err(MeasureError::SectionMisaligned {
            index,
            kind: kind.name(),
            gpa,
        });
    }
    let size_ok = match kind {
        SectionKind::SecMem | SectionKind::SvsmCaa | SectionKind::KernelHashes => {
            (size as usize).is_multiple_of(PAGE_SIZE)
        }
        // QEMU launch-updates `size` bytes of these, sev-snp-measure always exactly one page:
        // they only agree on a single page.
        SectionKind::Secrets | SectionKind::Cpuid => size as usize == PAGE_SIZE,
    };
    if !size_ok {
        return Err(MeasureError::SectionSize {
            index,
            kind: kind.name(),
            size,
            expected: match kind {
                SectionKind::Secrets | SectionKind::Cpuid => "exactly one page (0x1000)",
                _ => "a multiple of the page size (0x1000)",
            },
        });
    }
    Ok(Section {
        index,
        gpa,
        size,
        kind,
    })
}

fn le_u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Reader(bytes.get(at..)?).u32()
}

/// A cursor over file bytes whose reads fail instead of panicking when the bytes run out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }
}
