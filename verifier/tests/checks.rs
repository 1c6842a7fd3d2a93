//! The checks go-sev-guest's `verify` and `validate` make that a relying party expects, each
//! shown to bite on simulated evidence (which follows AMD's profile, see `faithful.rs`) and to
//! pass on the defaults where genuine hardware passes.

use snpkms_simulator::{
    trust_simulator_root, ProfileDeviation, ReportFields, SimAuthority, SimulatedPlatform,
};
use snpkms_verifier::{
    Abi, CertChainError, FirmwareVersion, GuestPolicy, HexBytes, KeyInfo, PlatformInfo, Policy,
    PolicyError, Product, RootError, TcbComponent, TrustRoots, VerifiedReport, Verifier,
    VerifyError,
};
use snpkms_verifier::{BindingError, TcbVersion};
use std::sync::Arc;

mod common;
use common::{authority, AT};

fn verifier(policy: Policy) -> Verifier {
    let mut roots = TrustRoots::amd();
    trust_simulator_root(&mut roots).unwrap();
    Verifier::new(roots, policy)
}

fn verify_on(
    p: &SimulatedPlatform,
    mutate: impl FnOnce(&mut ReportFields),
    policy: Policy,
) -> Result<VerifiedReport, VerifyError> {
    let mut fields = p.default_fields();
    mutate(&mut fields);
    let report = p.sign(&fields);
    verifier(policy).verify(&report, &p.certificates(fields.reported_tcb), AT)
}

fn case(
    mutate: impl FnOnce(&mut ReportFields),
    policy: Policy,
) -> Result<VerifiedReport, VerifyError> {
    let p = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A");
    verify_on(&p, mutate, policy)
}

fn policy_error(r: Result<VerifiedReport, VerifyError>) -> PolicyError {
    match r {
        Err(VerifyError::Policy(e)) => e,
        other => panic!(
            "expected a policy refusal, got {:?}",
            other.map(|r| r.product)
        ),
    }
}

#[test]
fn the_defaults_accept_what_the_simulator_makes_like_hardware() {
    for product in Product::ALL {
        let p = SimulatedPlatform::new(authority(), product, b"chip-A");
        let r = verify_on(&p, |_| {}, Policy::default()).expect("default evidence verifies");
        assert_eq!(r.product, product);
    }
}

#[test]
fn provisional_firmware_is_refused_unless_allowed() {
    let d = Policy::default;
    let allow = || Policy {
        allow_provisional_firmware: true,
        ..Policy::default()
    };
    let older_committed = |f: &mut ReportFields| {
        f.committed_tcb = TcbVersion {
            microcode: f.current_tcb.microcode - 1,
            ..f.current_tcb
        }
    };
    assert!(matches!(
        policy_error(case(older_committed, d())),
        PolicyError::ProvisionalFirmware { what: "TCB", .. }
    ));
    assert!(case(older_committed, allow()).is_ok());

    let newer_build = |f: &mut ReportFields| f.current_version.build += 1;
    assert!(matches!(
        policy_error(case(newer_build, d())),
        PolicyError::ProvisionalFirmware {
            what: "firmware version",
            ..
        }
    ));
    assert!(case(newer_build, allow()).is_ok());

    // A VCEK (the reported TCB) above the TCB the platform runs: refused even when
    // provisional firmware is allowed.
    let p = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A");
    let current = p.tcb();
    let above = TcbVersion {
        snp: current.snp + 1,
        ..current
    };
    let raised = |f: &mut ReportFields| f.reported_tcb = above;
    assert_eq!(
        policy_error(verify_on(&p, raised, allow())),
        PolicyError::ReportedAboveCurrent {
            component: TcbComponent::Snp,
            reported: above.snp,
            current: current.snp,
        }
    );
}

#[test]
fn minimum_firmware_build_applies_to_current_and_committed() {
    let build = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A")
        .default_fields()
        .current_version
        .build;
    let policy = |min: u8| Policy {
        min_build: [(Product::Genoa, min)].into(),
        allow_provisional_firmware: true,
        ..Policy::default()
    };
    assert!(case(|_| {}, policy(build)).is_ok());
    assert_eq!(
        policy_error(case(|_| {}, policy(build + 1))),
        PolicyError::BuildTooOld {
            which: "current",
            product: Product::Genoa,
            build,
            min: build + 1,
        }
    );
    let older_committed = |f: &mut ReportFields| {
        f.committed_version = FirmwareVersion {
            build: build - 1,
            ..f.committed_version
        }
    };
    assert!(matches!(
        policy_error(case(older_committed, policy(build))),
        PolicyError::BuildTooOld {
            which: "committed",
            ..
        }
    ));
    // Another product's minimum does not apply.
    assert!(case(
        |_| {},
        Policy {
            min_build: [(Product::Milan, 255)].into(),
            ..Policy::default()
        }
    )
    .is_ok());
}

#[test]
fn the_guest_policy_abi_is_a_floor_and_below_the_firmware() {
    let abi = |major: u64, minor: u64| {
        move |f: &mut ReportFields| f.policy = (f.policy & !0xffff) | major << 8 | minor
    };
    let min = Policy {
        min_guest_policy_abi: Abi {
            major: 1,
            minor: 51,
        },
        ..Policy::default()
    };
    assert!(case(abi(1, 51), min.clone()).is_ok());
    assert!(matches!(
        policy_error(case(abi(1, 50), min)),
        PolicyError::GuestPolicyAbiTooOld {
            major: 1,
            minor: 50,
            ..
        }
    ));
    // The simulated firmware is 1.55: a guest requiring 1.56 could not have launched on it.
    assert!(matches!(
        policy_error(case(abi(1, 56), Policy::default())),
        PolicyError::GuestPolicyAbiAboveFirmware { .. }
    ));
}

#[test]
fn guest_policy_bits_are_required_or_refused() {
    let d = Policy::default;
    let set = |bit: u64| move |f: &mut ReportFields| f.policy |= bit;
    assert_eq!(
        policy_error(case(set(GuestPolicy::CXL_ALLOW), d())),
        PolicyError::CxlAllowed
    );
    assert!(case(
        set(GuestPolicy::CXL_ALLOW),
        Policy {
            allow_cxl: true,
            ..d()
        }
    )
    .is_ok());
    type Require = fn(&mut Policy);
    let requirements: [(Require, u64, &str); 3] = [
        (
            |p| p.require_mem_aes_256_xts = true,
            GuestPolicy::MEM_AES_256_XTS,
            "MEM_AES_256_XTS",
        ),
        (
            |p| p.require_page_swap_disable = true,
            GuestPolicy::PAGE_SWAP_DISABLE,
            "PAGE_SWAP_DISABLE",
        ),
        (
            |p| p.require_rapl_disabled = true,
            GuestPolicy::RAPL_DIS,
            "RAPL_DIS",
        ),
    ];
    for (require, bit, name) in requirements {
        let mut policy = d();
        require(&mut policy);
        assert_eq!(
            policy_error(case(|_| {}, policy.clone())),
            PolicyError::GuestPolicyBitMissing(name)
        );
        // RAPL_DIS in the guest policy needs the platform to report it too.
        let with_bit = move |f: &mut ReportFields| {
            f.policy |= bit;
            f.plat_info |= PlatformInfo::RAPL_DIS;
        };
        assert!(case(with_bit, policy).is_ok(), "{name}");
    }
    let mut hiding = d();
    hiding.require_ciphertext_hiding = true;
    assert_eq!(
        policy_error(case(|_| {}, hiding.clone())),
        PolicyError::GuestPolicyBitMissing("CIPHERTEXT_HIDING_DRAM")
    );
    let hidden = |f: &mut ReportFields| {
        f.policy |= GuestPolicy::CIPHERTEXT_HIDING;
        f.plat_info |= PlatformInfo::CIPHERTEXT_HIDING_EN;
    };
    assert!(case(hidden, hiding).is_ok());
}

#[test]
fn platform_features_are_required_or_refused() {
    let d = Policy::default;
    let clear = |bit: u64| move |f: &mut ReportFields| f.plat_info &= !bit;
    type Require = fn(&mut Policy);
    let requirements: [(Require, u64, &str); 3] = [
        (|p| p.require_tsme = true, PlatformInfo::TSME_EN, "TSME_EN"),
        (|p| p.require_ecc = true, PlatformInfo::ECC_EN, "ECC_EN"),
        (
            |p| p.require_alias_check_complete = true,
            PlatformInfo::ALIAS_CHECK_COMPLETE,
            "ALIAS_CHECK_COMPLETE",
        ),
    ];
    for (require, bit, name) in requirements {
        let mut policy = d();
        require(&mut policy);
        assert_eq!(
            policy_error(case(clear(bit), policy.clone())),
            PolicyError::PlatformFeatureMissing(name)
        );
        let set = move |f: &mut ReportFields| f.plat_info |= bit;
        assert!(case(set, policy).is_ok(), "{name}");
    }
    let tio = |f: &mut ReportFields| f.plat_info |= PlatformInfo::TIO_EN;
    assert!(case(tio, d()).is_ok());
    assert_eq!(
        policy_error(case(
            tio,
            Policy {
                allow_tio: false,
                ..d()
            }
        )),
        PolicyError::TioEnabled
    );
}

#[test]
fn mitigation_vectors_need_version_5_and_the_required_bits() {
    let turin = SimulatedPlatform::new(authority(), Product::Turin, b"chip-A");
    let genoa = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A");
    let require = |launch: u64, current: u64| Policy {
        required_launch_mit_vector: launch,
        required_current_mit_vector: current,
        ..Policy::default()
    };
    // Turin reports (version 5) carry 0x3f, as genuine ones do.
    assert!(verify_on(&turin, |_| {}, require(0x3f, 0x3f)).is_ok());
    assert_eq!(
        policy_error(verify_on(
            &turin,
            |f| f.mit_vectors = (0x3f, 0x1f),
            require(0, 0x20)
        )),
        PolicyError::MitigationMissing {
            which: "current",
            found: 0x1f,
            missing: 0x20
        }
    );
    assert_eq!(
        policy_error(verify_on(
            &turin,
            |f| f.mit_vectors = (0x0f, 0x3f),
            require(0x10, 0)
        )),
        PolicyError::MitigationMissing {
            which: "launch",
            found: 0x0f,
            missing: 0x10
        }
    );
    // A version 3 report has no vectors: a requirement refuses it.
    assert!(matches!(
        policy_error(verify_on(&genoa, |_| {}, require(1, 0))),
        PolicyError::MitigationMissing {
            which: "launch",
            found: 0,
            ..
        }
    ));
}

#[test]
fn identity_fields_must_match_the_policy() {
    let id_key = [0x11; 48];
    let author = [0x22; 48];
    let signed = move |f: &mut ReportFields| {
        f.id_key_digest = id_key;
        f.author_key_digest = author;
        f.key_info |= KeyInfo::AUTHOR_KEY_EN;
        f.family_id = [3; 16];
        f.image_id = [4; 16];
    };
    let strict = Policy {
        trusted_id_key_digests: vec![HexBytes([0x99; 48]), HexBytes(id_key)],
        trusted_author_key_digests: vec![HexBytes(author)],
        family_id: Some(HexBytes([3; 16])),
        image_id: Some(HexBytes([4; 16])),
        report_id_ma: Some(HexBytes([0xff; 32])),
        ..Policy::default()
    };
    assert!(case(signed, strict.clone()).is_ok());
    assert!(matches!(
        policy_error(case(
            |f| {
                signed(f);
                f.id_key_digest = [0x33; 48]
            },
            strict.clone()
        )),
        PolicyError::IdKeyNotTrusted(_)
    ));
    assert!(matches!(
        policy_error(case(
            |f| {
                signed(f);
                f.key_info &= !KeyInfo::AUTHOR_KEY_EN
            },
            strict.clone()
        )),
        PolicyError::AuthorKeyNotTrusted(_)
    ));
    assert!(matches!(
        policy_error(case(
            |f| {
                signed(f);
                f.author_key_digest = [0x44; 48]
            },
            strict.clone()
        )),
        PolicyError::AuthorKeyNotTrusted(_)
    ));
    for (field, mutate) in [
        (
            "family_id",
            (|f: &mut ReportFields| f.family_id = [9; 16]) as fn(&mut ReportFields),
        ),
        ("image_id", |f| f.image_id = [9; 16]),
        ("report_id_ma", |f| f.report_id_ma = [9; 32]),
    ] {
        assert!(
            matches!(
                policy_error(case(|f| { signed(f); mutate(f) }, strict.clone())),
                PolicyError::IdentityMismatch { field: got, .. } if got == field
            ),
            "{field}"
        );
    }
}

#[test]
fn policy_files_read_the_new_fields_and_refuse_nonsense() {
    let policy = Policy::from_toml(
        r#"
        allow_provisional_firmware = true
        min_build = { genoa = 21 }
        min_guest_policy_abi = { major = 1, minor = 51 }
        require_alias_check_complete = true
        allow_tio = false
        required_current_mit_vector = 63
        trusted_id_key_digests = ["0x111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"]
        family_id = "03030303030303030303030303030303"
        "#,
    )
    .unwrap();
    assert_eq!(policy.min_build[&Product::Genoa], 21);
    assert_eq!(policy.trusted_id_key_digests[0], HexBytes([0x11; 48]));
    assert_eq!(policy.family_id, Some(HexBytes([3; 16])));
    assert!(!policy.allow_tio);
    assert!(Policy::from_toml("family_id = \"0303\"").is_err());
    assert!(Policy::from_toml("trusted_id_key_digests = [\"zz\"]").is_err());
    // A report version above the newest layout known would be read with an older layout.
    assert!(Policy::from_toml("max_report_version = 6").is_err());
    // The host writes and signs the ID block: its ids mean nothing without a trusted key.
    for field in ["family_id", "image_id"] {
        let err = Policy::from_toml(&format!("{field} = \"03030303030303030303030303030303\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("restricts nothing"), "{field}: {err}");
    }
}

fn chain_error(r: Result<VerifiedReport, VerifyError>) -> CertChainError {
    match r {
        Err(VerifyError::CertChain(e)) => e,
        other => panic!(
            "expected a chain refusal, got {:?}",
            other.map(|r| r.product)
        ),
    }
}

fn with_ask(deviation: ProfileDeviation) -> Result<VerifiedReport, VerifyError> {
    let authority = Arc::new(SimAuthority::load().with_ask_deviation(Product::Milan, &deviation));
    let p = SimulatedPlatform::new(authority, Product::Milan, b"chip-A");
    verify_on(&p, |_| {}, Policy::default())
}

fn with_vcek(deviation: ProfileDeviation) -> Result<VerifiedReport, VerifyError> {
    let p = SimulatedPlatform::new(authority(), Product::Milan, b"chip-A")
        .with_vcek_deviation(deviation);
    verify_on(&p, |_| {}, Policy::default())
}

#[test]
fn the_ask_must_be_the_products_ca() {
    assert!(with_ask(ProfileDeviation::default()).is_ok());
    assert_eq!(
        chain_error(with_ask(ProfileDeviation {
            not_ca: true,
            ..Default::default()
        })),
        CertChainError::NotCa {
            which: "ASK",
            problem: "basicConstraints CA:TRUE is missing"
        }
    );
    assert_eq!(
        chain_error(with_ask(ProfileDeviation {
            no_cert_sign: true,
            ..Default::default()
        })),
        CertChainError::NotCa {
            which: "ASK",
            problem: "its keyUsage does not allow keyCertSign"
        }
    );
    assert_eq!(
        chain_error(with_ask(ProfileDeviation {
            unknown_critical_extension: true,
            ..Default::default()
        })),
        CertChainError::UnknownCriticalExtension {
            which: "ASK",
            oid: "1.3.6.1.4.1.3704.1.99".into()
        }
    );
    // An ASVK (the ASK's sibling for VLEKs) in the ASK's place, and its VCEK naming it.
    let asvk = Arc::new(SimAuthority::load().with_ask_deviation(
        Product::Milan,
        &ProfileDeviation {
            subject_cn: Some("SEV-VLEK-Milan".into()),
            ..Default::default()
        },
    ));
    let p = SimulatedPlatform::new(asvk, Product::Milan, b"chip-A");
    let err = chain_error(verify_on(&p, |_| {}, Policy::default()));
    assert!(
        matches!(
            &err,
            CertChainError::IssuerMismatch { which: "VCEK", .. }
                | CertChainError::CommonName { which: "ASK", .. }
        ),
        "{err}"
    );
}

#[test]
fn the_vcek_must_follow_amds_profile() {
    assert!(with_vcek(ProfileDeviation::default()).is_ok());
    assert_eq!(
        chain_error(with_vcek(ProfileDeviation {
            version_2: true,
            ..Default::default()
        })),
        CertChainError::CertificateVersion {
            which: "VCEK",
            found: 2
        }
    );
    assert_eq!(
        chain_error(with_vcek(ProfileDeviation {
            subject_cn: Some("SEV-VLEK".into()),
            ..Default::default()
        })),
        CertChainError::CommonName {
            which: "VCEK",
            field: "subject",
            expected: "SEV-VCEK".into(),
            found: Some("SEV-VLEK".into())
        }
    );
    assert_eq!(
        chain_error(with_vcek(ProfileDeviation {
            unknown_critical_extension: true,
            ..Default::default()
        })),
        CertChainError::UnknownCriticalExtension {
            which: "VCEK",
            oid: "1.3.6.1.4.1.3704.1.99".into()
        }
    );
    for name in ["Genoa", "Milanese", "Milan-B0", "Milan-B1"] {
        let r = with_vcek(ProfileDeviation {
            product_name: Some(name.into()),
            ..Default::default()
        });
        if name.starts_with("Milan-") {
            assert!(r.is_ok(), "{name}");
        } else {
            assert_eq!(
                r.err(),
                Some(VerifyError::Binding(BindingError::ProductName {
                    expected: Product::Milan,
                    found: Some(name.into())
                })),
                "{name}"
            );
        }
    }
}

#[test]
fn a_root_must_be_named_for_its_product_and_be_a_ca() {
    let authority = SimAuthority::load();
    let pem = |der: &[u8]| {
        use der::EncodePem;
        let cert: x509_cert::Certificate = der::Decode::from_der(der).unwrap();
        cert.to_pem(der::pem::LineEnding::LF).unwrap()
    };
    let mut roots = TrustRoots::empty();
    roots
        .add_pem(
            &[Product::Genoa],
            "sim",
            pem(authority.ark_der(Product::Genoa)).as_bytes(),
        )
        .unwrap();
    assert_eq!(
        roots
            .add_pem(
                &[Product::Turin],
                "sim",
                pem(authority.ark_der(Product::Genoa)).as_bytes()
            )
            .err(),
        Some(RootError::CertChain(CertChainError::CommonName {
            which: "ARK",
            field: "subject",
            expected: "ARK-Turin".into(),
            found: Some("ARK-Genoa".into())
        }))
    );
    // AMD's own roots pass the same checks (TrustRoots::amd() would panic otherwise).
    assert_eq!(TrustRoots::amd().anchors().len(), 3);
}
