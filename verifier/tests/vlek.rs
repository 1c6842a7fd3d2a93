//! The genuine VLEK-signed report (AWS, Milan) against AMD's pinned ASVK chains:
//! `testdata/amd/vlek/README.md` says where it comes from.

use snpkms_verifier::*;
use std::path::PathBuf;

/// 2024-12-23: inside the VLEK certificate's year of validity (2024-12-10 to 2025-12-10).
const AT: UnixTime = UnixTime(1_735_000_000);
const AWS_CSP: &str = "CN=cc-us-east-2.amazonaws.com";

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/amd/vlek")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn report() -> Vec<u8> {
    testdata("milan-vlek-report.bin")
}

fn vlek_only() -> CertificateBundle {
    CertificateBundle::from_endorsement(&testdata("milan-vlek.der")).unwrap()
}

/// What this report needs: VLEKs accepted, VMPL 1 (the report is requested from VMPL 1),
/// provisional firmware (its committed TCB, microcode 0xdb, is older than its current one, 0xdc).
fn accepting() -> Policy {
    Policy {
        allow_vlek: true,
        max_vmpl: 1,
        allow_provisional_firmware: true,
        ..Policy::default()
    }
}

fn verify_with(policy: Policy, certs: &CertificateBundle) -> Result<VerifiedReport, VerifyError> {
    Verifier::new(TrustRoots::amd(), policy).verify(&report(), certs, AT)
}

#[test]
fn the_genuine_vlek_report_verifies_against_the_pinned_asvk() {
    let bundle = vlek_only();
    assert!(bundle.vlek.is_some() && bundle.vcek.is_none());
    let r = verify_with(accepting(), &bundle).unwrap();
    assert_eq!(r.endorser, Endorser::Vlek);
    assert_eq!(r.product, Product::Milan);
    assert_eq!(r.csp_id.as_deref(), Some(AWS_CSP));
    assert_eq!(r.vmpl, 1);
    assert_eq!(r.root, RootOrigin::Amd);
    // No certificate names the chip: no device identity, and none reaches the registry.
    assert_eq!(r.device_chip_id(), None);
    let boot = BootInfo::for_kms(&r);
    assert_eq!(boot.chip_id, None);
    assert!(boot.chip_id_bytes().is_empty());
}

#[test]
fn vlek_reports_are_refused_unless_the_policy_accepts_them() {
    assert_eq!(
        verify_with(Policy::default(), &vlek_only()),
        Err(PolicyError::VlekNotAllowed.into())
    );
    // Accepted VLEKs still meet the rest of the policy: this one is at VMPL 1.
    let vmpl0 = Policy {
        max_vmpl: 0,
        ..accepting()
    };
    assert!(matches!(
        verify_with(vmpl0, &vlek_only()),
        Err(VerifyError::Policy(PolicyError::Vmpl { vmpl: 1, max: 0 }))
    ));
}

#[test]
fn the_policy_can_name_the_cloud_providers_it_accepts() {
    let only = |ids: &[&str]| Policy {
        allowed_csp_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..accepting()
    };
    assert!(verify_with(only(&[AWS_CSP]), &vlek_only()).is_ok());
    assert_eq!(
        verify_with(only(&["CN=cc-eu-west-1.example.com"]), &vlek_only()),
        Err(PolicyError::CspNotAllowed {
            csp_id: AWS_CSP.into()
        }
        .into())
    );
    // A provider list without VLEKs accepted is a mistake, refused when the policy loads.
    let mistaken = Policy {
        allow_vlek: false,
        ..only(&[AWS_CSP])
    };
    assert!(mistaken.validate().is_err());
}

#[test]
fn the_vlek_expired_after_its_year() {
    let later = UnixTime(1_780_272_000);
    let err = Verifier::new(TrustRoots::amd(), accepting())
        .verify(&report(), &vlek_only(), later)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CertChain(CertChainError::Expired { which: "VLEK", .. })
        ),
        "{err}"
    );
}

#[test]
fn tampering_with_the_vlek_report_breaks_its_signature() {
    let mut tampered = report();
    tampered[offsets::REPORT_DATA] ^= 1;
    assert_eq!(
        Verifier::new(TrustRoots::amd(), accepting()).verify(&tampered, &vlek_only(), AT),
        Err(SignatureError::Invalid.into())
    );
}

#[test]
fn a_vlek_report_needs_a_vlek_and_an_asvk() {
    // A VCEK bundle: no VLEK at all.
    let vcek = CertificateBundle::from_endorsement(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/amd/ms-milan-vcek.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify_with(accepting(), &vcek),
        Err(CertError::MissingVlek.into())
    );
    // The Milan ASK offered as the VLEK's issuer: AMD signed it, but it issues VCEKs.
    let chain = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/amd/roots/milan-ask-ark.pem"),
    )
    .unwrap();
    let ask = CertificateBundle::default()
        .with_chain_pem(&chain)
        .unwrap()
        .ask;
    let wrong_issuer = CertificateBundle {
        asvk: ask,
        ..vlek_only()
    };
    assert_eq!(
        verify_with(accepting(), &wrong_issuer),
        Err(CertChainError::IssuerMismatch {
            which: "VLEK",
            issuer: "ASVK"
        }
        .into())
    );
    // Another product's ASVK is not signed by the Milan ARK.
    let genoa = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/amd/roots/genoa-asvk-ark.pem"),
    )
    .unwrap();
    let genoa_asvk = CertificateBundle::default().with_chain_pem(&genoa).unwrap();
    assert!(genoa_asvk.asvk.is_some() && genoa_asvk.ask.is_none());
    let foreign = CertificateBundle {
        asvk: genoa_asvk.asvk,
        ..vlek_only()
    };
    assert_eq!(
        verify_with(accepting(), &foreign),
        Err(CertChainError::AsvkNotSignedByArk {
            product: Product::Milan
        }
        .into())
    );
}

#[test]
fn a_pem_bundle_with_the_asvk_and_ark_verifies_and_survives_a_certificate_table() {
    let chain = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/amd/roots/milan-asvk-ark.pem"),
    )
    .unwrap();
    let vlek_pem = der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &testdata("milan-vlek.der"),
    )
    .unwrap();
    let bundle_pem = [vlek_pem.as_bytes(), &chain].concat();
    let bundle = CertificateBundle::from_endorsement(&bundle_pem).unwrap();
    assert!(bundle.vlek.is_some() && bundle.asvk.is_some() && bundle.ark.is_some());
    assert!(verify_with(accepting(), &bundle).is_ok());
    // Through a host's certificate table (the ASVK under the ASK's GUID) and back.
    let table = CertificateBundle::from_cert_table(&bundle.to_cert_table()).unwrap();
    assert_eq!(table, bundle);
    assert!(verify_with(accepting(), &table).is_ok());
}

#[test]
fn a_cert_chain_download_is_checked_on_its_own() {
    let v = Verifier::new(TrustRoots::amd(), Policy::default());
    let chain = |file: &str| {
        let pem = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/amd/roots")
                .join(file),
        )
        .unwrap();
        CertificateBundle::default().with_chain_pem(&pem).unwrap()
    };
    assert_eq!(
        v.check_issuer_chain(&chain("milan-ask-ark.pem"), Endorser::Vcek, Product::Milan),
        Ok(())
    );
    assert_eq!(
        v.check_issuer_chain(&chain("milan-asvk-ark.pem"), Endorser::Vlek, Product::Milan),
        Ok(())
    );
    // Genoa's chain served at Milan's path: its ARK is not Milan's pinned root.
    assert_eq!(
        v.check_issuer_chain(&chain("genoa-ask-ark.pem"), Endorser::Vcek, Product::Milan),
        Err(CertChainError::UntrustedRoot {
            product: Product::Milan
        }
        .into())
    );
    // The ASVK chain where the ASK chain belongs holds no ASK.
    assert!(v
        .check_issuer_chain(&chain("milan-asvk-ark.pem"), Endorser::Vcek, Product::Milan)
        .is_err());
    // Genoa's ASK with Milan's ARK: not signed by it.
    let mixed = CertificateBundle {
        ark: chain("milan-ask-ark.pem").ark,
        ..chain("genoa-ask-ark.pem")
    };
    assert_eq!(
        v.check_issuer_chain(&mixed, Endorser::Vcek, Product::Milan),
        Err(CertChainError::AskNotSignedByArk {
            product: Product::Milan
        }
        .into())
    );
}
