//! `snpkms gov add-os-image` with launch inputs registers exactly what `snpkms measure` computes
//! (issue 10), using Debian's OVMF that scripts/setup installs.

use snpkms_governance::Inspector;
use snpkms_testkit::deploy_fixture;
use std::process::Command;

const OVMF: &str = "/usr/share/OVMF/OVMF_CODE.fd";

#[tokio::test(flavor = "multi_thread")]
async fn registers_the_measured_digest() {
    assert!(
        std::path::Path::new(OVMF).is_file(),
        "{OVMF} is missing: run scripts/setup (it installs Debian's ovmf package)"
    );
    let fixture = deploy_fixture().await;
    let measure = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args([
            "measure",
            "--ovmf",
            OVMF,
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
        ])
        .output()
        .unwrap();
    assert!(
        measure.status.success(),
        "{}",
        String::from_utf8_lossy(&measure.stderr)
    );
    let digest = String::from_utf8(measure.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(digest.len(), 96);

    let key = fixture.chain.key_hex(0);
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args([
            "gov",
            "add-os-image",
            "--ovmf",
            OVMF,
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
        ])
        .args(["--rpc-url", &fixture.chain.url])
        .args(["--registry", &fixture.deployment.registry.to_string()])
        .env("SNPKMS_OWNER_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&digest));

    let status = Inspector::new(&fixture.chain.url, fixture.deployment.registry, 0)
        .unwrap()
        .registry()
        .await
        .unwrap();
    assert!(
        status.os_images.iter().any(|m| hex::encode(m) == digest),
        "{digest} not among {:?}",
        status.os_images
    );
}
