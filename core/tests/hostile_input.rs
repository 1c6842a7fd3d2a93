//! The bad-request table at the node core, with fakes for its ports: every kind of malformed
//! or forged GetAppKey request fails before any registry read, with its refusal kind and a
//! message naming the problem, no key material in any message, nothing recorded, and the node
//! still serving the next good request. (The gRPC table in `tests/tests/hostile_input.rs`
//! keeps one case per status code and the cases that need the chain.)

use rsa::RsaPrivateKey;
use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_core::keys::RootSecret;
use snpkms_core::{
    CoreLimits, NoCertificateSource, Node, NodeParts, Refusal, ReleaseError, ReleaseLog,
};
use snpkms_platform::SimulatedAttestor;
use snpkms_simulator::{
    AuthorityNames, GuestLaunch, ReportFields, SimAuthority, SimulatedGuest, SimulatedPlatform,
};
use snpkms_testkit::fakes::{FakeClock, FakePorts, FakeRegistry, MemoryLog, NoMetrics};
use snpkms_verifier::cert_table::{self, CertTableEntry, Guid};
use snpkms_verifier::offsets;
use snpkms_verifier::{
    app_host_data, CertificateBundle, GuestPolicy, KeyInfo, Policy, Product, TcbVersion,
    TrustRoots, Verifier,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// 2026-06-01: inside the validity of the simulator's certificates.
const NOW: u64 = 1_780_272_000;
const GUEST_IMAGE: [u8; 48] = [0x6a; 48];
const OTHER_IMAGE: [u8; 48] = [0x6b; 48];
const GUEST_CHIP: &[u8] = b"core-guest-chip";
const APP: [u8; 20] = [0x11; 20];
const COMPOSE: [u8; 32] = [0x44; 32];

fn authority() -> Arc<SimAuthority> {
    static A: OnceLock<Arc<SimAuthority>> = OnceLock::new();
    A.get_or_init(|| Arc::new(SimAuthority::load())).clone()
}

fn verifier() -> Verifier {
    let mut roots = TrustRoots::amd();
    snpkms_simulator::trust_simulator_root(&mut roots).unwrap();
    Verifier::new(roots, Policy::default())
}

/// A node core on fakes, trusting the simulator root, whose registry allows everything.
fn node() -> (Node<FakePorts>, FakeRegistry) {
    node_with_app_limit(0.0, 1)
}

/// As [`node`], with a per-app limit of `rate` per second up to `burst`.
fn node_with_app_limit(rate: f64, burst: u32) -> (Node<FakePorts>, FakeRegistry) {
    let root = RootSecret::generate();
    let registry = FakeRegistry::allowing(root.root_signing_address());
    let kms = SimulatedAttestor::new(SimulatedGuest::new(
        Arc::new(SimulatedPlatform::new(
            authority(),
            Product::Milan,
            b"core-kms-chip",
        )),
        GuestLaunch {
            measurement: [0x22; 48],
            ..GuestLaunch::default()
        },
    ));
    let node = Node::new(
        NodeParts {
            custody: snpkms_core::Custody::Root(root),
            config_digest: [0x66; 32],
            verifier: verifier(),
            tls_public_key: vec![],
            limits: CoreLimits {
                nonce_ttl_secs: 60,
                max_outstanding_nonces: 1000,
                verified_cert_chain_cache: 16,
                grant_cache: 16,
                per_app_rate: rate,
                per_app_burst: burst,
            },
            authorizer: registry.clone(),
            log: MemoryLog::default(),
            clock: FakeClock::at(NOW),
            certificates: NoCertificateSource,
            observer: NoMetrics,
        },
        &kms,
    );
    (node, registry)
}

type Edit<T> = Option<Box<dyn Fn(&mut T)>>;
type CertEdit = Option<Box<dyn Fn(&mut Vec<u8>, &Ctx)>>;

/// What a case may change on the way to a request.
#[derive(Default)]
struct Mutation {
    /// Before signing: change the fields the firmware would write.
    fields: Edit<ReportFields>,
    /// After signing: change the report bytes (breaks the signature where it is covered).
    report: Edit<Vec<u8>>,
    /// Change the certificate table.
    certs: CertEdit,
    /// Change the request itself.
    request: Edit<pb::GetAppKeyRequest>,
    /// Sign with another platform.
    platform: Option<Arc<SimulatedPlatform>>,
    /// report_data computed over another nonce.
    wrong_report_data: bool,
    /// The app and compose the guest claims (defaults: the stack's app and compose).
    claim: Option<([u8; 20], [u8; 32])>,
    /// The host_data the VMM set (defaults: bound to the claim).
    host_data: Option<[u8; 32]>,
    /// The ephemeral public key the guest binds and sends (defaults: a fresh X25519 key).
    ephemeral: Option<[u8; 32]>,
}

struct Ctx {
    app: [u8; 20],
    compose: [u8; 32],
    platform: Arc<SimulatedPlatform>,
}

impl Ctx {
    /// The app's guest on its own Milan chip.
    fn guest() -> Ctx {
        Ctx {
            app: APP,
            compose: COMPOSE,
            platform: Arc::new(SimulatedPlatform::new(
                authority(),
                Product::Milan,
                GUEST_CHIP,
            )),
        }
    }

    fn request(&self, node: &Node<FakePorts>, m: &Mutation) -> pb::GetAppKeyRequest {
        let nonce = node.challenge().expect("challenge").nonce;
        let ephemeral = m
            .ephemeral
            .unwrap_or_else(|| EphemeralKeyPair::generate().public_key());
        let (app, compose) = m.claim.unwrap_or((self.app, self.compose));
        let platform = m.platform.clone().unwrap_or_else(|| self.platform.clone());
        let mut fields = platform.default_fields();
        fields.measurement = GUEST_IMAGE;
        fields.host_data = m.host_data.unwrap_or_else(|| app_host_data(&app, &compose));
        fields.report_data = if m.wrong_report_data {
            binding::get_app_key_report_data(&[0u8; 32], &ephemeral)
        } else {
            binding::get_app_key_report_data(&nonce, &ephemeral)
        };
        if let Some(f) = &m.fields {
            f(&mut fields);
        }
        let mut report = platform.sign(&fields);
        if let Some(f) = &m.report {
            f(&mut report);
        }
        let mut table = platform.certificates(fields.reported_tcb).to_cert_table();
        if let Some(f) = &m.certs {
            f(&mut table, self);
        }
        let mut req = pb::GetAppKeyRequest {
            evidence: Some(pb::Evidence {
                report,
                cert_table: table,
            }),
            nonce,
            app_id: app.to_vec(),
            compose_hash: compose.to_vec(),
            ephemeral_public_key: ephemeral.to_vec(),
            epoch: None,
        };
        if let Some(f) = &m.request {
            f(&mut req);
        }
        req
    }
}

fn fields(f: impl Fn(&mut ReportFields) + 'static) -> Mutation {
    Mutation {
        fields: Some(Box::new(f)),
        ..Mutation::default()
    }
}
fn report(f: impl Fn(&mut Vec<u8>) + 'static) -> Mutation {
    Mutation {
        report: Some(Box::new(f)),
        ..Mutation::default()
    }
}
fn certs(f: impl Fn(&mut Vec<u8>, &Ctx) + 'static) -> Mutation {
    Mutation {
        certs: Some(Box::new(f)),
        ..Mutation::default()
    }
}
fn request(f: impl Fn(&mut pb::GetAppKeyRequest) + 'static) -> Mutation {
    Mutation {
        request: Some(Box::new(f)),
        ..Mutation::default()
    }
}

fn put_entry(buf: &mut [u8], index: usize, guid: Guid, offset: u32, len: u32) {
    let s = index * cert_table::ENTRY_LEN;
    buf[s..s + 16].copy_from_slice(&guid.0);
    buf[s + 16..s + 20].copy_from_slice(&offset.to_le_bytes());
    buf[s + 20..s + 24].copy_from_slice(&len.to_le_bytes());
}

fn vcek_of(table: &[u8]) -> Vec<u8> {
    CertificateBundle::from_cert_table(table)
        .unwrap()
        .vcek
        .unwrap()
}

fn forged_authority() -> Arc<SimAuthority> {
    // A PKI nobody trusts, with AMD's names. 2048-bit keys keep the test fast; the verifier
    // refuses the chain for its root, not for its key size.
    let mut rng = rand::thread_rng();
    let ark = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let ask = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    Arc::new(SimAuthority::from_keys(
        AuthorityNames::amd_lookalike(),
        ark,
        ask,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_request_fails_before_the_registry_is_read() {
    let (node, registry) = node();
    node.refresh_kms_state().await.serving.expect("serving");
    let ctx = Ctx::guest();
    let good = ctx.request(&node, &Mutation::default());
    let reference = node.get_app_key(good).await.expect("a good request works");
    let secrets = [hex::encode(&reference.sealed_keys)];
    let reads = registry.app_reads.load(Ordering::Relaxed);
    let records = node.log().len();

    let expired = Arc::new(
        SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP)
            .with_vcek_validity(1_704_067_200, 1_735_689_600),
    );
    let forged = Arc::new(SimulatedPlatform::new(
        forged_authority(),
        Product::Milan,
        GUEST_CHIP,
    ));
    let unregistered_app = [0x5a; 20];

    let cases: Vec<(&str, Mutation, Refusal, &str)> = vec![
        (
            "empty report",
            report(|r| r.clear()),
            Refusal::Unauthenticated,
            "report is 0 bytes",
        ),
        (
            "truncated report",
            report(|r| r.truncate(1000)),
            Refusal::Unauthenticated,
            "report is 1000 bytes",
        ),
        (
            "oversized report",
            report(|r| r.resize(2048, 0)),
            Refusal::Unauthenticated,
            "report is 2048 bytes",
        ),
        (
            "all-zero report",
            report(|r| r.iter_mut().for_each(|b| *b = 0)),
            Refusal::Unauthenticated,
            "version 0",
        ),
        (
            "no evidence",
            request(|q| q.evidence = None),
            Refusal::InvalidArgument,
            "evidence is missing",
        ),
        (
            "measurement tampered",
            report(|r| r[offsets::MEASUREMENT] ^= 1),
            Refusal::Unauthenticated,
            "does not verify",
        ),
        (
            "host_data tampered",
            report(|r| r[offsets::HOST_DATA] ^= 1),
            Refusal::Unauthenticated,
            "does not verify",
        ),
        (
            "report_data tampered",
            report(|r| r[offsets::REPORT_DATA + 3] ^= 1),
            Refusal::Unauthenticated,
            "does not verify",
        ),
        (
            "policy tampered to debug",
            report(|r| r[offsets::POLICY + 2] |= 0x08),
            Refusal::Unauthenticated,
            "does not verify",
        ),
        (
            "guest_svn tampered",
            report(|r| r[offsets::GUEST_SVN] ^= 1),
            Refusal::Unauthenticated,
            "does not verify",
        ),
        (
            "reserved field set",
            report(|r| r[0x4C] = 1),
            Refusal::Unauthenticated,
            "reserved after key_info",
        ),
        (
            "reserved tail of signed area",
            report(|r| r[0x290] = 1),
            Refusal::Unauthenticated,
            "must be zero",
        ),
        (
            "TCB reserved byte",
            report(|r| r[offsets::REPORTED_TCB + 3] = 1),
            Refusal::Unauthenticated,
            "reserved byte",
        ),
        (
            "unsigned tail",
            report(|r| r[0x400] = 1),
            Refusal::Unauthenticated,
            "unsigned tail",
        ),
        (
            "signature r high bytes",
            report(|r| r[offsets::SIGNATURE_R + 60] = 1),
            Refusal::Unauthenticated,
            "signature.r high bytes",
        ),
        (
            "signature s zeroed",
            report(|r| r[offsets::SIGNATURE_S..offsets::SIGNATURE_S + 48].fill(0)),
            Refusal::Unauthenticated,
            "not valid P-384 scalars",
        ),
        (
            "version too new",
            report(|r| r[0] = 9),
            Refusal::Unauthenticated,
            "version 9",
        ),
        (
            "unknown signature algorithm",
            report(|r| r[offsets::SIG_ALGO] = 2),
            Refusal::Unauthenticated,
            "signature_algo is 2",
        ),
        (
            "chip id tampered",
            report(|r| r[offsets::CHIP_ID] ^= 1),
            Refusal::Unauthenticated,
            "another chip",
        ),
        (
            "unknown CPUID",
            fields(|f| f.cpuid = (0x17, 0x31, 0)),
            Refusal::Unauthenticated,
            "CPUID family 0x17",
        ),
        (
            "VLEK-signed without a VLEK",
            fields(|f| f.key_info = KeyInfo::with_signing_key(1)),
            Refusal::Unauthenticated,
            "no VLEK certificate was supplied",
        ),
        (
            "masked chip id",
            fields(|f| {
                f.key_info = KeyInfo::MASK_CHIP_KEY;
                f.chip_id = [0; 64];
            }),
            Refusal::Unauthenticated,
            "masked",
        ),
        (
            "debug policy",
            fields(|f| f.policy |= GuestPolicy::DEBUG),
            Refusal::Unauthenticated,
            "debug",
        ),
        (
            "migration agent allowed",
            fields(|f| f.policy |= GuestPolicy::MIGRATE_MA),
            Refusal::Unauthenticated,
            "migration agent",
        ),
        (
            "VMPL 1",
            fields(|f| f.vmpl = 1),
            Refusal::Unauthenticated,
            "vmpl is 1",
        ),
        (
            "policy reserved bits",
            fields(|f| f.policy |= 1 << 50),
            Refusal::Unauthenticated,
            "reserved bits",
        ),
        (
            "VCEK of another chip",
            certs(|t, _| {
                let other = SimulatedPlatform::new(authority(), Product::Milan, b"another-chip");
                let mut b = CertificateBundle::from_cert_table(t).unwrap();
                b.vcek = Some(other.vcek_der(other.tcb()));
                *t = b.to_cert_table();
            }),
            Refusal::Unauthenticated,
            "another chip",
        ),
        (
            "VCEK of another TCB",
            certs(|t, ctx| {
                let mut b = CertificateBundle::from_cert_table(t).unwrap();
                let tcb = TcbVersion {
                    snp: ctx.platform.tcb().snp + 1,
                    ..ctx.platform.tcb()
                };
                b.vcek = Some(ctx.platform.vcek_der(tcb));
                *t = b.to_cert_table();
            }),
            Refusal::Unauthenticated,
            "another TCB",
        ),
        (
            "expired VCEK",
            Mutation {
                platform: Some(expired),
                ..Mutation::default()
            },
            Refusal::Unauthenticated,
            "VCEK expired",
        ),
        (
            "forged AMD look-alike chain",
            Mutation {
                platform: Some(forged),
                ..Mutation::default()
            },
            Refusal::Unauthenticated,
            "not a pinned root",
        ),
        (
            "Genoa VCEK for a Milan report",
            certs(|t, _| {
                let g = SimulatedPlatform::new(authority(), Product::Genoa, GUEST_CHIP);
                *t = g.certificates(g.tcb()).to_cert_table();
            }),
            Refusal::Unauthenticated,
            "CPUID says Milan",
        ),
        (
            "VCEK missing from the table",
            certs(|t, _| {
                let mut b = CertificateBundle::from_cert_table(t).unwrap();
                b.vcek = None;
                *t = b.to_cert_table();
            }),
            Refusal::FailedPrecondition,
            "no VCEK",
        ),
        (
            "garbage VCEK",
            certs(|t, _| {
                *t = cert_table::encode(&[CertTableEntry {
                    guid: Guid::VCEK,
                    data: b"not a certificate".to_vec(),
                }]);
            }),
            Refusal::Unauthenticated,
            "VCEK is not a valid X.509",
        ),
        (
            "truncated certificate table",
            certs(|t, _| t.truncate(30)),
            Refusal::Unauthenticated,
            "no terminating",
        ),
        (
            // An empty table is a host that supplies no certificates: the VCEK must be
            // fetched, and this node has no source to fetch it from.
            "empty certificate table, no KDS",
            certs(|t, _| t.clear()),
            Refusal::FailedPrecondition,
            "this node fetches none",
        ),
        (
            "truncated certificate table",
            certs(|t, _| t.truncate(10)),
            Refusal::Unauthenticated,
            "no terminating",
        ),
        (
            "overlapping table entries",
            certs(|t, _| {
                let vcek = vcek_of(t);
                let mut buf = vec![0u8; 72 + vcek.len()];
                put_entry(&mut buf, 0, Guid::VCEK, 72, vcek.len() as u32);
                put_entry(&mut buf, 1, Guid::ASK, 80, 10);
                buf[72..].copy_from_slice(&vcek);
                *t = buf;
            }),
            Refusal::Unauthenticated,
            "overlaps another entry",
        ),
        (
            "huge table entry",
            certs(|t, _| {
                let mut buf = vec![0u8; 48];
                put_entry(&mut buf, 0, Guid::VCEK, 48, 0xFFFF_FF00);
                *t = buf;
            }),
            Refusal::Unauthenticated,
            "more than the 65536 allowed",
        ),
        (
            "entry beyond the table",
            certs(|t, _| {
                let mut buf = vec![0u8; 100];
                put_entry(&mut buf, 0, Guid::VCEK, 48, 500);
                *t = buf;
            }),
            Refusal::Unauthenticated,
            "beyond",
        ),
        (
            "wrong report_data",
            Mutation {
                wrong_report_data: true,
                ..Mutation::default()
            },
            Refusal::FailedPrecondition,
            "report_data does not bind",
        ),
        (
            "unknown nonce",
            request(|q| q.nonce = vec![0xab; 32]),
            Refusal::FailedPrecondition,
            "unknown or already used nonce",
        ),
        (
            "nonce of the wrong length",
            request(|q| q.nonce = vec![1; 31]),
            Refusal::InvalidArgument,
            "nonce must be 32 bytes",
        ),
        (
            "host_data for another compose",
            Mutation {
                host_data: Some(app_host_data(&APP, &[0x99; 32])),
                ..Mutation::default()
            },
            Refusal::Unauthenticated,
            "host_data",
        ),
        (
            "claim of another app",
            request(move |q| q.app_id = unregistered_app.to_vec()),
            Refusal::Unauthenticated,
            "host_data",
        ),
        (
            "ephemeral key of the wrong length",
            request(|q| q.ephemeral_public_key.truncate(31)),
            Refusal::InvalidArgument,
            "ephemeral_public_key must be 32 bytes",
        ),
        (
            "app id of the wrong length",
            request(|q| q.app_id.push(0)),
            Refusal::InvalidArgument,
            "app_id must be 20 bytes",
        ),
        (
            "compose hash of the wrong length",
            request(|q| q.compose_hash.clear()),
            Refusal::InvalidArgument,
            "compose_hash must be 32 bytes",
        ),
        (
            "epoch ahead of the registry",
            request(|q| q.epoch = Some(7)),
            Refusal::InvalidArgument,
            "ahead of the registry",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());

    for (name, mutation, refusal, needle) in &cases {
        let req = ctx.request(&node, mutation);
        let err: ReleaseError = node
            .get_app_key(req)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: keys were released"));
        assert_eq!(err.refusal(), *refusal, "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(needle),
            "{name}: {message:?} does not mention {needle:?}"
        );
        for s in &secrets {
            assert!(
                !message.contains(s.as_str()),
                "{name}: key material in the message"
            );
        }
        // And the node keeps serving.
        let again = node
            .get_app_key(ctx.request(&node, &Mutation::default()))
            .await
            .unwrap_or_else(|e| panic!("after {name}: {e}"));
        assert_eq!(again.app_signing_address, reference.app_signing_address);
    }
    // None of them reached the registry or the log: only the good requests did.
    assert_eq!(
        registry.app_reads.load(Ordering::Relaxed) - reads,
        cases.len() as u64,
        "one registry read per good request, none for a bad one"
    );
    assert_eq!(node.log().len() - records, cases.len() as u64);
}

/// `(r, n - s)`: the other valid signature of the same report bytes.
fn malleate(report: &mut [u8]) {
    use p384::elliptic_curve::PrimeField;
    let at = offsets::SIGNATURE_S;
    let mut s_be: [u8; 48] = report[at..at + 48].try_into().unwrap();
    s_be.reverse();
    let s = Option::<p384::Scalar>::from(p384::Scalar::from_repr(s_be.into())).unwrap();
    let mut twin: [u8; 48] = (-s).to_repr().into();
    twin.reverse();
    report[at..at + 48].copy_from_slice(&twin);
}

#[tokio::test]
async fn a_small_order_ephemeral_key_gets_no_keys() {
    // A guest binds an X25519 key of small order (u = 0 and u = 1: every shared secret with
    // them is fixed) into genuine, authorized evidence. The seal refuses it, so nothing is
    // sent. The record went to the log before the seal (its write overlaps the seal), so the
    // log counts a release that never left: it may over-count, never under-count.
    let (node, _registry) = node();
    node.refresh_kms_state().await.serving.expect("serving");
    let ctx = Ctx::guest();
    let mut one = [0u8; 32];
    one[0] = 1;
    for (i, key) in [[0u8; 32], one].into_iter().enumerate() {
        let req = ctx.request(
            &node,
            &Mutation {
                ephemeral: Some(key),
                ..Mutation::default()
            },
        );
        let err = node.get_app_key(req).await.unwrap_err();
        assert_eq!(err.refusal(), Refusal::InvalidArgument, "{err}");
        assert!(
            err.to_string()
                .contains("ephemeral_public_key cannot be used"),
            "{err}"
        );
        assert_eq!(node.log().records().len(), i + 1);
    }
    // The node still serves the next good request.
    node.get_app_key(ctx.request(&node, &Mutation::default()))
        .await
        .expect("served");
}

#[tokio::test]
async fn the_malleated_twin_of_a_used_report_is_a_replay() {
    // Genuine AMD reports carry high-S signatures, so both (r, s) and (r, n - s) verify: the
    // bytes of a report are not unique. What stops a replay is the nonce, consumed once.
    let (node, registry) = node();
    node.refresh_kms_state().await.serving.expect("serving");
    let ctx = Ctx::guest();
    let good = ctx.request(&node, &Mutation::default());
    let mut twin = good.clone();
    malleate(&mut twin.evidence.as_mut().unwrap().report);
    assert_ne!(twin.evidence, good.evidence);
    node.get_app_key(good)
        .await
        .expect("the original is served");
    let reads = registry.app_reads.load(Ordering::Relaxed);
    let err = node.get_app_key(twin.clone()).await.unwrap_err();
    assert_eq!(err.refusal(), Refusal::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("nonce"), "{err}");
    // With a fresh nonce the twin is still bound to the old one.
    twin.nonce = node.challenge().unwrap().nonce;
    let err = node.get_app_key(twin).await.unwrap_err();
    assert_eq!(err.refusal(), Refusal::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("report_data"), "{err}");
    assert_eq!(registry.app_reads.load(Ordering::Relaxed), reads);

    // And the twin of an unused report verifies: the signature form is not what is checked.
    let mut fresh = ctx.request(&node, &Mutation::default());
    malleate(&mut fresh.evidence.as_mut().unwrap().report);
    node.get_app_key(fresh)
        .await
        .expect("a twin with its own nonce is served");
}

#[tokio::test]
async fn requests_that_only_name_an_app_do_not_spend_its_budget() {
    // Someone who knows a victim's app id floods requests claiming it: without evidence bound
    // to that app (host_data), none of them counts against the app's limit.
    let (node, registry) = node_with_app_limit(0.001, 2);
    registry.set_app(|boot| {
        Ok(if boot.measurement == OTHER_IMAGE {
            (false, "os image not allowed".into())
        } else {
            (true, String::new())
        })
    });
    node.refresh_kms_state().await.serving.expect("serving");
    let ctx = Ctx::guest();
    let junk = [
        Mutation {
            host_data: Some([0x99; 32]),
            ..Mutation::default()
        },
        Mutation {
            report: Some(Box::new(|r| r[offsets::MEASUREMENT] ^= 1)),
            ..Mutation::default()
        },
        // Genuine evidence with the victim's host_data, from a VM anyone can launch with
        // another image: it verifies and binds to the app, and the registry refuses it.
        Mutation {
            fields: Some(Box::new(|f| f.measurement = OTHER_IMAGE)),
            ..Mutation::default()
        },
        Mutation {
            wrong_report_data: true,
            ..Mutation::default()
        },
        Mutation {
            request: Some(Box::new(|r| r.evidence = None)),
            ..Mutation::default()
        },
    ];
    for round in 0..10 {
        for m in &junk {
            let err = node.get_app_key(ctx.request(&node, m)).await.unwrap_err();
            assert_ne!(
                err.refusal(),
                Refusal::ResourceExhausted,
                "round {round}: junk was counted against the app: {err}"
            );
        }
    }
    for i in 0..2 {
        node.get_app_key(ctx.request(&node, &Mutation::default()))
            .await
            .unwrap_or_else(|e| panic!("genuine request {i} after the flood: {e}"));
    }
    // The app's own allowed requests do count.
    let err = node
        .get_app_key(ctx.request(&node, &Mutation::default()))
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Refusal::ResourceExhausted, "{err}");
    assert!(
        err.to_string().contains("too many key requests for app"),
        "{err}"
    );
}
