//! Replays every committed fuzz input of the `report_verify` and `cert_table` targets
//! (`fuzz/seeds/<target>/`: the seed corpus, plus every input that ever crashed a target)
//! through the same harness the fuzzer runs, so a fixed crash stays fixed under plain
//! `cargo test`. Files named `ok-*` are valid evidence and must also be accepted: that keeps the
//! seeds reaching the deep checks as the verifier changes.
//!
//! `cargo test -p snpkms-verifier --test fuzz_regressions -- --ignored` rewrites the seeds.

#[path = "../../fuzz/harness/cert_table.rs"]
mod cert_table;
#[path = "../../fuzz/harness/report_verify.rs"]
mod report_verify;

use snpkms_simulator::{SimAuthority, SimulatedPlatform};
use snpkms_verifier::{CertificateBundle, Product};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "../../fuzz/harness/replay.rs"]
mod replay;

fn seeds_dir(target: &str) -> PathBuf {
    replay::seeds_dir(env!("CARGO_MANIFEST_DIR"), target)
}

fn replay(target: &str, run: fn(&[u8]) -> Result<(), String>) {
    replay::replay(env!("CARGO_MANIFEST_DIR"), target, run);
}

#[test]
fn report_verify_inputs_never_panic() {
    replay("report_verify", report_verify::run);
}

#[test]
fn cert_table_inputs_never_panic() {
    replay("cert_table", cert_table::run);
}

fn amd_testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/amd")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes the seed corpus of both targets from the genuine AMD vectors and the simulator.
/// The simulator's certificates carry randomised RSA-PSS salts, so a rerun rewrites its files
/// with different (equally valid) bytes: commit them only when the format changed.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the evidence format changes"]
fn write_seeds() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = seeds_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // Genuine AMD evidence: each report with its VCEK, ASK and ARK in a table, and with the
    // VCEK alone (the node then uses its pinned ASK).
    let amd = [
        (
            "milan-v2",
            "milan-v2-report.bin",
            "milan-v2-vcek.der",
            "milan",
        ),
        (
            "ms-milan",
            "ms-milan-report.bin",
            "ms-milan-vcek.pem",
            "milan",
        ),
        (
            "ms-genoa",
            "ms-genoa-report.bin",
            "ms-genoa-vcek.pem",
            "genoa",
        ),
        (
            "ms-turin",
            "ms-turin-report.bin",
            "ms-turin-vcek.pem",
            "turin",
        ),
    ];
    for (name, report, vcek, product) in amd {
        let report = amd_testdata(report);
        let vcek_only = CertificateBundle::from_vcek(&amd_testdata(vcek)).unwrap();
        let full = vcek_only
            .clone()
            .with_chain_pem(&amd_testdata(&format!("roots/{product}-ask-ark.pem")))
            .unwrap();
        for (suffix, bundle) in [("", &full), ("-vcek-only", &vcek_only)] {
            let table = bundle.to_cert_table();
            write(
                "report_verify",
                &format!("ok-amd-{name}{suffix}"),
                &[&report[..], &table].concat(),
            );
            write("cert_table", &format!("ok-amd-{name}{suffix}"), &table);
        }
    }
    // The genuine VLEK-signed (AWS) report with its VLEK, ASVK and ARK: refused by the
    // default policy (and outside the VLEK's year at the fuzzing time), but it takes the VLEK
    // path through the chain checks.
    let vlek = CertificateBundle::from_endorsement(&amd_testdata("vlek/milan-vlek.der"))
        .unwrap()
        .with_chain_pem(&amd_testdata("roots/milan-asvk-ark.pem"))
        .unwrap();
    let table = vlek.to_cert_table();
    let report = amd_testdata("vlek/milan-vlek-report.bin");
    write(
        "report_verify",
        "vlek-amd-milan",
        &[&report[..], &table].concat(),
    );
    write("cert_table", "vlek-amd-milan", &table);

    // The VCEK as a lone certificate, in both encodings `from_vcek` takes.
    write("cert_table", "vcek-der", &amd_testdata("milan-v2-vcek.der"));
    write("cert_table", "vcek-pem", &amd_testdata("ms-genoa-vcek.pem"));

    // Simulated evidence for every product, and a CRL as the verifier reads AMD's.
    let authority = Arc::new(SimAuthority::load());
    for product in Product::ALL {
        let platform = SimulatedPlatform::new(authority.clone(), product, b"fuzz-seed");
        let fields = platform.default_fields();
        let table = platform.certificates(fields.reported_tcb).to_cert_table();
        let name = format!("ok-sim-{}", product.amd_name().to_lowercase());
        write(
            "report_verify",
            &name,
            &[&platform.sign(&fields)[..], &table].concat(),
        );
        write("cert_table", &name, &table);
    }
    let crl = authority.crl(
        Product::Milan,
        1_700_000_000,
        Some(1_900_000_000),
        &[&authority.ask_serial(Product::Milan)],
    );
    write("cert_table", "crl-sim", &crl);
}
