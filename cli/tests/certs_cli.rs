//! `snpkms certs fetch` / `certs import` and `snpkms verify --kds` against a KDS stand-in (a
//! real HTTP server on loopback) serving AMD's genuine certificates at KDS's URL layout, and
//! `verify --vcek` with a PEM bundle as Azure hands them out.

mod common;

use common::{amd, s, snpkms, snpkms_async};
use snpkms_kds::Document;
use snpkms_testkit::kds::KdsStandIn;
use snpkms_verifier::{CertificateBundle, Policy, TrustRoots, Verifier};
use std::path::Path;
use std::process::{Command, Output};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn milan_vcek_doc() -> Document {
    let v = Verifier::new(TrustRoots::amd(), Policy::default());
    let report = std::fs::read(amd("ms-milan-report.bin")).unwrap();
    Document::vcek(&v.vcek_id(&v.parse(&report).unwrap()).unwrap())
}

fn der_of(pem_file: &str) -> Vec<u8> {
    CertificateBundle::from_endorsement(&std::fs::read(amd(pem_file)).unwrap())
        .unwrap()
        .vcek
        .unwrap()
}

async fn genuine_kds() -> (KdsStandIn, Document) {
    let kds = KdsStandIn::start().await;
    let doc = milan_vcek_doc();
    kds.serve(&doc.url_path, der_of("ms-milan-vcek.pem"));
    kds.serve(
        "vcek/v1/Milan/cert_chain",
        std::fs::read(amd("roots/milan-ask-ark.pem")).unwrap(),
    );
    (kds, doc)
}

/// `snpkms certs fetch` for the genuine Milan report from `kds` into `out_dir`.
async fn fetch_milan(kds: &KdsStandIn, out_dir: &Path) -> Output {
    let report = amd("ms-milan-report.bin");
    let fetch = [
        "certs",
        "fetch",
        "--report",
        s(&report),
        "--out",
        s(out_dir),
    ];
    snpkms_async(args(&[&fetch[..], &["--kds", &kds.url()]].concat())).await
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_then_import_fills_a_nodes_store() {
    let (kds, doc) = genuine_kds().await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let out = fetch_milan(&kds, &out_dir).await;
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CRL not fetched"), "{stderr}");
    assert!(out_dir.join(&doc.store_path).is_file());
    assert!(out_dir.join("vcek/Milan/cert_chain.pem").is_file());

    let data_dir = dir.path().join("node-data");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[chain]\nrpc_urls = [\"http://127.0.0.1:8545\"]\n\
             registry = \"0x0101010101010101010101010101010101010101\"\n[platform]\nkind = \"hardware\"\n",
            data_dir
        ),
    )
    .unwrap();
    let out = snpkms(&["certs", "import", s(&out_dir), "--config", s(&config)]);
    ok(&out);
    let stored = data_dir.join("kds").join(&doc.store_path);
    assert_eq!(std::fs::read(stored).unwrap(), der_of("ms-milan-vcek.pem"));

    // A directory holding something that is not a certificate is refused whole.
    std::fs::write(out_dir.join(&doc.store_path), b"garbage").unwrap();
    let out = snpkms(&["certs", "import", s(&out_dir), "--config", s(&config)]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_refuses_another_chips_vcek() {
    let (kds, doc) = genuine_kds().await;
    kds.serve(&doc.url_path, der_of("ms-genoa-vcek.pem"));
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let out = fetch_milan(&kds, &out_dir).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(!out_dir.join(&doc.store_path).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_fetches_the_vcek_from_kds() {
    let (kds, doc) = genuine_kds().await;
    let report = amd("ms-milan-report.bin");
    let verify = ["verify", "--report", s(&report), "--at", "1780272000"];
    let out = snpkms_async(args(
        &[&verify[..], &["--kds", &kds.url(), "--json"]].concat(),
    ))
    .await;
    ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["report"]["endorser"], "vcek");
    assert_eq!(kds.requests(&doc.url_path), 1);

    // Down: an error, not a verdict.
    kds.set_down(true);
    let out = snpkms_async(args(&[&verify[..], &["--kds", &kds.url()]].concat())).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not get the VCEK for Milan chip"),
        "{stderr}"
    );
}

#[test]
fn verify_takes_a_pem_bundle_of_vcek_ask_and_ark() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("azure-bundle.pem");
    let mut pem = std::fs::read(amd("ms-milan-vcek.pem")).unwrap();
    pem.extend(std::fs::read(amd("roots/milan-ask-ark.pem")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let out = snpkms(&[
        "verify",
        "--report",
        s(&amd("ms-milan-report.bin")),
        "--vcek",
        s(&bundle),
        "--at",
        "1780272000",
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: VALID"));

    // The genuine AWS VLEK report: refused by the default policy, valid with one that accepts
    // VLEKs at VMPL 1 (and its uncommitted firmware), at a time inside the VLEK's year.
    let policy = dir.path().join("vlek.toml");
    std::fs::write(
        &policy,
        "allow_vlek = true\nmax_vmpl = 1\nallow_provisional_firmware = true\n",
    )
    .unwrap();
    let args = |policy: Option<&Path>| {
        let mut a = vec![
            "verify".to_string(),
            "--report".into(),
            s(&amd("vlek/milan-vlek-report.bin")).into(),
            "--vcek".into(),
            s(&amd("vlek/milan-vlek.der")).into(),
            "--at".into(),
            "1735000000".into(),
        ];
        if let Some(p) = policy {
            a.extend(["--policy".into(), s(p).into()]);
        }
        a
    };
    let refused = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(args(None))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("allow_vlek"));
    let valid = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(args(Some(&policy)))
        .output()
        .unwrap();
    ok(&valid);
    let stdout = String::from_utf8_lossy(&valid.stdout);
    assert!(stdout.contains("CN=cc-us-east-2.amazonaws.com"), "{stdout}");
    assert!(stdout.contains("device_identity    none"), "{stdout}");
}
