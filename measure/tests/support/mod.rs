//! Synthetic OVMF images for the tests: a flat firmware with a GUIDed footer table and SEV metadata,
//! laid out as edk2's AmdSev build does (OvmfPkg/ResetVector), with deterministic filler so that
//! every page hashes differently. Written independently of the crate's parser on purpose.

#![allow(dead_code)]

use std::path::Path;

pub const FOOTER: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
pub const SEV_HASH_TABLE_RV: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
pub const SEV_ES_RESET_BLOCK: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
pub const SEV_METADATA: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
/// Entries real images carry that measurement ignores (SEV secret block, TDX metadata).
pub const SEV_SECRET_BLOCK: &str = "4c2eb361-7d9b-4cc3-8081-127c90d3d294";
pub const TDX_METADATA: &str = "e47a6535-984a-4798-865e-4685a7bf8ec2";

pub const SEC_MEM: u32 = 1;
pub const SECRETS: u32 = 2;
pub const CPUID: u32 = 3;
pub const SVSM_CAA: u32 = 4;
pub const KERNEL_HASHES: u32 = 0x10;

/// On-disk byte order of an EFI GUID: first three fields little-endian.
pub fn guid_le(text: &str) -> [u8; 16] {
    let be = hex::decode(text.replace('-', "")).expect("GUID literal");
    let mut out = [0u8; 16];
    out[0..4].copy_from_slice(&[be[3], be[2], be[1], be[0]]);
    out[4..6].copy_from_slice(&[be[5], be[4]]);
    out[6..8].copy_from_slice(&[be[7], be[6]]);
    out[8..].copy_from_slice(&be[8..]);
    out
}

/// Deterministic filler (xorshift64*).
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct Image {
    pub size: usize,
    pub reset_eip: Option<u32>,
    /// (base, size) of the SEV hash table area.
    pub hash_table: Option<(u32, u32)>,
    /// (gpa, size, type); None leaves out the SEV metadata entry.
    pub sections: Option<Vec<(u32, u32, u32)>>,
    /// Further footer table entries, (guid, data).
    pub extra: Vec<(&'static str, Vec<u8>)>,
}

/// Where things landed in a built image, for tests that corrupt them.
#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    /// Start of the footer entry's `length || guid` header.
    pub footer_at: usize,
    /// Start of each table entry's `length || guid` header, nearest the footer first.
    pub entry_headers: Vec<(&'static str, usize)>,
    /// Start of the SEV metadata header, if any.
    pub metadata_at: Option<usize>,
}

impl Image {
    /// Like an AmdSevX64 build: SEC_MEM, secrets, CPUID, SVSM CAA, more SEC_MEM, then the
    /// SNP_KERNEL_HASHES page shared with the launch secret, the hash table in its last 1 KiB.
    pub fn amd_sev() -> Image {
        Image {
            size: 512 * 1024,
            reset_eip: Some(0x0080_b004),
            hash_table: Some((0x0081_0c00, 0x400)),
            sections: Some(vec![
                (0x0080_0000, 0x9000, SEC_MEM),
                (0x0080_a000, 0x3000, SEC_MEM),
                (0x0080_d000, 0x1000, SECRETS),
                (0x0080_e000, 0x1000, CPUID),
                (0x0080_f000, 0x1000, SVSM_CAA),
                (0x0081_1000, 0xf000, SEC_MEM),
                (0x0081_0000, 0x1000, KERNEL_HASHES),
            ]),
            extra: vec![
                (SEV_SECRET_BLOCK, vec![0; 8]),
                (TDX_METADATA, vec![0x40, 8, 0, 0]),
            ],
        }
    }

    pub fn build(&self) -> Built {
        let len = self.size;
        let mut bytes = filler(len, 0x5eed ^ len as u64);
        let footer_at = len - 32 - 18;

        let mut entries: Vec<(&'static str, Vec<u8>)> = Vec::new();
        if let Some(eip) = self.reset_eip {
            entries.push((SEV_ES_RESET_BLOCK, eip.to_le_bytes().to_vec()));
        }
        if let Some((base, size)) = self.hash_table {
            let mut data = base.to_le_bytes().to_vec();
            data.extend_from_slice(&size.to_le_bytes());
            entries.push((SEV_HASH_TABLE_RV, data));
        }
        let metadata_entry = entries.len();
        if self.sections.is_some() {
            entries.push((SEV_METADATA, vec![0; 4])); // offset patched below
        }
        entries.extend(self.extra.iter().cloned());

        let table_len: usize = entries.iter().map(|(_, d)| d.len() + 18).sum();
        let table_start = footer_at - table_len;

        let mut metadata_at = None;
        if let Some(sections) = &self.sections {
            let mut meta = b"ASEV".to_vec();
            meta.extend_from_slice(&(16 + 12 * sections.len() as u32).to_le_bytes());
            meta.extend_from_slice(&1u32.to_le_bytes());
            meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
            for (gpa, size, kind) in sections {
                for v in [gpa, size, kind] {
                    meta.extend_from_slice(&v.to_le_bytes());
                }
            }
            let at = (table_start - meta.len() - 64) & !15;
            bytes[at..at + meta.len()].copy_from_slice(&meta);
            entries[metadata_entry].1 = ((len - at) as u32).to_le_bytes().to_vec();
            metadata_at = Some(at);
        }

        let mut end = footer_at;
        let mut entry_headers = Vec::new();
        for (guid, data) in &entries {
            let total = data.len() + 18;
            let start = end - total;
            bytes[start..start + data.len()].copy_from_slice(data);
            bytes[end - 18..end - 16].copy_from_slice(&(total as u16).to_le_bytes());
            bytes[end - 16..end].copy_from_slice(&guid_le(guid));
            entry_headers.push((*guid, end - 18));
            end = start;
        }
        bytes[footer_at..footer_at + 2].copy_from_slice(&((table_len + 18) as u16).to_le_bytes());
        bytes[footer_at + 2..footer_at + 18].copy_from_slice(&guid_le(FOOTER));

        Built {
            bytes,
            footer_at,
            entry_headers,
            metadata_at,
        }
    }
}

impl Built {
    pub fn entry_header(&self, guid: &str) -> usize {
        self.entry_headers
            .iter()
            .find(|(g, _)| *g == guid)
            .map(|(_, at)| *at)
            .expect("entry present")
    }

    pub fn write(&self, dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.bytes).expect("write image");
        path
    }
}
