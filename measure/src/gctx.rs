//! The SNP guest context launch digest: every launch-updated page extends it with a PAGE_INFO
//! record (SEV-SNP firmware ABI, section 8.17.2, table "PAGE_INFO structure").

use sha2::{Digest, Sha384};

pub(crate) const DIGEST_LEN: usize = 48;
const PAGE_SIZE: u64 = 4096;
const PAGE_INFO_LEN: u16 = 0x70;

/// PAGE_TYPE values of SNP_LAUNCH_UPDATE.
#[derive(Clone, Copy)]
#[repr(u8)]
pub(crate) enum PageType {
    Normal = 1,
    Vmsa = 2,
    Zero = 3,
    Unmeasured = 4,
    Secrets = 5,
    Cpuid = 6,
}

/// The VMSA page is recorded at GPA (u64)-1, page-aligned with bits above 51 cleared.
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

pub(crate) struct Gctx {
    ld: [u8; DIGEST_LEN],
}

impl Gctx {
    pub(crate) fn new() -> Gctx {
        Gctx {
            ld: [0; DIGEST_LEN],
        }
    }

    fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; DIGEST_LEN]) {
        let mut h = Sha384::new();
        h.update(self.ld);
        h.update(contents);
        h.update(PAGE_INFO_LEN.to_le_bytes());
        // page_type, imi_page = 0, vmpl3/2/1 permissions = 0, reserved.
        h.update([page_type as u8, 0, 0, 0, 0, 0]);
        h.update(gpa.to_le_bytes());
        self.ld = h.finalize().into();
    }

    /// `data` is a whole number of pages (the OVMF parser and the hash page builder ensure it).
    pub(crate) fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (gpa, page) in (gpa..)
            .step_by(PAGE_SIZE as usize)
            .zip(data.chunks(PAGE_SIZE as usize))
        {
            self.update(PageType::Normal, gpa, &Sha384::digest(page).into());
        }
    }

    /// Takes the page's SHA-384, so that identical AP pages are hashed once.
    pub(crate) fn vmsa_page(&mut self, page_digest: &[u8; DIGEST_LEN]) {
        self.update(PageType::Vmsa, VMSA_GPA, page_digest);
    }

    /// Zero or unmeasured pages over `len` bytes (a multiple of the page size) from `gpa`.
    pub(crate) fn empty_pages(&mut self, page_type: PageType, gpa: u64, len: u64) {
        for offset in (0..len).step_by(PAGE_SIZE as usize) {
            self.update(page_type, gpa + offset, &[0; DIGEST_LEN]);
        }
    }

    /// Secrets and CPUID pages: their contents are the PSP's, so only type and GPA are measured.
    pub(crate) fn special_page(&mut self, page_type: PageType, gpa: u64) {
        self.update(page_type, gpa, &[0; DIGEST_LEN]);
    }

    pub(crate) fn finish(self) -> [u8; DIGEST_LEN] {
        self.ld
    }
}

pub(crate) fn page_digest(page: &[u8]) -> [u8; DIGEST_LEN] {
    Sha384::digest(page).into()
}
