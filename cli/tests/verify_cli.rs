//! `snpkms verify` end to end: exit codes 0 (valid), 1 (rejected), 2 (usage), JSON output.

mod common;

use common::{amd, s, snpkms};
use std::path::Path;

#[test]
fn genuine_report_is_valid_with_fields_in_json() {
    let out = snpkms(&[
        "verify",
        "--report",
        s(&amd("ms-genoa-report.bin")),
        "--vcek",
        s(&amd("ms-genoa-vcek.pem")),
        "--at",
        "1780272000",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["report"]["product"], "genoa");
    assert_eq!(
        json["report"]["measurement"],
        "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1"
    );
}

#[test]
fn tampered_report_is_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = std::fs::read(amd("ms-milan-report.bin")).unwrap();
    report[0x95] ^= 1; // a measurement byte
    let path = dir.path().join("r.bin");
    std::fs::write(&path, &report).unwrap();
    let out = snpkms(&[
        "verify",
        "--report",
        s(&path),
        "--vcek",
        s(&amd("ms-milan-vcek.pem")),
        "--at",
        "1780272000",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["error"]["kind"], "signature");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify with the VCEK"));
}

#[test]
fn simulator_evidence_needs_an_explicit_extra_root() {
    use snpkms_simulator::{SimAuthority, SimulatedPlatform};
    use std::sync::Arc;
    let p = SimulatedPlatform::new(
        Arc::new(SimAuthority::load()),
        snpkms_verifier::Product::Milan,
        b"cli",
    );
    let fields = p.default_fields();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.bin");
    let table = dir.path().join("certs.bin");
    std::fs::write(&report, p.sign(&fields)).unwrap();
    std::fs::write(&table, p.certificates(fields.reported_tcb).to_cert_table()).unwrap();
    let base = ["verify", "--report", s(&report), "--cert-table", s(&table)];
    let out = snpkms(&base);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pinned root"));

    let ark = Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulator/fixtures/ark-milan.pem");
    let mut args = base.to_vec();
    args.extend(["--extra-root", s(&ark)]);
    let out = snpkms(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: VALID"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(snpkms(&["verify"]).status.code(), Some(2));
    let out = snpkms(&[
        "verify",
        "--report",
        "/nonexistent",
        "--vcek",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent"));
    let out = snpkms(&[
        "verify",
        "--report",
        s(&amd("ms-milan-report.bin")),
        "--vcek",
        s(&amd("ms-milan-vcek.pem")),
        "--policy",
        s(&amd("manifest.json")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
