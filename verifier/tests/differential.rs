//! aws-lc-rs (what the verifier uses for the report signature) and RustCrypto's `p384` (the
//! reference) decide alike: on every genuine AMD report (VCEK- and VLEK-signed, high and low
//! S), on simulated reports of every product, and on every tampering of them: each byte of the
//! signed part, r and s flipped, swapped, zero, the group order, the (r, n - s) twin, and
//! another chip's key. Also replayed on fuzzed inputs by the `report_verify` fuzz target.

use p384::elliptic_curve::PrimeField;
use snpkms_simulator::{trust_simulator_root, SimAuthority, SimulatedPlatform};
use snpkms_verifier::*;
use std::path::PathBuf;
use std::sync::Arc;

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/amd")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A report and the key its chain vouches for.
struct Signed {
    name: String,
    report: Vec<u8>,
    key: ReportKey,
}

fn chain_key(
    verifier: &Verifier,
    certs: &CertificateBundle,
    endorser: Endorser,
    product: Product,
    at: UnixTime,
) -> ReportKey {
    (verifier.verify_chain(certs, endorser, Some(product), at))
        .unwrap_or_else(|e| panic!("{product}: {e}"))
        .key()
        .clone()
}

fn genuine() -> Vec<Signed> {
    let amd = Verifier::new(TrustRoots::amd(), Policy::default());
    let manifest: Vec<serde_json::Value> =
        serde_json::from_slice(&testdata("manifest.json")).unwrap();
    let mut all: Vec<Signed> = (manifest.iter())
        .map(|entry| {
            let certs =
                CertificateBundle::from_vcek(&testdata(entry["vcek"].as_str().unwrap())).unwrap();
            let product: Product = entry["product"].as_str().unwrap().parse().unwrap();
            Signed {
                name: entry["file"].as_str().unwrap().to_string(),
                report: testdata(entry["file"].as_str().unwrap()),
                key: chain_key(
                    &amd,
                    &certs,
                    Endorser::Vcek,
                    product,
                    UnixTime(1_780_272_000),
                ),
            }
        })
        .collect();
    let vlek = CertificateBundle::from_endorsement(&testdata("vlek/milan-vlek.der")).unwrap();
    all.push(Signed {
        name: "vlek/milan-vlek-report.bin".into(),
        report: testdata("vlek/milan-vlek-report.bin"),
        key: chain_key(
            &amd,
            &vlek,
            Endorser::Vlek,
            Product::Milan,
            UnixTime(1_735_000_000),
        ),
    });
    all
}

fn simulated() -> Vec<Signed> {
    let authority = Arc::new(SimAuthority::load());
    let mut roots = TrustRoots::amd();
    trust_simulator_root(&mut roots).unwrap();
    let verifier = Verifier::new(roots, Policy::default());
    (Product::ALL.into_iter())
        .map(|product| {
            let platform = SimulatedPlatform::new(authority.clone(), product, b"chip-A");
            let mut fields = platform.default_fields();
            fields.measurement = [0x42; 48];
            let certs = platform.certificates(fields.reported_tcb);
            Signed {
                name: format!("simulated {product}"),
                report: platform.sign(&fields),
                key: chain_key(
                    &verifier,
                    &certs,
                    Endorser::Vcek,
                    product,
                    UnixTime(1_780_272_000),
                ),
            }
        })
        .collect()
}

fn any_version() -> VersionWindow {
    VersionWindow {
        min: 0,
        max: u32::MAX,
    }
}

/// Both libraries' answers for `report` under `key`; None if the report does not parse (its
/// signature is then never checked).
fn both(report: &[u8], key: &ReportKey) -> Option<Result<(), SignatureError>> {
    let parsed = ParsedReport::parse(report, any_version()).ok()?;
    let fast = verify_report_signature(&parsed, key);
    let reference = verify_report_signature_reference(&parsed, key);
    assert_eq!(fast, reference, "aws-lc-rs and p384 disagree");
    Some(fast)
}

/// Writes a big-endian scalar into a little-endian, 72-byte report field.
fn put_scalar(report: &mut [u8], at: usize, be: &[u8; 48]) {
    let mut le = *be;
    le.reverse();
    report[at..at + 48].copy_from_slice(&le);
}

fn scalar(report: &[u8], at: usize) -> [u8; 48] {
    let mut be: [u8; 48] = report[at..at + 48].try_into().unwrap();
    be.reverse();
    be
}

const ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

#[test]
fn both_libraries_accept_every_genuine_and_simulated_report() {
    for s in genuine().iter().chain(&simulated()) {
        assert_eq!(both(&s.report, &s.key), Some(Ok(())), "{}", s.name);
    }
}

#[test]
fn both_libraries_refuse_every_tampering_alike() {
    let all: Vec<Signed> = genuine().into_iter().chain(simulated()).collect();
    let (r_at, s_at) = (offsets::SIGNATURE_R, offsets::SIGNATURE_S);
    let order: [u8; 48] = hex::decode(ORDER).unwrap().try_into().unwrap();
    let mut refused = 0;
    for (i, s) in all.iter().enumerate() {
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        // Every byte of the signed part on the first report, every 16th on the others.
        let (step, bits): (usize, &[u8]) = if i == 0 {
            (1, &[0x01])
        } else {
            (16, &[0x01, 0x80])
        };
        for at in (0..0x2A0).step_by(step) {
            for &bit in bits {
                let mut t = s.report.clone();
                t[at] ^= bit;
                cases.push((format!("byte {at:#x} ^ {bit:#04x}"), t));
            }
        }
        for at in (0..48).step_by(5) {
            for (field, base) in [("r", r_at), ("s", s_at)] {
                let mut t = s.report.clone();
                t[base + at] ^= 0x10;
                cases.push((format!("{field} byte {at}"), t));
            }
        }
        let (r, sv) = (scalar(&s.report, r_at), scalar(&s.report, s_at));
        let mut swapped = s.report.clone();
        put_scalar(&mut swapped, r_at, &sv);
        put_scalar(&mut swapped, s_at, &r);
        cases.push(("r and s swapped".into(), swapped));
        for (field, at) in [("r", r_at), ("s", s_at)] {
            for (what, value) in [("zero", [0u8; 48]), ("the group order", order)] {
                let mut t = s.report.clone();
                put_scalar(&mut t, at, &value);
                cases.push((format!("{field} = {what}"), t));
            }
        }
        for (what, t) in &cases {
            if let Some(answer) = both(t, &s.key) {
                assert!(answer.is_err(), "{}: {what} verified", s.name);
                refused += 1;
            }
        }
        // The other valid signature of the same bytes verifies with both.
        let n_minus_s = -Option::<p384::Scalar>::from(p384::Scalar::from_repr(sv.into())).unwrap();
        let mut twin = s.report.clone();
        put_scalar(&mut twin, s_at, &n_minus_s.to_repr().into());
        assert_eq!(both(&twin, &s.key), Some(Ok(())), "{}: (r, n - s)", s.name);
        // Another chip's key refuses it.
        let other = &all[(i + 1) % all.len()];
        assert_eq!(
            both(&s.report, &other.key),
            Some(Err(SignatureError::Invalid)),
            "{} under {}'s key",
            s.name,
            other.name
        );
    }
    assert!(
        refused > 1000,
        "only {refused} tamperings reached the signature"
    );
}
