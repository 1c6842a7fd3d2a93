//! Genuine AMD reports (testdata/amd, see its README for provenance): each verifies against the
//! compiled-in roots with the fields the manifest lists, and each tampering fails with its own
//! error.

use snpkms_verifier::offsets;
use snpkms_verifier::TcbComponent;
use snpkms_verifier::*;
use snpkms_verifier::{
    CertificateBundle, Policy, Product, TcbVersion, TrustRoots, UnixTime, Verifier, VerifyError,
};
use std::path::PathBuf;

/// 2026-06-01: inside every vector's certificate validity window.
const AT: UnixTime = UnixTime(1_780_272_000);

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/amd")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Vector {
    entry: serde_json::Value,
    report: Vec<u8>,
    certs: CertificateBundle,
}

fn vectors() -> Vec<Vector> {
    let manifest: Vec<serde_json::Value> =
        serde_json::from_slice(&testdata("manifest.json")).unwrap();
    manifest
        .into_iter()
        .map(|entry| {
            let report = testdata(entry["file"].as_str().unwrap());
            let certs =
                CertificateBundle::from_vcek(&testdata(entry["vcek"].as_str().unwrap())).unwrap();
            Vector {
                entry,
                report,
                certs,
            }
        })
        .collect()
}

fn vector(file: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.entry["file"] == file)
        .unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(TrustRoots::amd(), Policy::default())
}

fn verify(v: &Vector) -> Result<snpkms_verifier::VerifiedReport, VerifyError> {
    verifier().verify(&v.report, &v.certs, AT)
}

fn tcb_hex(t: TcbVersion, p: Product) -> String {
    hex::encode(t.encode(p))
}

#[test]
fn all_genuine_reports_verify_and_decode_as_the_manifest_says() {
    let all = vectors();
    assert_eq!(all.len(), 4);
    for v in &all {
        let e = &v.entry;
        let name = e["file"].as_str().unwrap();
        let r = verify(v).unwrap_or_else(|err| panic!("{name}: {err}"));
        let product: Product = e["product"].as_str().unwrap().parse().unwrap();
        assert_eq!(r.product, product, "{name}");
        assert_eq!(r.version as u64, e["version"].as_u64().unwrap(), "{name}");
        assert_eq!(
            r.guest_svn as u64,
            e["guest_svn"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(format!("{:#x}", r.policy.0), e["policy"], "{name}");
        assert_eq!(r.vmpl as u64, e["vmpl"].as_u64().unwrap(), "{name}");
        assert_eq!(format!("{:#x}", r.plat_info.0), e["plat_info"], "{name}");
        assert_eq!(hex::encode(r.report_data), e["report_data"], "{name}");
        assert_eq!(hex::encode(r.measurement), e["measurement"], "{name}");
        assert_eq!(hex::encode(r.host_data), e["host_data"], "{name}");
        assert_eq!(hex::encode(r.chip_id), e["chip_id"], "{name}");
        assert_eq!(tcb_hex(r.current_tcb, product), e["current_tcb"], "{name}");
        assert_eq!(
            tcb_hex(r.reported_tcb, product),
            e["reported_tcb"],
            "{name}"
        );
        assert_eq!(tcb_hex(r.launch_tcb, product), e["launch_tcb"], "{name}");
        let cpuid = r
            .cpuid
            .map_or("000000".into(), |(f, m, s)| hex::encode([f, m, s]));
        assert_eq!(cpuid, e["cpuid"], "{name}");
        assert_eq!(r.root, snpkms_verifier::RootOrigin::Amd);
    }
}

#[test]
fn decoding_agrees_with_the_sev_crate() {
    use sev::parser::ByteParser;
    for v in vectors() {
        let ours = verify(&v).unwrap();
        let theirs = sev::firmware::guest::AttestationReport::from_bytes(&v.report).unwrap();
        assert_eq!(ours.measurement, theirs.measurement);
        assert_eq!(ours.chip_id, theirs.chip_id);
        assert_eq!(ours.host_data, theirs.host_data);
        assert_eq!(ours.report_data, theirs.report_data);
        assert_eq!(ours.guest_svn, theirs.guest_svn);
        assert_eq!(ours.vmpl, theirs.vmpl);
        assert_eq!(ours.reported_tcb.snp, theirs.reported_tcb.snp);
        assert_eq!(ours.reported_tcb.microcode, theirs.reported_tcb.microcode);
        assert_eq!(ours.reported_tcb.bootloader, theirs.reported_tcb.bootloader);
        assert_eq!(ours.id_key_digest, theirs.id_key_digest);
    }
}

fn tampered(file: &str, offset: usize) -> Result<snpkms_verifier::VerifiedReport, VerifyError> {
    let mut v = vector(file);
    v.report[offset] ^= 0x01;
    verify(&v)
}

#[test]
fn measurement_byte_breaks_the_signature() {
    assert_eq!(
        tampered("ms-genoa-report.bin", offsets::MEASUREMENT + 5),
        Err(SignatureError::Invalid.into())
    );
}

#[test]
fn reserved_field_is_rejected_before_anything_else() {
    assert_eq!(
        tampered("ms-milan-report.bin", 0x4C),
        Err(FormatError::NonZeroReserved {
            field: "reserved after key_info",
            offset: 0x4C
        }
        .into())
    );
    assert_eq!(
        tampered("ms-milan-report.bin", 0x250),
        Err(FormatError::NonZeroReserved {
            field: "reserved after launch_tcb",
            offset: 0x250
        }
        .into())
    );
    assert_eq!(
        tampered("ms-turin-report.bin", 0x250),
        Err(FormatError::NonZeroReserved {
            field: "reserved after current_mit_vector",
            offset: 0x250
        }
        .into())
    );
}

#[test]
fn tcb_reserved_bytes_are_rejected_per_product_layout() {
    // Byte 3 of a Milan TCB is reserved; on Turin byte 3 is the SNP SPL and byte 5 is reserved.
    assert_eq!(
        tampered("ms-milan-report.bin", offsets::REPORTED_TCB + 3),
        Err(FormatError::TcbReserved {
            field: "reported_tcb",
            byte: 3,
            product: Product::Milan
        }
        .into())
    );
    assert_eq!(
        tampered("ms-turin-report.bin", offsets::LAUNCH_TCB + 5),
        Err(FormatError::TcbReserved {
            field: "launch_tcb",
            byte: 5,
            product: Product::Turin
        }
        .into())
    );
}

#[test]
fn unsigned_tail_and_signature_padding_must_be_zero() {
    assert_eq!(
        tampered("ms-genoa-report.bin", 0x400),
        Err(FormatError::NonZeroReserved {
            field: "unsigned tail 0x330..0x4A0",
            offset: 0x400
        }
        .into())
    );
    assert_eq!(
        tampered("ms-genoa-report.bin", offsets::SIGNATURE_R + 50),
        Err(FormatError::NonZeroReserved {
            field: "signature.r high bytes",
            offset: offsets::SIGNATURE_R + 50
        }
        .into())
    );
    assert_eq!(
        tampered("ms-genoa-report.bin", offsets::SIGNATURE_S + 71),
        Err(FormatError::NonZeroReserved {
            field: "signature.s high bytes",
            offset: offsets::SIGNATURE_S + 71
        }
        .into())
    );
    // A low byte of r is signed material of another kind: the signature no longer verifies.
    assert_eq!(
        tampered("ms-genoa-report.bin", offsets::SIGNATURE_R),
        Err(SignatureError::Invalid.into())
    );
}

#[test]
fn length_version_and_algorithm() {
    let v = vector("ms-milan-report.bin");
    for len in [0, 1183, 1185, 4096] {
        let mut bytes = v.report.clone();
        bytes.resize(len, 0);
        assert_eq!(
            verifier().verify(&bytes, &v.certs, AT),
            Err(FormatError::Length { actual: len }.into())
        );
    }
    let mut bytes = v.report.clone();
    bytes[0] = 6;
    assert_eq!(
        verifier().verify(&bytes, &v.certs, AT),
        Err(FormatError::Version {
            version: 6,
            min: 2,
            max: 5
        }
        .into())
    );
    let strict = Verifier::new(
        TrustRoots::amd(),
        Policy {
            min_report_version: 3,
            ..Policy::default()
        },
    );
    let v2 = vector("milan-v2-report.bin");
    assert!(matches!(
        strict.verify(&v2.report, &v2.certs, AT),
        Err(VerifyError::Format(FormatError::Version { version: 2, .. }))
    ));
    let mut bytes = v.report.clone();
    bytes[offsets::SIG_ALGO] = 2;
    assert_eq!(
        verifier().verify(&bytes, &v.certs, AT),
        Err(FormatError::SignatureAlgorithm { sig_algo: 2 }.into())
    );
}

#[test]
fn vcek_of_another_chip_is_rejected() {
    let mut v = vector("ms-milan-report.bin");
    v.certs = vector("milan-v2-report.bin").certs;
    assert_eq!(verify(&v), Err(BindingError::ChipIdMismatch.into()));
}

#[test]
fn vcek_of_another_product_is_rejected() {
    let mut v = vector("ms-genoa-report.bin");
    v.certs = vector("ms-milan-report.bin").certs;
    assert_eq!(
        verify(&v),
        Err(ProductError::Mismatch {
            report: Product::Genoa,
            certificate: Product::Milan
        }
        .into())
    );
}

#[test]
fn a_chain_from_another_product_root_is_rejected() {
    let chain = |p: &str| testdata(&format!("roots/{p}-ask-ark.pem"));
    // The right VCEK with Milan's ASK and ARK attached to a Genoa report.
    let mut v = vector("ms-genoa-report.bin");
    v.certs = v.certs.clone().with_chain_pem(&chain("milan")).unwrap();
    assert_eq!(
        verify(&v),
        Err(CertChainError::UntrustedRoot {
            product: Product::Genoa
        }
        .into())
    );
    // Milan's ARK cannot even be pinned as Genoa's root: its name says whose it is.
    let mut roots = TrustRoots::empty();
    assert_eq!(
        roots
            .add_pem(&[Product::Genoa], "swapped", &chain("milan"))
            .err(),
        Some(RootError::CertChain(CertChainError::CommonName {
            which: "ARK",
            field: "subject",
            expected: "ARK-Genoa".into(),
            found: Some("ARK-Milan".into()),
        }))
    );
    let v = vector("ms-genoa-report.bin");
    // With no root for the product at all.
    let only_milan = {
        let mut r = TrustRoots::empty();
        r.add_pem(&[Product::Milan], "milan", &chain("milan"))
            .unwrap();
        Verifier::new(r, Policy::default())
    };
    assert_eq!(
        only_milan.verify(&v.report, &v.certs, AT),
        Err(CertChainError::NoRootForProduct {
            product: Product::Genoa
        }
        .into())
    );
}

#[test]
fn supplying_the_genuine_chain_explicitly_still_verifies() {
    let mut v = vector("ms-turin-report.bin");
    v.certs = v
        .certs
        .clone()
        .with_chain_pem(&testdata("roots/turin-ask-ark.pem"))
        .unwrap();
    assert!(verify(&v).is_ok());
    // Round trip through a certificate table, as evidence travels over the wire.
    let table = v.certs.to_cert_table();
    v.certs = CertificateBundle::from_cert_table(&table).unwrap();
    assert!(verify(&v).is_ok());
}

#[test]
fn certificate_validity_is_checked_at_the_given_time() {
    let v = vector("ms-milan-report.bin");
    // 2035: the VCEK (valid until 2033-02-05) has expired.
    let later = verifier().verify(&v.report, &v.certs, UnixTime(2_051_222_400));
    assert!(
        matches!(
            later,
            Err(VerifyError::CertChain(CertChainError::Expired {
                which: "VCEK",
                ..
            }))
        ),
        "{later:?}"
    );
    // 2025: the VCEK (issued 2026-02-05) is not valid yet.
    let earlier = verifier().verify(&v.report, &v.certs, UnixTime(1_735_689_600));
    assert!(
        matches!(
            earlier,
            Err(VerifyError::CertChain(CertChainError::NotYetValid {
                which: "VCEK",
                ..
            }))
        ),
        "{earlier:?}"
    );
}

#[test]
fn v2_product_comes_from_the_vcek_issuer_or_configuration() {
    let v = vector("milan-v2-report.bin");
    assert_eq!(verify(&v).unwrap().product, Product::Milan);
    let configured_wrong = Verifier::new(
        TrustRoots::amd(),
        Policy {
            product_for_v2: Some(Product::Genoa),
            ..Policy::default()
        },
    );
    assert_eq!(
        configured_wrong.verify(&v.report, &v.certs, AT),
        Err(ProductError::Mismatch {
            report: Product::Genoa,
            certificate: Product::Milan
        }
        .into())
    );
}

#[test]
fn minimum_tcb_is_applied_per_product() {
    let v = vector("ms-milan-report.bin"); // Milan TCB bl=4 tee=0 snp=24 ucode=219
    let policy = |min: TcbVersion, product: Product| {
        Verifier::new(
            TrustRoots::amd(),
            Policy {
                min_tcb: [(product, min)].into(),
                ..Policy::default()
            },
        )
    };
    let at_report = TcbVersion {
        bootloader: 4,
        tee: 0,
        snp: 24,
        microcode: 219,
        fmc: 0,
    };
    assert!(policy(at_report, Product::Milan)
        .verify(&v.report, &v.certs, AT)
        .is_ok());
    let above = TcbVersion {
        microcode: 220,
        ..at_report
    };
    assert!(matches!(
        policy(above, Product::Milan).verify(&v.report, &v.certs, AT),
        Err(VerifyError::Policy(PolicyError::TcbBelowMinimum {
            which: "reported_tcb",
            component: TcbComponent::Microcode,
            value: 219,
            min: 220,
            ..
        }))
    ));
    // A Genoa minimum does not apply to a Milan report.
    assert!(policy(above, Product::Genoa)
        .verify(&v.report, &v.certs, AT)
        .is_ok());
}

#[test]
fn a_vcek_report_relabelled_as_vlek_signed_needs_a_vlek_chain() {
    let mut v = vector("ms-genoa-report.bin");
    v.report[offsets::KEY_INFO] |= 1 << 2;
    assert_eq!(verify(&v), Err(CertError::MissingVlek.into()));
    // The VCEK offered as the VLEK does not pass for one: its issuer is an ASK.
    let as_vlek = CertificateBundle {
        vlek: v.certs.vcek.clone(),
        ..CertificateBundle::default()
    };
    assert!(matches!(
        verifier().verify(&v.report, &as_vlek, AT),
        Err(VerifyError::Product(_) | VerifyError::CertChain(_))
    ));
}

#[test]
fn missing_and_garbage_certificates() {
    let v = vector("ms-genoa-report.bin");
    assert_eq!(
        verifier().verify(&v.report, &CertificateBundle::default(), AT),
        Err(CertError::MissingVcek.into())
    );
    assert!(matches!(
        CertificateBundle::from_vcek(b"not a certificate"),
        Err(CertError::Decode { which: "VCEK", .. })
    ));
    let mut certs = v.certs.clone();
    certs.vcek.as_mut().unwrap().truncate(100);
    assert!(matches!(
        verifier().verify(&v.report, &certs, AT),
        Err(VerifyError::Certificate(CertError::Decode {
            which: "VCEK",
            ..
        }))
    ));
}

#[test]
fn a_tampered_vcek_certificate_fails_the_ask_signature() {
    let mut v = vector("ms-milan-report.bin");
    let chip_id = verify(&v).unwrap().chip_id;
    let der = v.certs.vcek.as_mut().unwrap();
    // Change the hwID inside the certificate: it still parses, but the ASK never signed it.
    let at = der.windows(64).position(|w| w == chip_id).unwrap();
    der[at] ^= 0x01;
    assert_eq!(
        verify(&v),
        Err(CertChainError::VcekNotSignedByAsk {
            product: Product::Milan
        }
        .into())
    );
}

/// `(r, n - s)` of a report's signature: the other valid ECDSA signature of the same bytes.
fn malleate(report: &[u8]) -> Vec<u8> {
    use p384::elliptic_curve::PrimeField;
    let len = 48;
    let s_at = offsets::SIGNATURE_S;
    let mut s_be: [u8; 48] = report[s_at..s_at + len].try_into().unwrap();
    s_be.reverse();
    let s = Option::<p384::Scalar>::from(p384::Scalar::from_repr(s_be.into())).unwrap();
    let mut twin_be: [u8; 48] = (-s).to_repr().into();
    twin_be.reverse();
    let mut twin = report.to_vec();
    twin[s_at..s_at + len].copy_from_slice(&twin_be);
    twin
}

fn is_high_s(report: &[u8]) -> bool {
    let s_at = offsets::SIGNATURE_S;
    let mut s_be: [u8; 48] = report[s_at..s_at + 48].try_into().unwrap();
    s_be.reverse();
    // n / 2 for P-384, big-endian.
    let half_n =
        hex::decode("7fffffffffffffffffffffffffffffffffffffffffffffffe3b1a6c0fa1b96efac0d06d9245853bd76760cb5666294b9")
            .unwrap();
    s_be.as_slice() > half_n.as_slice()
}

#[test]
fn genuine_high_s_signatures_and_their_low_s_twins_both_verify() {
    // ECDSA is malleable and AMD's firmware does not normalise S: refusing high S would
    // refuse real hardware, so nothing may rely on a report's bytes being unique (replays are
    // stopped by the nonce, see core's tests).
    let mut high = 0;
    for v in vectors() {
        let name = v.entry["file"].as_str().unwrap().to_string();
        high += usize::from(is_high_s(&v.report));
        assert!(verify(&v).is_ok(), "{name}");
        let twin = malleate(&v.report);
        assert_ne!(twin, v.report);
        assert_ne!(is_high_s(&twin), is_high_s(&v.report), "{name}");
        let verified = verifier()
            .verify(&twin, &v.certs, AT)
            .unwrap_or_else(|e| panic!("{name}: the (r, n - s) twin must verify: {e}"));
        assert_eq!(verified.report_data, verify(&v).unwrap().report_data);
    }
    assert!(
        high > 0,
        "at least one genuine vector carries a high-S signature"
    );
}
