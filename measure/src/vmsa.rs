//! The initial VMSA (SEV-ES save area) of each vCPU, as KVM builds it from the VMM's reset state.
//! Offsets are those of `struct sev_es_save_area` in Linux arch/x86/include/asm/svm.h (AMD APM
//! vol. 2, table B-4). Fields not set here are zero.

use crate::Vmm;

pub(crate) const PAGE_SIZE: usize = 4096;
/// Where the boot vCPU starts: the x86 reset vector.
pub(crate) const BSP_EIP: u32 = 0xffff_fff0;

// Segment registers: selector u16, attrib u16, limit u32, base u64.
const ES: usize = 0x000;
const CS: usize = 0x010;
const SS: usize = 0x020;
const DS: usize = 0x030;
const FS: usize = 0x040;
const GS: usize = 0x050;
const GDTR: usize = 0x060;
const LDTR: usize = 0x070;
const IDTR: usize = 0x080;
const TR: usize = 0x090;
const EFER: usize = 0x0d0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// PAT MSR reset value (AMD APM vol. 2, section A.3).
const DEFAULT_G_PAT: u64 = 0x0007_0406_0007_0406;
/// What EC2 and GCE put in RDX at reset instead of the vCPU's CPUID signature.
pub(crate) const CLOUD_RESET_RDX: u64 = 0x600;

/// The VMSA of a vCPU starting at `eip`. `vcpu_sig` goes to RDX under QEMU, as on real reset.
pub(crate) fn save_area(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: Vmm) -> [u8; PAGE_SIZE] {
    // The hypervisors differ in segment attributes, FPU reset state and PAT.
    let (cs_attr, ss_attr, tr_attr, rdx, mxcsr, fcw, g_pat): (u16, u16, u16, u64, u32, u16, u64) =
        match vmm {
            Vmm::Qemu => (
                0x9b,
                0x93,
                0x8b,
                u64::from(vcpu_sig),
                0x1f80,
                0x37f,
                DEFAULT_G_PAT,
            ),
            Vmm::Ec2 => {
                let cs_attr = if eip == BSP_EIP { 0x9a } else { 0x9b };
                (cs_attr, 0x92, 0x83, CLOUD_RESET_RDX, 0, 0, DEFAULT_G_PAT)
            }
            Vmm::Gce => (0x9b, 0x93, 0x8b, CLOUD_RESET_RDX, 0, 0, 0x0007_0106),
        };

    let mut page = [0u8; PAGE_SIZE];
    let mut seg = |at: usize, selector: u16, attrib: u16, base: u64| {
        put(&mut page, at, &selector.to_le_bytes());
        put(&mut page, at + 2, &attrib.to_le_bytes());
        put(&mut page, at + 4, &0xffff_u32.to_le_bytes());
        put(&mut page, at + 8, &base.to_le_bytes());
    };
    // Real mode: CS:IP = 0xf000:(eip & 0xffff) with the CS base holding the upper bits of eip.
    seg(ES, 0, 0x93, 0);
    seg(CS, 0xf000, cs_attr, u64::from(eip & 0xffff_0000));
    seg(SS, 0, ss_attr, 0);
    seg(DS, 0, 0x93, 0);
    seg(FS, 0, 0x93, 0);
    seg(GS, 0, 0x93, 0);
    seg(GDTR, 0, 0, 0);
    seg(LDTR, 0, 0x82, 0);
    seg(IDTR, 0, 0, 0);
    seg(TR, 0, tr_attr, 0);

    let u64s: [(usize, u64); 11] = [
        (EFER, 0x1000), // KVM sets EFER.SVME
        (CR4, 0x40),    // KVM sets CR4.MCE
        (CR0, 0x10),
        (DR7, 0x400),
        (DR6, 0xffff_0ff0),
        (RFLAGS, 0x2),
        (RIP, u64::from(eip & 0xffff)),
        (G_PAT, g_pat),
        (RDX, rdx),
        (SEV_FEATURES, sev_features),
        (XCR0, 0x1),
    ];
    for (at, value) in u64s {
        put(&mut page, at, &value.to_le_bytes());
    }
    put(&mut page, MXCSR, &mxcsr.to_le_bytes());
    put(&mut page, X87_FCW, &fcw.to_le_bytes());
    page
}

/// Only called with the constant offsets above, all well inside the page.
fn put(page: &mut [u8; PAGE_SIZE], at: usize, bytes: &[u8]) {
    page[at..at + bytes.len()].copy_from_slice(bytes);
}
