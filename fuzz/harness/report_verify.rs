//! Target `report_verify`: a report and its certificate table, as a host hands them to a
//! guest, through parsing and full verification.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/report_verify.rs`) and the `cargo test`
//! replay of committed inputs (`verifier/tests/fuzz_regressions.rs`) with `#[path]`, so a
//! crash found by the fuzzer replays through exactly the same calls.
//!
//! Input layout: the first `REPORT_LEN` (1184) bytes are the report, the rest is the
//! certificate table. A shorter input is all report (and exercises the length check).

use snpkms_verifier::{offsets, Endorser, VersionWindow};
use snpkms_verifier::{verify_report_signature, verify_report_signature_reference};
use snpkms_verifier::{CertificateBundle, ParsedReport, Policy, TrustRoots, UnixTime, Verifier};
use std::sync::OnceLock;

/// 2026-06-01: inside the validity of the genuine AMD vectors and of the simulator's VCEKs, so
/// that seeds reach the signature and policy checks instead of stopping at expiry.
pub const AT: UnixTime = UnixTime(1_780_272_000);

/// The AMD roots plus the simulator's: genuine vectors and simulated evidence both verify, so
/// mutations of either reach every step.
pub fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut roots = TrustRoots::amd();
        snpkms_simulator::trust_simulator_root(&mut roots).expect("simulator root");
        Verifier::new(roots, Policy::default())
    })
}

/// `Ok` when the evidence verifies; `Err` says why not. Panics only on a broken invariant.
pub fn run(data: &[u8]) -> Result<(), String> {
    let (report, table) = data.split_at(data.len().min(snpkms_verifier::REPORT_LEN));

    // The widest version window, so every version's reserved-byte layout is parsed, not only
    // the versions the default policy admits.
    let any_version = VersionWindow {
        min: 0,
        max: u32::MAX,
    };
    let certs = CertificateBundle::from_cert_table(table).map_err(|e| e.to_string());
    if let Ok(parsed) = ParsedReport::parse(report, any_version) {
        // The signature covers the bytes as given: parsing must never rewrite them.
        assert_eq!(&parsed.raw()[..], report, "parse changed the report bytes");
        let hint = verifier().product_hint(&parsed).ok().flatten();
        // aws-lc-rs (what the verifier uses) and RustCrypto (the reference) must decide
        // alike on the signature of every report whose VCEK chain verifies.
        let chain = (certs.as_ref().ok())
            .and_then(|c| verifier().verify_chain(c, Endorser::Vcek, hint, AT).ok());
        if let Some(chain) = chain {
            assert_eq!(
                verify_report_signature(&parsed, chain.key()),
                verify_report_signature_reference(&parsed, chain.key()),
                "aws-lc-rs and p384 disagree on a report signature"
            );
        }
    }

    let certs = certs?;
    let verified = verifier()
        .verify(report, &certs, AT)
        .map_err(|e| e.to_string())?;
    // Whatever verifies must also pass the format check on its own.
    assert!(
        ParsedReport::parse(report, verifier().policy().version_window()).is_ok(),
        "a report verified that does not parse"
    );
    let at = offsets::REPORT_DATA;
    assert_eq!(verified.report_data[..], report[at..at + 64]);
    Ok(())
}
