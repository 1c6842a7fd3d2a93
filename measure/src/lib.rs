//! The SEV-SNP launch measurement of a guest image, computed before launch so that app owners and
//! registry governors can register it on-chain.
//!
//! The digest is the one the PSP puts in the attestation report's MEASUREMENT field for a guest
//! launched by QEMU (or EC2/GCE) from an OVMF image, optionally booting a kernel directly with its
//! hashes checked by OVMF. It is identical to `sev-snp-measure --mode snp` (0.0.13) on every input
//! that can actually launch; inputs that cannot (no SEV metadata, misaligned sections, no
//! SNPActive feature) are refused with a [`MeasureError`] rather than given a digest no report
//! will ever carry.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ovmf = std::fs::read("/usr/share/OVMF/OVMF_CODE.fd")?;
//! let digest = snpkms_measure::compute(&snpkms_measure::MeasureInput {
//!     ovmf: &ovmf,
//!     kernel: None,
//!     vcpus: 4,
//!     vcpu_type: Some("EPYC-Milan".parse()?),
//!     guest_features: snpkms_measure::DEFAULT_GUEST_FEATURES,
//!     vmm: snpkms_measure::Vmm::Qemu,
//! })?;
//! # let _ = digest; Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod gctx;
mod guid;
mod hashes;
mod ovmf;
mod vcpu;
mod vmsa;

pub use error::MeasureError;
pub use hashes::KernelHashes;
pub use vcpu::VcpuType;

use gctx::{Gctx, PageType};
use ovmf::{Ovmf, SectionKind};

/// Length of a launch digest (SHA-384).
pub const DIGEST_LEN: usize = gctx::DIGEST_LEN;

/// SEV_FEATURES bit 0: the guest runs as SNP. Every SNP VMSA has it.
pub const SNP_ACTIVE: u64 = 0x1;

/// The guest features sev-snp-measure assumes: SNPActive alone.
pub const DEFAULT_GUEST_FEATURES: u64 = SNP_ACTIVE;

/// The hypervisor that builds the initial vCPU state; each sets a few registers differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vmm {
    /// QEMU/KVM (the default): RDX holds the vCPU model's CPUID signature, so a
    /// [`VcpuType`] is required.
    #[default]
    Qemu,
    /// Amazon EC2: RDX is 0x600 rather than a CPUID signature, segment attributes and the FPU
    /// control state differ from QEMU's, and the CPUID page is measured after all other
    /// sections.
    Ec2,
    /// Google Compute Engine: RDX is 0x600 rather than a CPUID signature, the FPU control state
    /// and PAT differ from QEMU's, and SNP_SEC_MEM pages are added as unmeasured (validated,
    /// contents not hashed).
    Gce,
}

impl Vmm {
    /// Every supported VMM.
    pub const ALL: [Vmm; 3] = [Vmm::Qemu, Vmm::Ec2, Vmm::Gce];

    /// The lower-case name (`qemu`, `ec2`, `gce`), as `Display` prints it; [`str::parse`]
    /// accepts it in any case.
    pub fn name(self) -> &'static str {
        match self {
            Vmm::Qemu => "qemu",
            Vmm::Ec2 => "ec2",
            Vmm::Gce => "gce",
        }
    }
}

impl std::str::FromStr for Vmm {
    type Err = MeasureError;

    fn from_str(s: &str) -> Result<Vmm, MeasureError> {
        Vmm::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| MeasureError::UnknownVmm { name: s.to_owned() })
    }
}

impl std::fmt::Display for Vmm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the launch digest depends on.
#[derive(Clone, Debug)]
pub struct MeasureInput<'a> {
    /// The OVMF image (for QEMU, the `-bios` / pflash code file) exactly as launched.
    pub ovmf: &'a [u8],
    /// Set when QEMU boots a kernel directly (`-kernel`, `-initrd`, `-append`).
    pub kernel: Option<KernelHashes>,
    /// Number of vCPUs (at least 1): each adds one VMSA page to the digest.
    pub vcpus: u32,
    /// Required with [`Vmm::Qemu`]; EC2 and GCE ignore it.
    pub vcpu_type: Option<VcpuType>,
    /// The VMSA SEV_FEATURES field (e.g. 0x1, or 0x21 with DebugSwap).
    pub guest_features: u64,
    /// The hypervisor launching the guest.
    pub vmm: Vmm,
}

/// Computes the SNP launch digest of `input`.
pub fn compute(input: &MeasureInput<'_>) -> Result<[u8; DIGEST_LEN], MeasureError> {
    if input.vcpus == 0 {
        return Err(MeasureError::NoVcpus);
    }
    if input.guest_features & SNP_ACTIVE == 0 {
        return Err(MeasureError::SnpNotActive {
            features: input.guest_features,
        });
    }
    let vcpu_sig = match (input.vmm, input.vcpu_type) {
        (Vmm::Qemu, None) => return Err(MeasureError::MissingVcpuType),
        (Vmm::Qemu, Some(t)) => t.signature(),
        (Vmm::Ec2 | Vmm::Gce, _) => 0,
    };
    let ovmf = Ovmf::parse(input.ovmf)?;
    if input.vcpus > 1 && ovmf.ap_reset_eip == 0 {
        return Err(MeasureError::NoApResetAddress { vcpus: input.vcpus });
    }
    let hash_page = match &input.kernel {
        Some(hashes) => Some(kernel_hashes_page(&ovmf, hashes)?),
        None => None,
    };

    let mut gctx = Gctx::new();
    gctx.normal_pages(ovmf.gpa(), ovmf.data());
    for section in &ovmf.sections {
        let gpa = u64::from(section.gpa);
        let size = u64::from(section.size);
        match section.kind {
            // GCE validates the pre-validated region without measuring its (zero) contents.
            SectionKind::SecMem if input.vmm == Vmm::Gce => {
                gctx.empty_pages(PageType::Unmeasured, gpa, size)
            }
            SectionKind::SecMem | SectionKind::SvsmCaa => {
                gctx.empty_pages(PageType::Zero, gpa, size)
            }
            SectionKind::Secrets => gctx.special_page(PageType::Secrets, gpa),
            // EC2 adds the CPUID page after all other sections (below).
            SectionKind::Cpuid if input.vmm == Vmm::Ec2 => {}
            SectionKind::Cpuid => gctx.special_page(PageType::Cpuid, gpa),
            SectionKind::KernelHashes => match &hash_page {
                Some(page) => gctx.normal_pages(gpa, page),
                None => gctx.empty_pages(PageType::Zero, gpa, size),
            },
        }
    }
    if input.vmm == Vmm::Ec2 {
        for section in ovmf
            .sections
            .iter()
            .filter(|s| s.kind == SectionKind::Cpuid)
        {
            gctx.special_page(PageType::Cpuid, u64::from(section.gpa));
        }
    }

    let bsp = vmsa::save_area(vmsa::BSP_EIP, input.guest_features, vcpu_sig, input.vmm);
    gctx.vmsa_page(&gctx::page_digest(&bsp));
    if input.vcpus > 1 {
        let ap = vmsa::save_area(ovmf.ap_reset_eip, input.guest_features, vcpu_sig, input.vmm);
        let ap_digest = gctx::page_digest(&ap);
        for _ in 1..input.vcpus {
            gctx.vmsa_page(&ap_digest);
        }
    }
    Ok(gctx.finish())
}

/// The page measured for the SNP_KERNEL_HASHES section when a kernel is booted: QEMU writes the
/// hash table at the area the footer table names, inside that section's single page.
fn kernel_hashes_page(ovmf: &Ovmf<'_>, hashes: &KernelHashes) -> Result<Vec<u8>, MeasureError> {
    let sections: Vec<_> = ovmf
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::KernelHashes)
        .collect();
    if sections.is_empty() {
        return Err(MeasureError::MissingKernelHashesSection);
    }
    let area = match &ovmf.hash_table {
        Some(area) => area.clone()?,
        None => {
            return Err(MeasureError::TableEntryMissing {
                name: "SEV hash table",
                guid: ovmf::SEV_HASH_TABLE_RV_GUID.to_string(),
            })
        }
    };
    let area_err = |reason| MeasureError::HashTableArea {
        base: area.base,
        size: area.size,
        reason,
    };
    // QEMU itself refuses these (sev_add_kernel_loader_hashes).
    if area.base == 0 {
        return Err(area_err("QEMU refuses a zero base"));
    }
    if (area.size as usize) < hashes::PADDED_TABLE_LEN {
        return Err(area_err("smaller than the 176-byte table QEMU writes"));
    }
    let page_base = area.base & !(ovmf::PAGE_SIZE as u32 - 1);
    let offset = (area.base - page_base) as usize;
    for section in sections {
        if section.size as usize != ovmf::PAGE_SIZE {
            return Err(MeasureError::SectionSize {
                index: section.index,
                kind: SectionKind::KernelHashes.name(),
                size: section.size,
                expected: "exactly one page (0x1000) when a kernel is measured",
            });
        }
        // Otherwise QEMU's table would land outside the page measured here.
        if section.gpa != page_base {
            return Err(area_err("not inside the SNP_KERNEL_HASHES section's page"));
        }
    }
    hashes
        .page(offset)
        .ok_or_else(|| area_err("the table would cross the end of its page"))
}
