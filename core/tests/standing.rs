//! The node's own standing, at the core with a fake registry: a node the registry drops stops
//! releasing from the block of the change, even before its watcher has run, and serves again
//! from the block it is allowed again.

use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_core::keys::RootSecret;
use snpkms_core::{CoreLimits, NoCertificateSource, Node, NodeParts, Refusal, ReleaseLog};
use snpkms_platform::SimulatedAttestor;
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_testkit::fakes::{FakeClock, FakePorts, FakeRegistry, MemoryLog, NoMetrics};
use snpkms_verifier::{app_host_data, Policy, Product, TrustRoots, Verifier};
use std::sync::Arc;

const NOW: u64 = 1_780_272_000;
const APP: [u8; 20] = [0x11; 20];
const COMPOSE: [u8; 32] = [0x44; 32];

fn node() -> (Node<FakePorts>, FakeRegistry, Arc<SimulatedPlatform>) {
    let authority = Arc::new(SimAuthority::load());
    let mut roots = TrustRoots::amd();
    snpkms_simulator::trust_simulator_root(&mut roots).unwrap();
    let root = RootSecret::generate();
    let registry = FakeRegistry::allowing(root.root_signing_address());
    let kms = SimulatedAttestor::new(SimulatedGuest::new(
        Arc::new(SimulatedPlatform::new(
            authority.clone(),
            Product::Milan,
            b"kms",
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
            verifier: Verifier::new(roots, Policy::default()),
            tls_public_key: vec![],
            limits: CoreLimits {
                nonce_ttl_secs: 60,
                max_outstanding_nonces: 100,
                verified_cert_chain_cache: 4,
                grant_cache: 16,
                per_app_rate: 0.0,
                per_app_burst: 1,
            },
            authorizer: registry.clone(),
            log: MemoryLog::default(),
            clock: FakeClock::at(NOW),
            certificates: NoCertificateSource,
            observer: NoMetrics,
        },
        &kms,
    );
    let guest = Arc::new(SimulatedPlatform::new(authority, Product::Milan, b"guest"));
    (node, registry, guest)
}

fn request(node: &Node<FakePorts>, platform: &SimulatedPlatform) -> pb::GetAppKeyRequest {
    let nonce = node.challenge().unwrap().nonce;
    let ephemeral = EphemeralKeyPair::generate();
    let mut fields = platform.default_fields();
    fields.host_data = app_host_data(&APP, &COMPOSE);
    fields.report_data = binding::get_app_key_report_data(&nonce, &ephemeral.public_key());
    pb::GetAppKeyRequest {
        evidence: Some(pb::Evidence {
            report: platform.sign(&fields),
            cert_table: platform.certificates(fields.reported_tcb).to_cert_table(),
        }),
        nonce,
        app_id: APP.to_vec(),
        compose_hash: COMPOSE.to_vec(),
        ephemeral_public_key: ephemeral.public_key().to_vec(),
        epoch: None,
    }
}

#[tokio::test]
async fn a_dropped_node_stops_at_the_block_of_the_change_without_its_watcher() {
    let (node, registry, guest) = node();
    node.refresh_kms_state()
        .await
        .serving
        .expect("allowed at block 1");
    node.get_app_key(request(&node, &guest))
        .await
        .expect("released at block 1");

    // Block 2 drops the node. Nobody refreshes its standing (no watcher runs here): the state
    // still says "serving", as of block 1.
    registry.set_kms(|_| Ok((false, "kms measurement not allowed".into())));
    registry.pin(2);
    assert!(node.state().serving.is_ok());
    let records = node.log().len();
    let err = node
        .get_app_key(request(&node, &guest))
        .await
        .expect_err("a release decided at block 2 by a node dropped at block 2");
    assert_eq!(err.refusal(), Refusal::Unavailable, "{err}");
    assert!(
        err.to_string().contains("kms measurement not allowed"),
        "{err}"
    );
    assert_eq!(node.log().len(), records, "nothing recorded as released");

    // Block 3 allows it again: the next request serves, again without a watcher.
    registry.set_kms(|_| Ok((true, String::new())));
    registry.pin(3);
    node.get_app_key(request(&node, &guest))
        .await
        .expect("released at block 3");
}

#[tokio::test]
async fn a_verdict_from_another_block_at_the_same_height_is_not_taken() {
    // A reorg: the pin moves to a block of the same height on another fork, where the node is
    // dropped. The verdict read at the old block must not stand for the new one.
    let (node, registry, guest) = node();
    node.refresh_kms_state().await.serving.expect("allowed");
    registry.set_kms(|_| Ok((false, "kms chip not allowed".into())));
    registry.pin(1); // same number...
    registry.pin_hash(1, [0xee; 32]); // ...another block
    let err = node.get_app_key(request(&node, &guest)).await.unwrap_err();
    assert!(err.to_string().contains("kms chip not allowed"), "{err}");
}

#[tokio::test]
async fn another_root_on_the_registry_stops_the_node() {
    let (node, registry, guest) = node();
    node.refresh_kms_state().await.serving.expect("allowed");
    registry.set_root([0x99; 20]);
    registry.pin(2);
    let err = node.get_app_key(request(&node, &guest)).await.unwrap_err();
    assert_eq!(err.refusal(), Refusal::Unavailable);
    assert!(
        err.to_string().contains("KMS root signing address"),
        "{err}"
    );
}
