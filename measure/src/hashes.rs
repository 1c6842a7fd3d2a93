//! The kernel/initrd/cmdline hash table QEMU writes into the firmware's hash table area when it
//! boots a kernel directly, and OVMF checks the loaded blobs against before running them. Its
//! bytes must be exactly QEMU's (`PaddedSevHashTable` in target/i386/sev.c).

use crate::guid::Guid;
use sha2::{Digest, Sha256};

const TABLE_GUID: Guid = Guid::parse("9438d606-4f22-4cc9-b479-a793d411fd21");
const KERNEL_GUID: Guid = Guid::parse("4de79437-abd2-427f-b835-d5b172d2045b");
const INITRD_GUID: Guid = Guid::parse("44baf731-3a2f-4bd7-9af1-41e29169781d");
const CMDLINE_GUID: Guid = Guid::parse("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");

/// guid + u16 length + SHA-256.
const ENTRY_LEN: usize = 16 + 2 + 32;
/// guid + u16 length + three entries.
const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// QEMU pads the table to 16 bytes.
pub(crate) const PADDED_TABLE_LEN: usize = TABLE_LEN.next_multiple_of(16);

/// SHA-256 digests of what QEMU passes to a directly booted kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHashes {
    kernel: [u8; 32],
    initrd: [u8; 32],
    cmdline: [u8; 32],
}

impl KernelHashes {
    /// Hashes the kernel image, the initrd (empty when absent) and the command line as QEMU passes
    /// it: the exact bytes of `-append` (not trimmed) plus a NUL, or a lone NUL when absent.
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> KernelHashes {
        let mut c = Sha256::new();
        c.update(cmdline.unwrap_or("").as_bytes());
        c.update([0]);
        KernelHashes {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or(&[])).into(),
            cmdline: c.finalize().into(),
        }
    }

    /// SHA-256 of the kernel image (`-kernel`).
    pub fn kernel(&self) -> &[u8; 32] {
        &self.kernel
    }

    /// SHA-256 of the initrd (`-initrd`), or of the empty string when there is none.
    pub fn initrd(&self) -> &[u8; 32] {
        &self.initrd
    }

    /// SHA-256 of the command line (`-append`) with its terminating NUL; of a lone NUL when
    /// there is none.
    pub fn cmdline(&self) -> &[u8; 32] {
        &self.cmdline
    }

    fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut out = [0u8; PADDED_TABLE_LEN];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.put(&TABLE_GUID.0);
        w.put(&(TABLE_LEN as u16).to_le_bytes());
        for (guid, hash) in [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ] {
            w.put(&guid.0);
            w.put(&(ENTRY_LEN as u16).to_le_bytes());
            w.put(hash);
        }
        out
    }

    /// The page QEMU launch-updates: zeros, with the table at `offset`. None if it does not fit.
    pub(crate) fn page(&self, offset: usize) -> Option<Vec<u8>> {
        let mut page = vec![0u8; crate::ovmf::PAGE_SIZE];
        page.get_mut(offset..offset.checked_add(PADDED_TABLE_LEN)?)?
            .copy_from_slice(&self.table());
        Some(page)
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    /// Only used on fixed layouts sized by the constants above.
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}
