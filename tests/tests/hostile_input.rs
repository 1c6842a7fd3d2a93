//! Issue 9's table: every kind of bad GetAppKey request against a running node, each with its
//! exact status and a message naming the problem, no key material in any answer, and the node
//! still serving the next good request.

use rsa::RsaPrivateKey;
use snpkms_api::pb;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_api::{binding, pb::kms_client::KmsClient};
use snpkms_chain_client::B256;
use snpkms_e2e::*;
use snpkms_guest::GuestClient;
use snpkms_simulator::{AuthorityNames, ReportFields, SimAuthority, SimulatedPlatform};
use snpkms_testkit::MIN_TCB;
use snpkms_verifier::cert_table::{self, CertTableEntry, Guid};
use snpkms_verifier::report::offsets;
use snpkms_verifier::{
    app_host_data, CertificateBundle, GuestPolicy, KeyInfo, Product, TcbVersion,
};
use std::sync::Arc;
use tonic::Code;

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
}

struct Ctx {
    app: [u8; 20],
    compose: [u8; 32],
    platform: Arc<SimulatedPlatform>,
}

impl Ctx {
    async fn request(
        &self,
        raw: &mut KmsClient<tonic::transport::Channel>,
        m: &Mutation,
    ) -> pb::GetAppKeyRequest {
        let nonce = raw
            .get_challenge(pb::GetChallengeRequest {})
            .await
            .expect("challenge")
            .into_inner()
            .nonce;
        let ephemeral = EphemeralKeyPair::generate();
        let (app, compose) = m.claim.unwrap_or((self.app, self.compose));
        let platform = m.platform.clone().unwrap_or_else(|| self.platform.clone());
        let mut fields = platform.default_fields();
        fields.measurement = GUEST_IMAGE;
        fields.host_data = m.host_data.unwrap_or_else(|| app_host_data(&app, &compose));
        fields.report_data = if m.wrong_report_data {
            binding::get_app_key_report_data(&[0u8; 32], &ephemeral.public_key())
        } else {
            binding::get_app_key_report_data(&nonce, &ephemeral.public_key())
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
            ephemeral_public_key: ephemeral.public_key().to_vec(),
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
        AuthorityNames::amd_lookalike(Product::Milan),
        ark,
        ask,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn forty_plus_kinds_of_bad_requests_fail_closed() {
    let mut stack = Stack::start().await;
    // Short nonce lifetime for the expiry case.
    stack.reconfigure(|c| c.limits.nonce_ttl_secs = 2).await;

    let app = stack.app();
    let ctx = Ctx {
        app: app.0 .0,
        compose: stack.compose_hash,
        platform: Arc::new(SimulatedPlatform::new(
            authority(),
            Product::Milan,
            GUEST_CHIP.as_bytes(),
        )),
    };
    // A second app, disabled by its owner; an app id nobody registered.
    let (disabled_app, _) = stack
        .fixture
        .app_owner
        .register_app(B256::from([0xd1; 32]))
        .await
        .unwrap();
    stack
        .fixture
        .app_owner
        .add_compose_hash(disabled_app, stack.compose())
        .await
        .unwrap();
    stack
        .fixture
        .app_owner
        .set_allow_any_device(disabled_app, true)
        .await
        .unwrap();
    stack
        .fixture
        .app_owner
        .disable_app(disabled_app)
        .await
        .unwrap();
    stack.settle().await;

    let mut raw = stack.raw_client().await;
    let mut good = GuestClient::connect(&stack.url()).await.unwrap();
    let g = guest(app, stack.compose_hash);
    let reference = good
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("a good request works");
    let secrets = [
        hex::encode(reference.disk_key.as_slice()),
        hex::encode(reference.env_secret_key.as_slice()),
        hex::encode(reference.signing_key.as_slice()),
    ];

    let low = TcbVersion {
        microcode: MIN_TCB.microcode - 1,
        ..MIN_TCB
    };
    let other_chip = Arc::new(SimulatedPlatform::new(
        authority(),
        Product::Milan,
        b"unlisted-chip",
    ));
    let expired = Arc::new(
        SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP.as_bytes())
            .with_vcek_validity(1_704_067_200, 1_735_689_600),
    );
    let forged = Arc::new(SimulatedPlatform::new(
        forged_authority(),
        Product::Milan,
        GUEST_CHIP.as_bytes(),
    ));
    let unregistered_app = [0x5a; 20];

    let cases: Vec<(&str, Mutation, Code, &str)> = vec![
        (
            "empty report",
            report(|r| r.clear()),
            Code::Unauthenticated,
            "report is 0 bytes",
        ),
        (
            "truncated report",
            report(|r| r.truncate(1000)),
            Code::Unauthenticated,
            "report is 1000 bytes",
        ),
        (
            "oversized report",
            report(|r| r.resize(2048, 0)),
            Code::Unauthenticated,
            "report is 2048 bytes",
        ),
        (
            "all-zero report",
            report(|r| r.iter_mut().for_each(|b| *b = 0)),
            Code::Unauthenticated,
            "version 0",
        ),
        (
            "no evidence",
            request(|q| q.evidence = None),
            Code::InvalidArgument,
            "evidence is missing",
        ),
        (
            "measurement tampered",
            report(|r| r[offsets::MEASUREMENT] ^= 1),
            Code::Unauthenticated,
            "does not verify",
        ),
        (
            "host_data tampered",
            report(|r| r[offsets::HOST_DATA] ^= 1),
            Code::Unauthenticated,
            "does not verify",
        ),
        (
            "report_data tampered",
            report(|r| r[offsets::REPORT_DATA + 3] ^= 1),
            Code::Unauthenticated,
            "does not verify",
        ),
        (
            "policy tampered to debug",
            report(|r| r[offsets::POLICY + 2] |= 0x08),
            Code::Unauthenticated,
            "does not verify",
        ),
        (
            "guest_svn tampered",
            report(|r| r[offsets::GUEST_SVN] ^= 1),
            Code::Unauthenticated,
            "does not verify",
        ),
        (
            "reserved field set",
            report(|r| r[0x4C] = 1),
            Code::Unauthenticated,
            "reserved after key_info",
        ),
        (
            "reserved tail of signed area",
            report(|r| r[0x290] = 1),
            Code::Unauthenticated,
            "must be zero",
        ),
        (
            "TCB reserved byte",
            report(|r| r[offsets::REPORTED_TCB + 3] = 1),
            Code::Unauthenticated,
            "reserved byte",
        ),
        (
            "unsigned tail",
            report(|r| r[0x400] = 1),
            Code::Unauthenticated,
            "unsigned tail",
        ),
        (
            "signature r high bytes",
            report(|r| r[offsets::SIGNATURE_R + 60] = 1),
            Code::Unauthenticated,
            "signature.r high bytes",
        ),
        (
            "signature s zeroed",
            report(|r| r[offsets::SIGNATURE_S..offsets::SIGNATURE_S + 48].fill(0)),
            Code::Unauthenticated,
            "not valid P-384 scalars",
        ),
        (
            "version too new",
            report(|r| r[0] = 9),
            Code::Unauthenticated,
            "version 9",
        ),
        (
            "unknown signature algorithm",
            report(|r| r[offsets::SIG_ALGO] = 2),
            Code::Unauthenticated,
            "signature_algo is 2",
        ),
        (
            "chip id tampered",
            report(|r| r[offsets::CHIP_ID] ^= 1),
            Code::Unauthenticated,
            "another chip",
        ),
        (
            "unknown CPUID",
            fields(|f| f.cpuid = (0x17, 0x31, 0)),
            Code::Unauthenticated,
            "CPUID family 0x17",
        ),
        (
            "VLEK-signed",
            fields(|f| f.key_info = KeyInfo::with_signing_key(1)),
            Code::Unauthenticated,
            "VLEK is not supported",
        ),
        (
            "masked chip id",
            fields(|f| {
                f.key_info = KeyInfo::MASK_CHIP_KEY;
                f.chip_id = [0; 64];
            }),
            Code::Unauthenticated,
            "masked",
        ),
        (
            "debug policy",
            fields(|f| f.policy |= GuestPolicy::DEBUG),
            Code::Unauthenticated,
            "debug",
        ),
        (
            "migration agent allowed",
            fields(|f| f.policy |= GuestPolicy::MIGRATE_MA),
            Code::Unauthenticated,
            "migration agent",
        ),
        (
            "VMPL 1",
            fields(|f| f.vmpl = 1),
            Code::Unauthenticated,
            "vmpl is 1",
        ),
        (
            "policy reserved bits",
            fields(|f| f.policy |= 1 << 50),
            Code::Unauthenticated,
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
            Code::Unauthenticated,
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
            Code::Unauthenticated,
            "another TCB",
        ),
        (
            "expired VCEK",
            Mutation {
                platform: Some(expired),
                ..Mutation::default()
            },
            Code::Unauthenticated,
            "VCEK expired",
        ),
        (
            "forged AMD look-alike chain",
            Mutation {
                platform: Some(forged),
                ..Mutation::default()
            },
            Code::Unauthenticated,
            "not a pinned root",
        ),
        (
            "Genoa VCEK for a Milan report",
            certs(|t, _| {
                let g = SimulatedPlatform::new(authority(), Product::Genoa, GUEST_CHIP.as_bytes());
                *t = g.certificates(g.tcb()).to_cert_table();
            }),
            Code::Unauthenticated,
            "CPUID says Milan",
        ),
        (
            "VCEK missing from the table",
            certs(|t, _| {
                let mut b = CertificateBundle::from_cert_table(t).unwrap();
                b.vcek = None;
                *t = b.to_cert_table();
            }),
            Code::Unauthenticated,
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
            Code::Unauthenticated,
            "VCEK is not a valid X.509",
        ),
        (
            "truncated certificate table",
            certs(|t, _| t.truncate(30)),
            Code::Unauthenticated,
            "no terminating",
        ),
        (
            "empty certificate table",
            certs(|t, _| t.clear()),
            Code::Unauthenticated,
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
            Code::Unauthenticated,
            "overlaps another entry",
        ),
        (
            "huge table entry",
            certs(|t, _| {
                let mut buf = vec![0u8; 48];
                put_entry(&mut buf, 0, Guid::VCEK, 48, 0xFFFF_FF00);
                *t = buf;
            }),
            Code::Unauthenticated,
            "more than the 65536 allowed",
        ),
        (
            "entry beyond the table",
            certs(|t, _| {
                let mut buf = vec![0u8; 100];
                put_entry(&mut buf, 0, Guid::VCEK, 48, 500);
                *t = buf;
            }),
            Code::Unauthenticated,
            "beyond",
        ),
        (
            "reported TCB below minimum",
            Mutation {
                platform: Some(Arc::new(
                    SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP.as_bytes())
                        .with_tcb(low),
                )),
                ..Mutation::default()
            },
            Code::PermissionDenied,
            "tcb below minimum",
        ),
        (
            "committed TCB below minimum",
            fields(move |f| f.committed_tcb = low),
            Code::PermissionDenied,
            "tcb below minimum",
        ),
        (
            "launch TCB below minimum",
            fields(move |f| f.launch_tcb = low),
            Code::PermissionDenied,
            "tcb below minimum",
        ),
        (
            "OS image not allowed",
            fields(|f| f.measurement = [0x01; 48]),
            Code::PermissionDenied,
            "os image not allowed",
        ),
        (
            "device not allowed",
            Mutation {
                platform: Some(other_chip),
                ..Mutation::default()
            },
            Code::PermissionDenied,
            "device not allowed",
        ),
        (
            "wrong report_data",
            Mutation {
                wrong_report_data: true,
                ..Mutation::default()
            },
            Code::FailedPrecondition,
            "report_data does not bind",
        ),
        (
            "unknown nonce",
            request(|q| q.nonce = vec![0xab; 32]),
            Code::FailedPrecondition,
            "unknown or already used nonce",
        ),
        (
            "nonce of the wrong length",
            request(|q| q.nonce = vec![1; 31]),
            Code::InvalidArgument,
            "nonce must be 32 bytes",
        ),
        (
            "host_data for another compose",
            Mutation {
                host_data: Some(app_host_data(&app.0 .0, &[0x99; 32])),
                ..Mutation::default()
            },
            Code::Unauthenticated,
            "host_data",
        ),
        (
            "claim of another app",
            request(move |q| q.app_id = unregistered_app.to_vec()),
            Code::Unauthenticated,
            "host_data",
        ),
        (
            "unknown app",
            Mutation {
                claim: Some((unregistered_app, [0x44; 32])),
                ..Mutation::default()
            },
            Code::PermissionDenied,
            "app not registered",
        ),
        (
            "disabled app",
            Mutation {
                claim: Some((disabled_app.0 .0, [0x44; 32])),
                ..Mutation::default()
            },
            Code::PermissionDenied,
            "app disabled",
        ),
        (
            "ephemeral key of the wrong length",
            request(|q| q.ephemeral_public_key.truncate(31)),
            Code::InvalidArgument,
            "ephemeral_public_key must be 32 bytes",
        ),
        (
            "app id of the wrong length",
            request(|q| q.app_id.push(0)),
            Code::InvalidArgument,
            "app_id must be 20 bytes",
        ),
        (
            "compose hash of the wrong length",
            request(|q| q.compose_hash.clear()),
            Code::InvalidArgument,
            "compose_hash must be 32 bytes",
        ),
        (
            "epoch ahead of the registry",
            request(|q| q.epoch = Some(7)),
            Code::InvalidArgument,
            "ahead of the registry",
        ),
        (
            "huge request",
            request(|q| q.evidence.as_mut().unwrap().cert_table = vec![0u8; 200_000]),
            Code::OutOfRange,
            "message length too large",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());

    for (name, mutation, code, needle) in &cases {
        let req = ctx.request(&mut raw, mutation).await;
        let status = raw
            .get_app_key(req)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: keys were released"));
        assert_eq!(status.code(), *code, "{name}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{name}: {:?} does not mention {needle:?}",
            status.message()
        );
        for s in &secrets {
            assert!(
                !status.message().contains(s.as_str()),
                "{name}: key material in the message"
            );
        }
        // And the node keeps serving.
        let again = good
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await
            .unwrap_or_else(|e| panic!("after {name}: {e}"));
        assert_eq!(*again.disk_key, *reference.disk_key);
    }

    // Replayed and expired nonces.
    let req = ctx.request(&mut raw, &Mutation::default()).await;
    raw.get_app_key(req.clone()).await.expect("first use");
    let replay = raw.get_app_key(req).await.unwrap_err();
    assert_eq!(replay.code(), Code::FailedPrecondition);
    assert!(replay.message().contains("already used"));
    let req = ctx.request(&mut raw, &Mutation::default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let expired = raw.get_app_key(req).await.unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    assert!(expired.message().contains("expired"), "{expired:?}");

    // A challenge issued before a restart is unknown after it (nonces live in memory).
    let req = ctx.request(&mut raw, &Mutation::default()).await;
    stack.stop_node().await;
    stack.start_node().await;
    let mut raw = stack.raw_client().await;
    let forgotten = raw.get_app_key(req).await.unwrap_err();
    assert_eq!(forgotten.code(), Code::FailedPrecondition, "{forgotten:?}");
    assert!(forgotten.message().contains("unknown"), "{forgotten:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_resource_exhausted() {
    let mut stack = Stack::start().await;
    stack
        .reconfigure(|c| {
            c.limits.per_client_rate = 1.0;
            c.limits.per_client_burst = 3;
        })
        .await;
    let mut raw = stack.raw_client().await;
    for _ in 0..3 {
        raw.get_challenge(pb::GetChallengeRequest {})
            .await
            .expect("within the burst");
    }
    let limited = raw
        .get_challenge(pb::GetChallengeRequest {})
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert!(
        limited
            .message()
            .contains("too many requests from 127.0.0.1"),
        "{limited:?}"
    );

    // Per app: a burst of 1 for GetAppKey of one app.
    stack
        .reconfigure(|c| {
            c.limits.per_client_rate = 0.0;
            c.limits.per_app_rate = 0.01;
            c.limits.per_app_burst = 1;
        })
        .await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut client = GuestClient::connect(&stack.url()).await.unwrap();
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("first request of the app");
    match client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
    {
        Err(snpkms_guest::GuestClientError::Refused { code, message }) => {
            assert_eq!(code, Code::ResourceExhausted);
            assert!(
                message.contains("too many key requests for app"),
                "{message}"
            );
        }
        Err(e) => panic!("expected RESOURCE_EXHAUSTED, got {e}"),
        Ok(_) => panic!("expected RESOURCE_EXHAUSTED, got keys"),
    }
}
