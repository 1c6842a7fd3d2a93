//! Simulated evidence goes through exactly the same verifier: rejected under the AMD roots,
//! accepted only when the simulator root is added explicitly, and every policy check bites.

use snpkms_simulator::{
    trust_simulator_root, AuthorityNames, DerivedKeyRequest, GuestLaunch, ReportFields,
    SimAuthority, SimulatedGuest, SimulatedPlatform,
};
use snpkms_verifier::Abi;
use snpkms_verifier::TcbComponent;
use snpkms_verifier::*;
use snpkms_verifier::{
    CertificateBundle, Crl, GuestPolicy, KeyInfo, PlatformInfo, Policy, Product, RootOrigin,
    TcbVersion, TrustRoots, UnixTime, VerifiedReport, Verifier, VerifyError,
};
use std::sync::Arc;

mod common;
use common::{authority, AT};

fn platform(product: Product) -> SimulatedPlatform {
    SimulatedPlatform::new(authority(), product, b"chip-A")
}

fn sim_verifier(policy: Policy) -> Verifier {
    let mut roots = TrustRoots::amd();
    trust_simulator_root(&mut roots).unwrap();
    Verifier::new(roots, policy)
}

fn check(
    p: &SimulatedPlatform,
    fields: &ReportFields,
    policy: Policy,
) -> Result<VerifiedReport, VerifyError> {
    let report = p.sign(fields);
    sim_verifier(policy).verify(&report, &p.certificates(fields.reported_tcb), AT)
}

#[test]
fn simulator_reports_need_the_simulator_root() {
    for product in Product::ALL {
        let p = platform(product);
        let mut fields = p.default_fields();
        fields.measurement = [0x42; 48];
        let report = p.sign(&fields);
        let certs = p.certificates(fields.reported_tcb);

        let amd_only = Verifier::new(TrustRoots::amd(), Policy::default());
        assert_eq!(
            amd_only.verify(&report, &certs, AT),
            Err(CertChainError::UntrustedRoot { product }.into()),
            "{product}"
        );
        // Without the ARK in the evidence, the simulator ASK is simply not signed by AMD.
        let mut no_ark = certs.clone();
        no_ark.ark = None;
        assert_eq!(
            amd_only.verify(&report, &no_ark, AT),
            Err(CertChainError::AskNotSignedByArk { product }.into())
        );

        let verified = sim_verifier(Policy::default())
            .verify(&report, &certs, AT)
            .unwrap_or_else(|e| panic!("{product}: {e}"));
        assert_eq!(verified.product, product);
        assert_eq!(verified.measurement, [0x42; 48]);
        assert_eq!(verified.chip_id, p.chip_id());
        assert_eq!(verified.reported_tcb, p.tcb());
        assert_eq!(verified.root, RootOrigin::Extra("simulator".into()));
    }
}

#[test]
fn a_report_signed_by_another_chips_vcek_is_rejected() {
    let a = platform(Product::Genoa);
    let b = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-B");
    let fields = a.default_fields();
    let report = a.sign(&fields);
    // B's VCEK: a different chip, so the hwID does not match A's chip id.
    assert_eq!(
        sim_verifier(Policy::default()).verify(&report, &b.certificates(fields.reported_tcb), AT),
        Err(BindingError::ChipIdMismatch.into())
    );
    // B signing a report that claims A's chip id: the hwID matches the claim, the key does not.
    let forged = b.sign(&fields);
    let mut certs = b.certificates(fields.reported_tcb);
    certs.vcek = Some(a.vcek_der(fields.reported_tcb));
    assert_eq!(
        sim_verifier(Policy::default()).verify(&forged, &certs, AT),
        Err(SignatureError::Invalid.into())
    );
}

#[test]
fn a_vcek_for_another_tcb_is_rejected() {
    let p = platform(Product::Milan);
    let fields = p.default_fields();
    let report = p.sign(&fields);
    let older = TcbVersion {
        snp: fields.reported_tcb.snp - 1,
        ..fields.reported_tcb
    };
    assert_eq!(
        sim_verifier(Policy::default()).verify(&report, &p.certificates(older), AT),
        Err(BindingError::TcbMismatch {
            component: TcbComponent::Snp,
            vcek: older.snp,
            report: fields.reported_tcb.snp
        }
        .into())
    );
}

#[test]
fn turin_fmc_is_bound_too() {
    let p = platform(Product::Turin);
    let fields = p.default_fields();
    let report = p.sign(&fields);
    let other_fmc = TcbVersion {
        fmc: fields.reported_tcb.fmc + 1,
        ..fields.reported_tcb
    };
    assert_eq!(
        sim_verifier(Policy::default()).verify(&report, &p.certificates(other_fmc), AT),
        Err(BindingError::TcbMismatch {
            component: TcbComponent::Fmc,
            vcek: other_fmc.fmc,
            report: fields.reported_tcb.fmc
        }
        .into())
    );
}

#[test]
fn a_forged_chain_with_amd_names_is_rejected() {
    // Same structure and subject names as AMD's, but rooted in keys AMD never certified.
    let forger = Arc::new(SimAuthority::with_names(AuthorityNames::amd_lookalike()));
    let p = SimulatedPlatform::new(forger, Product::Milan, b"chip-A");
    let fields = p.default_fields();
    let report = p.sign(&fields);
    let certs = p.certificates(fields.reported_tcb);
    let amd = Verifier::new(TrustRoots::amd(), Policy::default());
    assert_eq!(
        amd.verify(&report, &certs, AT),
        Err(CertChainError::UntrustedRoot {
            product: Product::Milan
        }
        .into())
    );
    let mut without_ark = certs;
    without_ark.ark = None;
    assert_eq!(
        amd.verify(&report, &without_ark, AT),
        Err(CertChainError::AskNotSignedByArk {
            product: Product::Milan
        }
        .into())
    );
}

#[test]
fn the_crl_revokes_and_must_be_signed_and_fresh() {
    let p = platform(Product::Milan);
    let fields = p.default_fields();
    let report = p.sign(&fields);
    let certs = p.certificates(fields.reported_tcb);
    let auth = p.authority();
    let ask_serial = auth.ask_serial(Product::Milan);
    let day = 86_400;
    let crl = |this: u64, next: Option<u64>, serials: &[&[u8]]| {
        Crl::from_der(&auth.crl(Product::Milan, this, next, serials)).unwrap()
    };
    let with = |crl: Crl| sim_verifier(Policy::default()).with_crl(crl).unwrap();

    assert_eq!(
        with(crl(AT.0 - day, Some(AT.0 + day), &[&ask_serial])).verify(&report, &certs, AT),
        Err(CertChainError::Revoked {
            which: "ASK",
            serial: hex::encode(&ask_serial)
        }
        .into())
    );
    assert!(with(crl(AT.0 - day, Some(AT.0 + day), &[&[0x77]]))
        .verify(&report, &certs, AT)
        .is_ok());
    assert_eq!(
        with(crl(AT.0 - 3 * day, Some(AT.0 - day), &[])).verify(&report, &certs, AT),
        Err(CertChainError::CrlStale {
            next_update: AT.0 - day,
            at: AT.0
        }
        .into())
    );
    assert_eq!(
        with(crl(AT.0 + day, Some(AT.0 + 2 * day), &[])).verify(&report, &certs, AT),
        Err(CertChainError::CrlNotYetValid {
            this_update: AT.0 + day,
            at: AT.0
        }
        .into())
    );
    assert_eq!(
        with(crl(AT.0 - day, None, &[])).verify(&report, &certs, AT),
        Err(CertChainError::CrlNoNextUpdate.into())
    );

    // A chain verified (and cached) while the CRL was fresh is refused once it is stale.
    let verifier = with(crl(AT.0 - day, Some(AT.0 + day), &[]));
    let parsed = verifier.parse(&report).unwrap();
    let cached = verifier
        .verify_chain(&certs, Endorser::Vcek, Some(Product::Milan), AT)
        .unwrap();
    assert!(verifier.verify_parsed(&parsed, &cached, AT).is_ok());
    let later = UnixTime(AT.0 + 2 * day);
    assert_eq!(
        verifier.verify_parsed(&parsed, &cached, later),
        Err(CertChainError::CrlStale {
            next_update: AT.0 + day,
            at: later.0
        }
        .into())
    );

    // A CRL naming the simulator's ARK but not signed by it is refused when it is added.
    let mut forged = auth.crl(Product::Milan, AT.0 - day, Some(AT.0 + day), &[]);
    let n = forged.len();
    forged[n - 10] ^= 0xff;
    let forged = Crl::from_der(&forged).unwrap();
    assert_eq!(
        sim_verifier(Policy::default()).with_crl(forged).err(),
        Some(CertChainError::CrlSignature {
            issuer: Some("ARK-Milan".into())
        })
    );
}

#[test]
fn a_crl_applies_to_the_root_that_signed_it_not_to_a_root_of_the_same_name() {
    // The simulator's Milan ARK has AMD's common name, `ARK-Milan`. Its CRL, revoking every ASK
    // serial AMD's Milan chain could have, does not touch AMD's chain.
    let auth = authority();
    let amd_milan_ask_serial = [0x01, 0x00, 0x01];
    let crl = Crl::from_der(&auth.crl(
        Product::Milan,
        1_700_000_000,
        Some(2_000_000_000),
        &[&amd_milan_ask_serial, &auth.ask_serial(Product::Milan)],
    ))
    .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/amd");
    let report = std::fs::read(format!("{dir}/ms-milan-report.bin")).unwrap();
    let vcek = to_der(
        &std::fs::read(format!("{dir}/ms-milan-vcek.pem")).unwrap(),
        "VCEK",
    )
    .unwrap();
    let certs = CertificateBundle {
        vcek: Some(vcek),
        ..CertificateBundle::default()
    };
    let genuine_at = UnixTime(1_790_000_000);
    let verifier = sim_verifier(Policy::default()).with_crl(crl).unwrap();
    let genuine = verifier.verify(&report, &certs, genuine_at);
    assert!(genuine.is_ok(), "{genuine:?}");
    // ... while the simulator's own chain, whose ARK signed it, is revoked.
    let p = platform(Product::Milan);
    let fields = p.default_fields();
    assert!(matches!(
        verifier.verify(&p.sign(&fields), &p.certificates(fields.reported_tcb), AT),
        Err(VerifyError::CertChain(CertChainError::Revoked {
            which: "ASK",
            ..
        }))
    ));
}

fn policy_case(
    mutate: impl FnOnce(&mut ReportFields),
    policy: Policy,
) -> Result<VerifiedReport, VerifyError> {
    let p = platform(Product::Genoa);
    let mut fields = p.default_fields();
    mutate(&mut fields);
    check(&p, &fields, policy)
}

#[test]
fn each_policy_check_bites() {
    let d = Policy::default;
    let base = GuestPolicy::SMT | GuestPolicy::RESERVED_MBO;
    assert!(policy_case(|_| {}, d()).is_ok());

    assert_eq!(
        policy_case(|f| f.policy = base | GuestPolicy::DEBUG, d()),
        Err(PolicyError::DebugAllowed.into())
    );
    assert!(policy_case(
        |f| f.policy = base | GuestPolicy::DEBUG,
        Policy {
            allow_debug: true,
            ..d()
        }
    )
    .is_ok());
    assert_eq!(
        policy_case(|f| f.policy = base | GuestPolicy::MIGRATE_MA, d()),
        Err(PolicyError::MigrateAgentAllowed.into())
    );
    assert_eq!(
        policy_case(|f| f.vmpl = 1, d()),
        Err(PolicyError::Vmpl { vmpl: 1, max: 0 }.into())
    );
    assert!(policy_case(|f| f.vmpl = 2, Policy { max_vmpl: 2, ..d() }).is_ok());
    let no_smt = || Policy {
        allow_smt: false,
        ..d()
    };
    assert_eq!(
        policy_case(|_| {}, no_smt()),
        Err(PolicyError::SmtNotAllowed.into())
    );
    assert!(policy_case(
        |f| {
            f.policy = GuestPolicy::RESERVED_MBO;
            f.plat_info &= !PlatformInfo::SMT_EN;
        },
        no_smt()
    )
    .is_ok());
    assert_eq!(
        policy_case(
            |_| {},
            Policy {
                require_single_socket: true,
                ..d()
            }
        ),
        Err(PolicyError::SingleSocketRequired.into())
    );
    assert!(policy_case(
        |f| f.policy = base | GuestPolicy::SINGLE_SOCKET,
        Policy {
            require_single_socket: true,
            ..d()
        }
    )
    .is_ok());
    assert_eq!(
        policy_case(|f| f.policy = GuestPolicy::SMT, d()),
        Err(PolicyError::ReservedBitNotSet.into())
    );
    assert_eq!(
        policy_case(|f| f.policy = base | (1 << 40), d()),
        Err(FormatError::ReservedBits {
            field: "policy",
            value: base | (1 << 40)
        }
        .into())
    );
    assert!(matches!(
        policy_case(
            |_| {},
            Policy {
                min_abi: Abi {
                    major: 1,
                    minor: 56
                },
                ..d()
            }
        ),
        Err(VerifyError::Policy(PolicyError::AbiTooOld {
            which: "current",
            major: 1,
            minor: 55,
            ..
        }))
    ));
    assert!(matches!(
        policy_case(
            |f| f.committed_version.minor = 51,
            Policy {
                min_abi: Abi {
                    major: 1,
                    minor: 52
                },
                ..d()
            }
        ),
        Err(VerifyError::Policy(PolicyError::AbiTooOld {
            which: "committed",
            ..
        }))
    ));
    assert_eq!(
        policy_case(
            |f| f.guest_svn = 3,
            Policy {
                min_guest_svn: 4,
                ..d()
            }
        ),
        Err(PolicyError::GuestSvnTooLow { svn: 3, min: 4 }.into())
    );
}

#[test]
fn plat_info_must_agree_with_the_guest_policy() {
    let d = Policy::default;
    let base = GuestPolicy::RESERVED_MBO;
    assert_eq!(
        policy_case(|f| f.policy = base, d()),
        Err(PolicyError::PlatInfoInconsistent(
            "policy forbids SMT but plat_info says SMT is enabled"
        )
        .into())
    );
    assert!(matches!(
        policy_case(|f| f.policy |= GuestPolicy::RAPL_DIS, d()),
        Err(VerifyError::Policy(PolicyError::PlatInfoInconsistent(_)))
    ));
    assert!(policy_case(
        |f| {
            f.policy |= GuestPolicy::RAPL_DIS;
            f.plat_info |= PlatformInfo::RAPL_DIS;
        },
        d()
    )
    .is_ok());
    assert!(matches!(
        policy_case(|f| f.policy |= GuestPolicy::CIPHERTEXT_HIDING, d()),
        Err(VerifyError::Policy(PolicyError::PlatInfoInconsistent(_)))
    ));
}

#[test]
fn minimum_tcb_applies_to_reported_committed_and_launch() {
    let p = platform(Product::Genoa);
    let min = p.tcb();
    // Provisional firmware allowed, or a committed TCB below the current one would be refused
    // for that before its minimum is looked at.
    let policy = || Policy {
        min_tcb: [(Product::Genoa, min)].into(),
        allow_provisional_firmware: true,
        ..Policy::default()
    };
    assert!(check(&p, &p.default_fields(), policy()).is_ok());
    let below = TcbVersion {
        microcode: min.microcode - 1,
        ..min
    };
    for which in ["committed_tcb", "launch_tcb"] {
        let mut f = p.default_fields();
        match which {
            "committed_tcb" => f.committed_tcb = below,
            _ => f.launch_tcb = below,
        }
        assert!(
            matches!(
                check(&p, &f, policy()),
                Err(VerifyError::Policy(PolicyError::TcbBelowMinimum { which: w, component: TcbComponent::Microcode, .. })) if w == which
            ),
            "{which}"
        );
    }
    // A platform whose reported TCB (and so its VCEK) is below the minimum.
    let old = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A").with_tcb(below);
    assert!(matches!(
        check(&old, &old.default_fields(), policy()),
        Err(VerifyError::Policy(PolicyError::TcbBelowMinimum {
            which: "reported_tcb",
            ..
        }))
    ));
}

#[test]
fn an_unsigned_report_is_refused() {
    // MASK_CHIP_KEY: the firmware leaves the signature zero. The simulator signs anyway, which
    // hardware would not: the bit alone must be enough to refuse.
    assert_eq!(
        policy_case(|f| f.key_info = KeyInfo::MASK_CHIP_KEY, Policy::default()),
        Err(SignatureError::Unsigned.into())
    );
}

#[test]
fn masked_chip_id_is_refused_by_default() {
    // MaskChipId shows only as an all-zero chip_id.
    let masked = |f: &mut ReportFields| f.chip_id = [0; 64];
    assert_eq!(
        policy_case(masked, Policy::default()),
        Err(BindingError::MaskedChipId.into())
    );
    let allowed = policy_case(
        masked,
        Policy {
            allow_masked_chip_id: true,
            ..Policy::default()
        },
    )
    .unwrap();
    assert!(allowed.chip_id_masked);
}

#[test]
fn unknown_cpuid_and_signing_keys() {
    assert_eq!(
        policy_case(|f| f.cpuid = (0x17, 0x31, 0), Policy::default()),
        Err(ProductError::UnknownCpuid {
            family: 0x17,
            model: 0x31
        }
        .into())
    );
    assert_eq!(
        policy_case(|f| f.key_info = 7 << 2, Policy::default()),
        Err(BindingError::UnsupportedSigningKey(7).into())
    );
    assert_eq!(
        policy_case(
            |_| {},
            Policy {
                allowed_products: vec![Product::Milan],
                ..Policy::default()
            }
        ),
        Err(ProductError::NotAllowed(Product::Genoa).into())
    );
}

#[test]
fn cached_chain_is_rechecked_for_validity_and_product() {
    let v = sim_verifier(Policy::default());
    let p = platform(Product::Milan);
    let fields = p.default_fields();
    let report = v.parse(&p.sign(&fields)).unwrap();
    let chain = v
        .verify_chain(
            &p.certificates(fields.reported_tcb),
            Endorser::Vcek,
            Some(Product::Milan),
            AT,
        )
        .unwrap();
    assert!(v.verify_parsed(&report, &chain, AT).is_ok());
    assert!(matches!(
        v.verify_parsed(&report, &chain, UnixTime(snpkms_simulator::NOT_AFTER + 1)),
        Err(VerifyError::CertChain(CertChainError::Expired { .. }))
    ));
    // A Genoa report presented with the cached Milan chain.
    let g = platform(Product::Genoa);
    let genoa_report = v.parse(&g.sign(&g.default_fields())).unwrap();
    assert_eq!(
        v.verify_parsed(&genoa_report, &chain, AT),
        Err(ProductError::Mismatch {
            report: Product::Genoa,
            certificate: Product::Milan
        }
        .into())
    );
}

#[test]
fn guest_evidence_round_trips_through_the_certificate_table() {
    let guest = SimulatedGuest::new(
        Arc::new(platform(Product::Milan)),
        GuestLaunch {
            measurement: [9; 48],
            host_data: [8; 32],
            ..GuestLaunch::default()
        },
    );
    let evidence = guest.extended_report([7; 64], 0);
    let certs = CertificateBundle::from_cert_table(&evidence.cert_table).unwrap();
    let r = sim_verifier(Policy::default())
        .verify(&evidence.report, &certs, AT)
        .unwrap();
    assert_eq!(
        (r.report_data, r.host_data, r.measurement),
        ([7; 64], [8; 32], [9; 48])
    );
}

#[test]
fn derived_keys_are_bound_to_chip_measurement_and_policy() {
    let launch = GuestLaunch {
        measurement: [1; 48],
        ..GuestLaunch::default()
    };
    let guest = |seed: &[u8], launch: GuestLaunch| {
        SimulatedGuest::new(
            Arc::new(SimulatedPlatform::new(authority(), Product::Milan, seed)),
            launch,
        )
    };
    let tcb = snpkms_simulator::default_tcb(Product::Milan);
    let req = DerivedKeyRequest::sealing(tcb);
    let key = |g: SimulatedGuest, r| g.derived_key(r).unwrap();
    let k = key(guest(b"chip-A", launch.clone()), req);
    assert_eq!(k, key(guest(b"chip-A", launch.clone()), req));
    assert_ne!(k, key(guest(b"chip-B", launch.clone()), req));
    let other_image = GuestLaunch {
        measurement: [2; 48],
        ..launch.clone()
    };
    assert_ne!(k, key(guest(b"chip-A", other_image.clone()), req));
    let other_policy = GuestLaunch {
        policy: launch.policy | GuestPolicy::DEBUG,
        ..launch.clone()
    };
    assert_ne!(k, key(guest(b"chip-A", other_policy), req));
    // The TCB version is mixed in: an older one gives another key; one above the committed
    // TCB is refused, as the firmware refuses it.
    let mut older = tcb;
    older.snp -= 1;
    assert_ne!(
        k,
        key(
            guest(b"chip-A", launch.clone()),
            DerivedKeyRequest::sealing(older)
        )
    );
    let mut newer = tcb;
    newer.microcode += 1;
    assert!(matches!(
        guest(b"chip-A", launch.clone()).derived_key(DerivedKeyRequest::sealing(newer)),
        Err(snpkms_simulator::DerivedKeyError::TcbAboveCommitted { .. })
    ));
    // Not mixing the measurement: the key no longer depends on it.
    let unbound = DerivedKeyRequest::default();
    assert_eq!(
        key(guest(b"chip-A", launch), unbound),
        key(guest(b"chip-A", other_image), unbound)
    );
}

const CSP: &str = "CN=cc-sim-1.example.com";

fn vlek_platform(product: Product, chip_seed: &[u8]) -> SimulatedPlatform {
    SimulatedPlatform::new(authority(), product, chip_seed).with_vlek(CSP)
}

fn vlek_policy() -> Policy {
    Policy {
        allow_vlek: true,
        ..Policy::default()
    }
}

#[test]
fn simulated_vlek_reports_verify_on_every_product_and_name_no_chip() {
    for product in Product::ALL {
        let p = vlek_platform(product, b"chip-A");
        let fields = p.default_fields();
        let certs = p.certificates(fields.reported_tcb);
        assert!(certs.vcek.is_none() && certs.vlek.is_some() && certs.asvk.is_some());
        let r = check(&p, &fields, vlek_policy()).unwrap_or_else(|e| panic!("{product}: {e}"));
        assert_eq!(r.endorser, Endorser::Vlek);
        assert_eq!(r.csp_id.as_deref(), Some(CSP));
        assert_eq!(r.device_chip_id(), None, "{product}");
        // Through the certificate table the host hands out (ASVK under the ASK's GUID).
        let table = CertificateBundle::from_cert_table(&certs.to_cert_table()).unwrap();
        assert_eq!(table, certs);
        // Refused by a policy that takes only VCEKs.
        assert_eq!(
            check(&p, &fields, Policy::default()),
            Err(PolicyError::VlekNotAllowed.into())
        );
    }
}

#[test]
fn a_vlek_is_the_providers_and_bound_to_the_tcb() {
    let a = vlek_platform(Product::Genoa, b"chip-A");
    let b = vlek_platform(Product::Genoa, b"chip-B");
    let fields = a.default_fields();
    // Every chip of the provider has the same VLEK: a report of one verifies with the other's.
    let report = a.sign(&fields);
    assert!(sim_verifier(vlek_policy())
        .verify(&report, &b.certificates(fields.reported_tcb), AT)
        .is_ok());
    // A VLEK for an older TCB does not vouch for a report claiming a newer one.
    let mut older = fields.reported_tcb;
    older.snp -= 1;
    assert!(matches!(
        sim_verifier(vlek_policy()).verify(&report, &a.certificates(older), AT),
        Err(VerifyError::Binding(BindingError::TcbMismatch {
            component: TcbComponent::Snp,
            ..
        }))
    ));
    // Another provider's VLEK did not sign it.
    let other = SimulatedPlatform::new(authority(), Product::Genoa, b"chip-A")
        .with_vlek("CN=cc-other.example.com");
    assert_eq!(
        sim_verifier(vlek_policy()).verify(&report, &other.certificates(fields.reported_tcb), AT),
        Err(SignatureError::Invalid.into())
    );
}

#[test]
fn a_vlek_and_a_vcek_do_not_stand_in_for_each_other() {
    let vcek = platform(Product::Milan);
    let vlek = vlek_platform(Product::Milan, b"chip-A");
    let vcek_fields = vcek.default_fields();
    let vlek_fields = vlek.default_fields();
    let v = sim_verifier(vlek_policy());
    // A VLEK-signed report with only the VCEK chain, and the reverse.
    assert_eq!(
        v.verify(
            &vlek.sign(&vlek_fields),
            &vcek.certificates(vlek_fields.reported_tcb),
            AT
        ),
        Err(CertError::MissingVlek.into())
    );
    assert_eq!(
        v.verify(
            &vcek.sign(&vcek_fields),
            &vlek.certificates(vcek_fields.reported_tcb),
            AT
        ),
        Err(CertError::MissingVcek.into())
    );
    // A chain verified for one kind is not taken for the other, even from a cache.
    let both = CertificateBundle {
        vcek: vcek.certificates(vcek_fields.reported_tcb).vcek,
        ask: vcek.certificates(vcek_fields.reported_tcb).ask,
        ..vlek.certificates(vlek_fields.reported_tcb)
    };
    let vcek_chain = v
        .verify_chain(&both, Endorser::Vcek, Some(Product::Milan), AT)
        .unwrap();
    let vlek_report = v.parse(&vlek.sign(&vlek_fields)).unwrap();
    assert_eq!(
        v.verify_parsed(&vlek_report, &vcek_chain, AT),
        Err(BindingError::EndorserMismatch {
            report: Endorser::Vlek,
            chain: Endorser::Vcek
        }
        .into())
    );
    // A VCEK-signed report's masked chip id is no device identity either.
    let mut masked = vcek_fields.clone();
    masked.chip_id = [0; 64];
    let r = check(
        &vcek,
        &masked,
        Policy {
            allow_masked_chip_id: true,
            ..Policy::default()
        },
    )
    .unwrap();
    assert_eq!(r.device_chip_id(), None);
    assert_eq!(
        check(&vcek, &vcek_fields, Policy::default())
            .unwrap()
            .device_chip_id(),
        Some(vcek.chip_id())
    );
}

#[test]
fn a_crl_is_checked_to_be_of_the_product_it_is_for() {
    let auth = authority();
    let crl = Crl::from_der(&auth.crl(Product::Milan, AT.0, Some(AT.0 + 86_400), &[])).unwrap();
    let mut roots = TrustRoots::empty();
    let (_, milan_ark) = snpkms_simulator::ARK_PEMS[0];
    roots
        .add_pem(&[Product::Milan], "simulator", milan_ark.as_bytes())
        .unwrap();
    let v = Verifier::new(roots, Policy::default());
    assert_eq!(v.check_crl_for(&crl, Product::Milan), Ok(()));
    assert!(matches!(
        v.check_crl_for(&crl, Product::Genoa),
        Err(CertChainError::CrlSignature { .. })
    ));
}
