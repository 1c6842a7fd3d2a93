//! Differential tests against the reference implementation, the PyPI package sev-snp-measure
//! 0.0.13, run as a subprocess on the same files: Debian's OVMF (package `ovmf`) for plain
//! firmware boots, and a synthetic AmdSev-style image with an SNP_KERNEL_HASHES section for direct
//! kernel boots. Both must be installed (scripts/setup does it); a missing one fails the test.

mod support;

use snpkms_measure::{compute, KernelHashes, MeasureError, MeasureInput, VcpuType, Vmm};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use support::Image;

const REFERENCE_VERSION: &str = "sev-snp-measure 0.0.13";
/// Debian's 2 MiB OVMF carries SNP metadata (SEC_MEM, SECRETS, CPUID) but no SNP_KERNEL_HASHES.
const DEBIAN_OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
/// The combined code+vars image from the same package.
const DEBIAN_OVMF_COMBINED: &str = "/usr/share/ovmf/OVMF.fd";
/// Debian's 4 MiB build has no SEV metadata at all.
const DEBIAN_OVMF_CODE_4M: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Checks once that the reference and Debian's OVMF are installed, failing loudly otherwise.
fn require_reference() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let out = Command::new(python())
            .args(["-m", "sevsnpmeasure.cli", "--version"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || version != REFERENCE_VERSION {
            return Err(format!(
                "`{} -m sevsnpmeasure.cli --version` said {version:?} (stderr: {}), want \
                 {REFERENCE_VERSION:?}",
                python(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        for path in [DEBIAN_OVMF_CODE, DEBIAN_OVMF_COMBINED, DEBIAN_OVMF_CODE_4M] {
            if !Path::new(path).is_file() {
                return Err(format!("{path} is missing (Debian package `ovmf`)"));
            }
        }
        Ok(())
    });
    if let Err(why) = checked {
        panic!("{why}\nthe reference tests need sev-snp-measure 0.0.13 and Debian's ovmf: run scripts/setup");
    }
}

#[derive(Clone, Debug)]
struct Kernel {
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    append: Option<String>,
}

#[derive(Clone, Debug)]
struct Case {
    ovmf: PathBuf,
    kernel: Option<Kernel>,
    vcpus: u32,
    vcpu_type: Option<&'static str>,
    /// As typed on the command line; None leaves both tools at their default (0x1).
    guest_features: Option<&'static str>,
    vmm: Vmm,
}

impl Case {
    fn new(ovmf: impl Into<PathBuf>, vcpus: u32, vcpu_type: &'static str) -> Case {
        Case {
            ovmf: ovmf.into(),
            kernel: None,
            vcpus,
            vcpu_type: Some(vcpu_type),
            guest_features: None,
            vmm: Vmm::Qemu,
        }
    }

    fn reference(&self) -> Result<String, String> {
        require_reference();
        let mut cmd = Command::new(python());
        cmd.args([
            "-m",
            "sevsnpmeasure.cli",
            "--mode",
            "snp",
            "--output-format",
            "hex",
        ])
        .arg("--ovmf")
        .arg(&self.ovmf)
        .args(["--vcpus", &self.vcpus.to_string()])
        .args([
            "--vmm-type",
            match self.vmm {
                Vmm::Qemu => "QEMU",
                Vmm::Ec2 => "ec2",
                Vmm::Gce => "gce",
            },
        ]);
        if let Some(t) = self.vcpu_type {
            cmd.args(["--vcpu-type", t]);
        }
        if let Some(f) = self.guest_features {
            cmd.args(["--guest-features", f]);
        }
        if let Some(k) = &self.kernel {
            cmd.arg("--kernel").arg(&k.kernel);
            if let Some(initrd) = &k.initrd {
                cmd.arg("--initrd").arg(initrd);
            }
            if let Some(append) = &k.append {
                cmd.args(["--append", append]);
            }
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn ours(&self) -> Result<String, MeasureError> {
        let ovmf = std::fs::read(&self.ovmf).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; run scripts/setup",
                self.ovmf.display()
            )
        });
        let kernel = self.kernel.as_ref().map(|k| {
            let kernel = std::fs::read(&k.kernel).expect("read kernel");
            let initrd = k
                .initrd
                .as_ref()
                .map(|p| std::fs::read(p).expect("read initrd"));
            KernelHashes::new(&kernel, initrd.as_deref(), k.append.as_deref())
        });
        let guest_features = match self.guest_features {
            Some(f) => u64::from_str_radix(f.trim_start_matches("0x"), 16).expect("hex"),
            None => snpkms_measure::DEFAULT_GUEST_FEATURES,
        };
        let digest = compute(&MeasureInput {
            ovmf: &ovmf,
            kernel,
            vcpus: self.vcpus,
            vcpu_type: self.vcpu_type.map(|t| t.parse().expect("known vCPU type")),
            guest_features,
            vmm: self.vmm,
        })?;
        Ok(hex::encode(digest))
    }

    fn assert_same(&self) {
        let theirs = self
            .reference()
            .unwrap_or_else(|e| panic!("reference failed on {self:?}: {e}"));
        let ours = self
            .ours()
            .unwrap_or_else(|e| panic!("we failed on {self:?}: {e}"));
        assert_eq!(ours, theirs, "measurements differ on {self:?}");
    }
}

/// The synthetic AmdSev-style image plus a kernel, an initrd and a scratch directory.
struct KernelFixture {
    dir: tempfile::TempDir,
    ovmf: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

impl KernelFixture {
    fn new(image: &Image) -> KernelFixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ovmf = image.build().write(dir.path(), "OVMF.amdsev.fd");
        let kernel = dir.path().join("vmlinuz");
        let initrd = dir.path().join("initrd.img");
        std::fs::write(&kernel, support::filler(300_000, 1)).expect("write kernel");
        std::fs::write(&initrd, support::filler(123_457, 2)).expect("write initrd");
        KernelFixture {
            dir,
            ovmf,
            kernel,
            initrd,
        }
    }

    fn case(
        &self,
        vcpus: u32,
        vcpu_type: &'static str,
        initrd: bool,
        append: Option<&str>,
    ) -> Case {
        Case {
            kernel: Some(Kernel {
                kernel: self.kernel.clone(),
                initrd: initrd.then(|| self.initrd.clone()),
                append: append.map(str::to_owned),
            }),
            ..Case::new(&self.ovmf, vcpus, vcpu_type)
        }
    }
}

#[test]
fn debian_ovmf_vcpu_counts() {
    for vcpu_type in ["EPYC-v4", "EPYC-Milan"] {
        for vcpus in [1, 2, 4, 16, 64] {
            Case::new(DEBIAN_OVMF_CODE, vcpus, vcpu_type).assert_same();
        }
    }
}

#[test]
fn debian_ovmf_every_vcpu_type() {
    let types: Vec<VcpuType> = VcpuType::all().collect();
    assert_eq!(types.len(), 16);
    for t in types {
        Case::new(DEBIAN_OVMF_CODE, 2, t.name()).assert_same();
    }
}

#[test]
fn debian_ovmf_guest_features() {
    // SNPActive alone, with DebugSwap, with AlternateInjection, SecureTSC, and a reserved bit.
    for features in ["0x1", "0x21", "0x11", "0x201", "0x4000000000000001"] {
        Case {
            guest_features: Some(features),
            ..Case::new(DEBIAN_OVMF_CODE, 4, "EPYC-Genoa")
        }
        .assert_same();
    }
}

#[test]
fn debian_ovmf_cloud_vmms() {
    for vmm in [Vmm::Ec2, Vmm::Gce] {
        for (vcpus, features) in [(1, None), (2, Some("0x21")), (8, None)] {
            Case {
                vmm,
                vcpu_type: None,
                guest_features: features,
                ..Case::new(DEBIAN_OVMF_CODE, vcpus, "EPYC")
            }
            .assert_same();
        }
        // A vCPU type is accepted and ignored by both.
        Case {
            vmm,
            ..Case::new(DEBIAN_OVMF_CODE, 2, "EPYC-Milan")
        }
        .assert_same();
    }
}

#[test]
fn debian_combined_ovmf() {
    Case::new(DEBIAN_OVMF_COMBINED, 1, "EPYC-Rome").assert_same();
    Case::new(DEBIAN_OVMF_COMBINED, 4, "EPYC-Genoa").assert_same();
}

#[test]
fn synthetic_image_without_kernel() {
    let fixture = KernelFixture::new(&Image::amd_sev());
    Case::new(&fixture.ovmf, 1, "EPYC-v4").assert_same();
    Case::new(&fixture.ovmf, 16, "EPYC-Turin").assert_same();
    for vmm in [Vmm::Ec2, Vmm::Gce] {
        Case {
            vmm,
            vcpu_type: None,
            ..Case::new(&fixture.ovmf, 4, "EPYC")
        }
        .assert_same();
    }
}

#[test]
fn synthetic_image_with_kernel() {
    let fixture = KernelFixture::new(&Image::amd_sev());
    let cmdline = "console=ttyS0 root=/dev/vda1 ro";
    fixture
        .case(1, "EPYC-v4", true, Some(cmdline))
        .assert_same();
    fixture
        .case(4, "EPYC-Milan", true, Some(cmdline))
        .assert_same();
    fixture
        .case(64, "EPYC-Genoa", true, Some(cmdline))
        .assert_same();
    // Kernel alone: empty initrd and a lone-NUL command line are hashed.
    fixture.case(2, "EPYC-v4", false, None).assert_same();
    fixture.case(2, "EPYC-v4", true, None).assert_same();
    fixture
        .case(2, "EPYC-v4", false, Some(cmdline))
        .assert_same();
    // The command line is hashed as given: untrimmed, UTF-8.
    fixture
        .case(2, "EPYC-Rome", true, Some("  quiet  ima_policy=tcb café "))
        .assert_same();
    Case {
        guest_features: Some("0x21"),
        ..fixture.case(8, "EPYC-Genoa", true, Some(cmdline))
    }
    .assert_same();
    for vmm in [Vmm::Ec2, Vmm::Gce] {
        Case {
            vmm,
            vcpu_type: None,
            ..fixture.case(4, "EPYC", true, Some(cmdline))
        }
        .assert_same();
    }
}

#[test]
fn synthetic_image_with_page_aligned_hash_table() {
    // The hash table at the start of its page rather than in the last KiB.
    let image = Image {
        hash_table: Some((0x0081_0000, 0x1000)),
        ..Image::amd_sev()
    };
    let fixture = KernelFixture::new(&image);
    fixture
        .case(2, "EPYC-v4", true, Some("console=ttyS0"))
        .assert_same();
    assert!(fixture.dir.path().exists());
}

#[test]
fn kernel_with_debian_ovmf_fails_in_both() {
    let fixture = KernelFixture::new(&Image::amd_sev());
    let case = Case {
        ovmf: DEBIAN_OVMF_CODE.into(),
        ..fixture.case(2, "EPYC-v4", true, Some("console=ttyS0"))
    };
    let theirs = case.reference().expect_err("reference must refuse");
    assert!(theirs.contains("SNP_KERNEL_HASHES"), "{theirs}");
    assert_eq!(case.ours(), Err(MeasureError::MissingKernelHashesSection));
}

/// A deliberate divergence: the reference measures firmware without SEV metadata, but QEMU
/// refuses to launch an SNP guest from it, so no report could ever carry that digest.
#[test]
fn debian_4m_ovmf_without_sev_metadata_is_refused() {
    let case = Case::new(DEBIAN_OVMF_CODE_4M, 2, "EPYC-v4");
    case.reference()
        .expect("the reference computes a digest anyway");
    assert!(matches!(
        case.ours(),
        Err(MeasureError::NoSevMetadata { .. })
    ));
}

/// A second, independent check without Python: the sev crate's calculator, on the inputs where
/// it is known to agree (QEMU, and a command line with no surrounding whitespace, which it trims).
#[test]
fn agrees_with_the_sev_crate() {
    use sev::measurement::{
        snp::{snp_calc_launch_digest, SnpMeasurementArgs},
        vcpu_types::CpuType,
        vmsa::{GuestFeatures, VMMType},
    };
    use sev::parser::ByteParser;

    let fixture = KernelFixture::new(&Image::amd_sev());
    let cases = [
        Case::new(DEBIAN_OVMF_CODE, 4, "EPYC-Milan"),
        Case {
            guest_features: Some("0x21"),
            ..Case::new(DEBIAN_OVMF_CODE, 1, "EPYC-Genoa")
        },
        fixture.case(2, "EPYC-v4", true, Some("console=ttyS0")),
        fixture.case(3, "EPYC-Rome", false, None),
    ];
    for case in cases {
        let features = case.guest_features.unwrap_or("0x1");
        let features = u64::from_str_radix(features.trim_start_matches("0x"), 16).expect("hex");
        let kernel = case.kernel.clone();
        let theirs = snp_calc_launch_digest(SnpMeasurementArgs {
            vcpus: case.vcpus,
            vcpu_type: CpuType::try_from(case.vcpu_type.expect("qemu")).expect("cpu type"),
            ovmf_file: case.ovmf.clone(),
            guest_features: GuestFeatures::from_bytes(&features.to_le_bytes()).expect("features"),
            kernel_file: kernel.as_ref().map(|k| k.kernel.clone()),
            initrd_file: kernel.as_ref().and_then(|k| k.initrd.clone()),
            append: kernel.as_ref().and_then(|k| k.append.as_deref()),
            ovmf_hash_str: None,
            vmm_type: Some(VMMType::QEMU),
        })
        .expect("sev crate");
        assert_eq!(
            case.ours().expect("ours"),
            theirs.get_hex_ld(),
            "differs from the sev crate on {case:?}"
        );
    }
}
