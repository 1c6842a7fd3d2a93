//! Bad GetAppKey requests against a running node over gRPC: one per status code and every one
//! that needs the chain, each with its exact status and a message naming the problem, no key
//! material in any answer, and the node still serving the next good request. (Every kind that
//! fails before the chain is in the node core's table, `core/tests/hostile_input.rs`.)

use snpkms_api::pb;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_api::{binding, pb::kms_client::KmsClient};
use snpkms_chain_client::B256;
use snpkms_e2e::*;
use snpkms_guest::GuestClient;
use snpkms_simulator::{ReportFields, SimulatedPlatform};
use snpkms_testkit::MIN_TCB;
use snpkms_verifier::offsets;
use snpkms_verifier::{app_host_data, Product, TcbVersion};
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
    /// A guest of `app` running `compose` on its own Milan chip.
    fn guest(app: [u8; 20], compose: [u8; 32]) -> Ctx {
        Ctx {
            app,
            compose,
            platform: Arc::new(SimulatedPlatform::new(
                authority(),
                Product::Milan,
                GUEST_CHIP.as_bytes(),
            )),
        }
    }

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
fn request(f: impl Fn(&mut pb::GetAppKeyRequest) + 'static) -> Mutation {
    Mutation {
        request: Some(Box::new(f)),
        ..Mutation::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_of_every_status_fail_closed() {
    let mut stack = Stack::start().await;
    // Short nonce lifetime for the expiry case.
    stack.reconfigure(|c| c.limits.nonce_ttl_secs = 2).await;

    let app = stack.app();
    let ctx = Ctx::guest(app.0 .0, stack.compose_hash);
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
    let unregistered_app = [0x5a; 20];

    // One case per status code, and every case that needs the chain; the full table of
    // requests that fail before any chain read runs against the node core with fakes
    // (`core/tests/hostile_input.rs`).
    let cases: Vec<(&str, Mutation, Code, &str)> = vec![
        (
            "measurement tampered",
            report(|r| r[offsets::MEASUREMENT] ^= 1),
            Code::Unauthenticated,
            "does not verify",
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
            // A committed TCB below the current one is provisional firmware, refused by the
            // verifier's policy before the registry's minimum is asked.
            "committed TCB below the current (provisional firmware)",
            fields(move |f| f.committed_tcb = low),
            Code::Unauthenticated,
            "provisional firmware",
        ),
        (
            // Committed equal to current, both below the registry's minimum: not provisional,
            // so the registry's minimum is what refuses it.
            "committed (and current) TCB below minimum",
            fields(move |f| {
                f.current_tcb = low;
                f.committed_tcb = low;
                f.reported_tcb = low;
            }),
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
            // Governance set a minimum TCB for Milan only: a Genoa guest has no floor, and
            // is refused rather than allowed at any TCB.
            "product without a minimum TCB",
            Mutation {
                platform: Some(Arc::new(SimulatedPlatform::new(
                    authority(),
                    Product::Genoa,
                    GUEST_CHIP.as_bytes(),
                ))),
                ..Mutation::default()
            },
            Code::PermissionDenied,
            "no minimum tcb for product",
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
            "huge request",
            request(|q| q.evidence.as_mut().unwrap().cert_table = vec![0u8; 200_000]),
            Code::ResourceExhausted,
            "message length too large",
        ),
    ];
    for code in [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::FailedPrecondition,
        Code::PermissionDenied,
        Code::ResourceExhausted,
    ] {
        assert!(cases.iter().any(|c| c.2 == code), "no case for {code:?}");
    }

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
    // Requests that only name the app, with validly signed evidence whose host_data binds
    // another app, do not spend its budget: the limit counts requests bound to the app.
    let mut raw = stack.raw_client().await;
    let ctx = Ctx::guest(app.0 .0, stack.compose_hash);
    let junk = Mutation {
        host_data: Some(app_host_data(&[0x77; 20], &stack.compose_hash)),
        ..Mutation::default()
    };
    for _ in 0..5 {
        let req = ctx.request(&mut raw, &junk).await;
        let refused = raw.get_app_key(req).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("host_data"), "{refused:?}");
    }
    let mut client = GuestClient::connect(&stack.url()).await.unwrap();
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("first request of the app, after the junk");
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

/// Challenges cost the node nothing until used: however many are asked for, a fresh client
/// gets one and its key.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_challenges_starves_no_one() {
    let mut stack = Stack::start().await;
    stack
        .reconfigure(|c| {
            c.limits.per_client_rate = 0.0;
            c.limits.max_outstanding_nonces = 10;
        })
        .await;
    let mut raw = stack.raw_client().await;
    for i in 0..5_000 {
        raw.get_challenge(pb::GetChallengeRequest {})
            .await
            .unwrap_or_else(|e| panic!("challenge {i}: {e:?}"));
    }
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    for i in 0..12 {
        stack
            .client()
            .await
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await
            .unwrap_or_else(|e| panic!("key {i} after the flood: {e}"));
    }
}

/// Idle connections, from one address or many, do not shut a fresh client out: an address
/// holds its share only, a silent connection is closed, and past the total the fullest
/// address gives way.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_starve_no_one() {
    use tokio::io::AsyncReadExt;
    let mut stack = Stack::start().await;
    // Not sealed: the same root serves with other connection limits.
    stack.stop_node().await;
    stack.config.limits.max_connections_per_peer = 2;
    stack.config.limits.max_connections = 6;
    stack.config.limits.connection_first_bytes_secs = 2;
    stack.start_node().await;
    let addr: std::net::SocketAddr = stack.url().trim_start_matches("http://").parse().unwrap();
    let mut idle = Vec::new();
    for source in 2..=6u8 {
        for _ in 0..4 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
                .unwrap();
            idle.push(socket.connect(addr).await.unwrap());
        }
    }
    // Each address kept two; the node closed the rest at once.
    let mut closed = 0;
    for s in &mut idle {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 10, "{closed} of 20 closed");
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    stack
        .client()
        .await
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("a fresh client gets its key");
}

/// The metrics listener holds limits of its own: an address holds four connections (a fifth
/// is closed at once, even one that started a request and trickles its headers), a connection
/// that says nothing is closed, and with every place taken a scraper from a fresh address is
/// still answered.
#[tokio::test(flavor = "multi_thread")]
async fn idle_metrics_connections_starve_no_scraper() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    stack.config.limits.connection_first_bytes_secs = 1;
    stack.start_node().await;
    let addr = stack
        .node
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics on");
    let connect = |source: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    async fn closed(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(within, s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }
    // Slow requests: a request line and part of a header, never finished.
    let mut slow = Vec::new();
    for source in 2..=9u8 {
        for _ in 0..4 {
            let mut s = connect(source).await;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x")
                .await
                .unwrap();
            slow.push(s);
        }
    }
    let mut fifth = connect(2).await;
    fifth
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x")
        .await
        .unwrap();
    assert!(
        closed(&mut fifth, Duration::from_secs(5)).await,
        "an address's fifth connection is closed"
    );
    let mut silent = connect(10).await;
    assert!(
        closed(&mut silent, Duration::from_secs(10)).await,
        "a connection that says nothing is closed"
    );
    let text = metrics_text(&addr.to_string()).await;
    assert!(
        text.contains("snpkms_serving"),
        "a fresh scraper is answered"
    );
    let mut still_open = 0;
    for s in &mut slow {
        still_open += !closed(s, Duration::from_millis(50)).await as usize;
    }
    assert!(
        still_open < 32,
        "the fullest address gave way for the scraper ({still_open} of 32 still open)"
    );
}
