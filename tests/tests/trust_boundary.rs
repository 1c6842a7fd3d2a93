//! The node's host writes its configuration and environment, and the registry may drop the
//! node at any time. A node serves only with the security configuration its root is sealed
//! under, and only while the registry allows it (image, chip, TCB, configuration).

use snpkms_chain_client::B256;
use snpkms_e2e::*;
use snpkms_guest::GuestClientError;
use snpkms_kms_node::config::{NodeConfig, PinnedRpcUrl, RpcUrl};
use snpkms_kms_node::NodeError;
use snpkms_kms_node::StoreError;
use snpkms_platform::SimulatedAttestor;
use snpkms_simulator::{default_tcb, SimulatedPlatform};
use snpkms_verifier::{Product, TcbVersion};
use tonic::Code;

/// The node's simulated chip (see `Stack::start`).
fn node_chip() -> [u8; 64] {
    SimulatedPlatform::new(authority(), Product::Milan, b"e2e-kms-chip-1").chip_id()
}

async fn refused_unavailable(stack: &Stack, guest: &SimulatedAttestor) -> String {
    let app = stack.app();
    let mut client = stack.client().await;
    match client
        .get_app_key(guest, app.0 .0, stack.compose_hash, None, stack.root)
        .await
    {
        Err(GuestClientError::Refused { code, message }) => {
            assert_eq!(code, Code::Unavailable, "{message}");
            message
        }
        Err(e) => panic!("expected UNAVAILABLE, got {e}"),
        Ok(_) => panic!("the node released keys while the registry does not allow it"),
    }
}

async fn served(stack: &Stack, guest: &SimulatedAttestor) {
    let app = stack.app();
    let mut client = stack.client().await;
    client
        .get_app_key(guest, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("serving again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_the_registry_drops_stops_serving_from_that_block_and_resumes_when_allowed() {
    let stack = Stack::start().await;
    let g = guest(stack.app(), stack.compose_hash);
    served(&stack, &g).await;
    let governor = &stack.fixture.governor;
    let metrics = stack.node.as_ref().unwrap().metrics_addr.unwrap();

    // The node's image is removed (a compromised KMS release): refused from the removal block.
    let removal = governor
        .remove_kms_measurement(&snpkms_testkit::KMS_MEASUREMENT)
        .await
        .unwrap();
    stack.wait_pinned(removal.block).await;
    let why = refused_unavailable(&stack, &g).await;
    assert!(why.contains("kms measurement not allowed"), "{why}");
    let body = metrics_text(&metrics.to_string()).await;
    assert!(body.contains("snpkms_serving 0"), "{body}");
    let back = governor
        .add_kms_measurement(&snpkms_testkit::KMS_MEASUREMENT)
        .await
        .unwrap();
    stack.wait_pinned(back.block).await;
    served(&stack, &g).await;

    // Governance lists chips and its chip is not among them (a machine with a leaked VCEK).
    governor.add_kms_chip(&[0x42; 64]).await.unwrap();
    let closed = governor.set_any_kms_chip_allowed(false).await.unwrap();
    stack.wait_pinned(closed.block).await;
    let why = refused_unavailable(&stack, &g).await;
    assert!(why.contains("kms chip not allowed"), "{why}");
    let ours = governor.add_kms_chip(&node_chip()).await.unwrap();
    stack.wait_pinned(ours.block).await;
    served(&stack, &g).await;
    // Removing its chip again, and then the last other one, never opens the list.
    let removed = governor.remove_kms_chip(&node_chip()).await.unwrap();
    stack.wait_pinned(removed.block).await;
    let why = refused_unavailable(&stack, &g).await;
    assert!(why.contains("kms chip not allowed"), "{why}");
    let emptied = governor.remove_kms_chip(&[0x42; 64]).await.unwrap();
    stack.wait_pinned(emptied.block).await;
    let why = refused_unavailable(&stack, &g).await;
    assert!(why.contains("kms chip not allowed"), "{why}");
    let ours = governor.add_kms_chip(&node_chip()).await.unwrap();
    stack.wait_pinned(ours.block).await;
    served(&stack, &g).await;

    // Governance raises the minimum TCB above the node's firmware, not above the guest's: the
    // app would be allowed, the node is not.
    let node_tcb = default_tcb(Product::Milan);
    let raised = TcbVersion {
        microcode: node_tcb.microcode + 1,
        ..node_tcb
    };
    let newer_guest = guest_on(
        SimulatedPlatform::new(authority(), Product::Milan, GUEST_CHIP.as_bytes()).with_tcb(raised),
        &stack,
    );
    let tx = governor.set_min_tcb(Product::Milan, raised).await.unwrap();
    stack.wait_pinned(tx.block).await;
    let why = refused_unavailable(&stack, &newer_guest).await;
    assert!(why.contains("tcb below minimum"), "{why}");
    let tx = governor
        .set_min_tcb(Product::Milan, node_tcb)
        .await
        .unwrap();
    stack.wait_pinned(tx.block).await;
    served(&stack, &newer_guest).await;

    // Its configuration digest is withdrawn.
    let tx = governor
        .remove_kms_config(stack.config_digest)
        .await
        .unwrap();
    stack.wait_pinned(tx.block).await;
    let why = refused_unavailable(&stack, &g).await;
    assert!(why.contains("kms config not allowed"), "{why}");
    let tx = governor.add_kms_config(stack.config_digest).await.unwrap();
    stack.wait_pinned(tx.block).await;
    served(&stack, &g).await;
    let body = metrics_text(&metrics.to_string()).await;
    assert!(body.contains("snpkms_serving 1"), "{body}");
}

/// Every setting that decides a release, changed on a stopped node as its host could (the
/// file, or an environment override, both end up here): the node refuses to start, naming
/// the digest it has and the one its root was sealed under, and never makes a new root.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_refuses_to_start_with_another_security_configuration() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    let sealed = stack.config_digest;
    let files = tempfile::tempdir().unwrap();
    let amd_root = files.path().join("amd-genoa.pem");
    std::fs::copy(
        snpkms_testkit::workspace_root().join("verifier/testdata/amd/roots/genoa-ask-ark.pem"),
        &amd_root,
    )
    .unwrap();
    let crl = files.path().join("sim.crl");
    std::fs::write(
        &crl,
        authority().crl(
            snpkms_verifier::Product::Milan,
            1_704_067_200,
            Some(2_524_607_999),
            &[],
        ),
    )
    .unwrap();
    let ca = files.path().join("rpc-ca.pem");
    std::fs::write(&ca, rcgen_ca_pem()).unwrap();
    let proxy_url = stack.proxy.url.clone();
    let other_proxy = snpkms_testkit::RpcProxy::start(&stack.fixture.chain.url).await;

    type Change = Box<dyn Fn(&mut NodeConfig)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "chain.chain_id",
            Box::new(|c| c.chain.chain_id = Some(31337)),
        ),
        (
            "chain.registry",
            Box::new(|c| c.chain.registry = snpkms_chain_client::Address::repeat_byte(7)),
        ),
        (
            "chain.rpc_urls",
            Box::new(move |c| c.chain.rpc_urls = vec![other_proxy.url.clone().into()]),
        ),
        (
            "chain.rpc_urls pin",
            Box::new(move |c| {
                c.chain.rpc_urls = vec![RpcUrl::Pinned(PinnedRpcUrl {
                    url: "https://rpc.example".into(),
                    ca: Some(ca.clone()),
                    spki_sha256: None,
                })]
            }),
        ),
        (
            "chain.quorum",
            Box::new(move |c| {
                c.chain
                    .rpc_urls
                    .push(RpcUrl::Plain(proxy_url.replace("127.0.", "127.1.")));
                c.chain.quorum = 2;
            }),
        ),
        ("chain.read_at", Box::new(|c| c.chain.read_at = "5".into())),
        (
            "chain.request_timeout_ms",
            Box::new(|c| c.chain.request_timeout_ms = 86_400_000),
        ),
        ("chain.retries", Box::new(|c| c.chain.retries += 5)),
        (
            "chain.max_staleness_secs",
            Box::new(|c| c.chain.max_staleness_secs = 999_999),
        ),
        (
            "chain.cache_ttl_secs",
            Box::new(|c| c.chain.cache_ttl_secs += 1),
        ),
        (
            "chain.poll_interval_ms",
            Box::new(|c| c.chain.poll_interval_ms += 1),
        ),
        (
            "trust.extra_roots",
            Box::new(move |c| c.trust.extra_roots = vec![amd_root.clone()]),
        ),
        (
            "trust.crls",
            Box::new(move |c| c.trust.crls = vec![crl.clone()]),
        ),
        (
            "policy.allow_debug",
            Box::new(|c| c.policy.allow_debug = true),
        ),
        ("policy.max_vmpl", Box::new(|c| c.policy.max_vmpl = 3)),
        (
            "policy.min_tcb",
            Box::new(|c| {
                c.policy
                    .min_tcb
                    .insert(Product::Genoa, TcbVersion::default());
            }),
        ),
        (
            "limits.nonce_ttl_secs",
            Box::new(|c| c.limits.nonce_ttl_secs = 3600),
        ),
        (
            "limits.per_client_rate",
            Box::new(|c| c.limits.per_client_rate = 0.0),
        ),
        (
            "limits.max_request_bytes",
            Box::new(|c| c.limits.max_request_bytes *= 16),
        ),
    ];
    for (what, change) in &changes {
        let mut cfg = stack.config.clone();
        change(&mut cfg);
        match snpkms_kms_node::start(cfg).await {
            Err(NodeError::Store(StoreError::ConfigChanged { sealed: s, current })) => {
                assert_eq!(B256::from(s.0), sealed, "{what}");
                assert_ne!(current, s, "{what}");
            }
            Err(e) => panic!("{what}: expected a configuration refusal, got {e}"),
            Ok(_) => panic!("{what}: the node started with another security configuration"),
        }
    }
    // Nothing made a new root, and the sealed configuration still opens.
    stack.start_node().await;
    assert_eq!(
        stack.node.as_ref().unwrap().node.signing_address(),
        stack.root
    );
    stack.stop_node().await;

    // What cannot change a release may change freely.
    let mut cfg = stack.config.clone();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.metrics_listen = None;
    cfg.limits.verified_chain_cache = 7;
    cfg.limits.audit_commit_delay_us = 0;
    stack.config = cfg;
    stack.start_node().await;
    served(&stack, &guest(stack.app(), stack.compose_hash)).await;
}

fn rcgen_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// A joiner whose configuration governance has not allowed learns nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_joiner_with_a_configuration_not_allowed_learns_nothing() {
    let stack = Stack::start().await;
    let err = stack
        .join_with(
            "e2e-kms-chip-9",
            snpkms_testkit::KMS_MEASUREMENT,
            &[stack.url()],
            |c| c.policy.allow_debug = true,
        )
        .await
        .err()
        .expect("refused");
    assert!(err.contains("PermissionDenied"), "{err}");
    assert!(err.contains("kms config not allowed"), "{err}");
    // The refusal is in the serving node's log; no key left it.
    let log = snpkms_kms_node::read_audit_log(&stack.config).unwrap();
    let last = log.records.last().expect("the refusal is recorded");
    assert_eq!(last.kind, "onboard");
    assert_eq!(last.reason, "kms config not allowed");
}
