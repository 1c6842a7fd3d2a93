//! `snpkms app host-data`: what a VMM sets at launch, equal to what the verifier checks.

use std::process::Command;

#[test]
fn host_data_matches_the_binding_the_node_checks() {
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&compose, "services: {}\n").unwrap();
    let app = "0x1111111111111111111111111111111111111111";
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["app", "host-data", "--app", app, "--compose"])
        .arg(&compose)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compose_hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"services: {}\n").into();
    let expected = snpkms_verifier::app_host_data(&[0x11; 20], &compose_hash);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        hex::encode(expected)
    );

    // The published vector.
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["app", "host-data", "--app", app, "--compose-hash"])
        .arg("22".repeat(32))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "8ced631e6762aa3362e4b91ba12e911d9e46a11e4fc276d1816da37a6bb579fd"
    );
}
