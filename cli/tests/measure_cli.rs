//! `snpkms measure` end to end: the binary prints what the library computes, in hex or JSON, and
//! explains refusals. The digest itself is checked against sev-snp-measure in measure/tests.

use std::process::{Command, Output};

/// Debian's OVMF with SNP metadata (package `ovmf`, installed by scripts/setup).
const OVMF: &str = "/usr/share/OVMF/OVMF_CODE.fd";

fn snpkms(args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(OVMF).is_file(),
        "{OVMF} is missing: run scripts/setup"
    );
    Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(args)
        .output()
        .expect("run snpkms")
}

fn library_digest(vcpus: u32, vcpu_type: &str, features: u64) -> String {
    let ovmf = std::fs::read(OVMF).expect("read OVMF");
    let digest = snpkms_measure::compute(&snpkms_measure::MeasureInput {
        ovmf: &ovmf,
        kernel: None,
        vcpus,
        vcpu_type: Some(vcpu_type.parse().expect("vCPU type")),
        guest_features: features,
        vmm: snpkms_measure::Vmm::Qemu,
    })
    .expect("measure");
    hex::encode(digest)
}

#[test]
fn prints_the_hex_digest() {
    let out = snpkms(&[
        "measure",
        "--ovmf",
        OVMF,
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout, format!("{}\n", library_digest(4, "EPYC-Milan", 1)));
}

#[test]
fn json_carries_the_inputs() {
    let out = snpkms(&[
        "measure",
        "--ovmf",
        OVMF,
        "--vcpus",
        "2",
        "--vcpu-type",
        "epyc-genoa",
        "--guest-features",
        "0x21",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["measurement"], library_digest(2, "EPYC-Genoa", 0x21));
    let inputs = &v["inputs"];
    assert_eq!(inputs["ovmf"]["path"], OVMF);
    assert_eq!(inputs["ovmf"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(inputs["kernel"], serde_json::Value::Null);
    assert_eq!(inputs["vcpus"], 2);
    assert_eq!(inputs["vcpu_type"], "EPYC-Genoa");
    assert_eq!(inputs["guest_features"], "0x21");
    assert_eq!(inputs["vmm"], "qemu");
}

#[test]
fn explains_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, b"not really a kernel").expect("write");
    let kernel = kernel.to_str().expect("utf-8 path");

    let cases: [(&[&str], &str); 3] = [
        (
            &["--vcpus", "2", "--vcpu-type", "EPYC-v4", "--kernel", kernel],
            "SNP_KERNEL_HASHES",
        ),
        (&["--vcpus", "2"], "--vcpu-type is required"),
        (&["--vcpus", "2", "--vcpu-type", "EPYC-Zen9"], "EPYC-Milan"),
    ];
    for (args, expected) in cases {
        let out = snpkms(&[&["measure", "--ovmf", OVMF], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}
