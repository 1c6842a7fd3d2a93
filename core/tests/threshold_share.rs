//! The threshold mode at the node core: five node cores on fakes, each holding one share of a
//! 3-of-5 group from a real (in-process) FROST key generation, each with its own registry view.
//! A guest asks them with GetAppKeyShare and combines the answers (`snpkms_guest::threshold`):
//! any three give the same keys; two down, one lying, one whose chain view refuses, all
//! tolerated while three answer well; two good answers derive nothing. Each node alone refuses
//! what its own view refuses, and a node serves only while the share set lists its share.

use snpkms_api::binding;
use snpkms_api::pb;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_core::{
    CoreLimits, Custody, NoCertificateSource, Node, NodeParts, NodeShare, Refusal, ReleaseError,
    ThresholdMember,
};
use snpkms_guest::threshold::{
    collect_signatures, combine_answers, open_partial, NodeAnswer, ShareSet, SignatureAnswer,
    ThresholdClientError, ThresholdGrant,
};
use snpkms_platform::SimulatedAttestor;
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_testkit::fakes::{FakeClock, FakePorts, FakeRegistry, MemoryLog, NoMetrics};
use snpkms_threshold::shares::group_of;
use snpkms_threshold::KeyShare;
use snpkms_verifier::{app_host_data, Policy, Product, TrustRoots, Verifier};
use std::sync::Arc;

/// 2026-06-01: inside the validity of the simulator's certificates.
const NOW: u64 = 1_780_272_000;
const APP: [u8; 20] = [0x11; 20];
const COMPOSE: [u8; 32] = [0x44; 32];

struct Deployment {
    nodes: Vec<Node<FakePorts>>,
    registries: Vec<FakeRegistry>,
    members: Vec<ThresholdMember>,
    group_key: Vec<u8>,
    /// The shares as the key generation left them (what the test reads "out of the stores").
    shares: Vec<KeyShare>,
    authority: Arc<SimAuthority>,
}

fn verifier() -> Verifier {
    let mut roots = TrustRoots::amd();
    snpkms_simulator::trust_simulator_root(&mut roots).unwrap();
    Verifier::new(roots, Policy::default())
}

fn node(
    share: KeyShare,
    registry: &FakeRegistry,
    authority: &Arc<SimAuthority>,
) -> Node<FakePorts> {
    let chip = format!("threshold-kms-{}", share.index());
    node_with(
        Custody::Share(Box::new(NodeShare::new(share))),
        chip.as_bytes(),
        registry,
        authority,
    )
}

/// A node core holding `custody` on its own simulated chip, asking `registry`.
fn node_with(
    custody: Custody,
    chip: &[u8],
    registry: &FakeRegistry,
    authority: &Arc<SimAuthority>,
) -> Node<FakePorts> {
    let kms = SimulatedAttestor::new(SimulatedGuest::new(
        Arc::new(SimulatedPlatform::new(
            authority.clone(),
            Product::Milan,
            chip,
        )),
        GuestLaunch {
            measurement: [0x22; 48],
            ..GuestLaunch::default()
        },
    ));
    Node::new(
        NodeParts {
            custody,
            config_digest: [0x66; 32],
            verifier: verifier(),
            tls_public_key: vec![],
            limits: CoreLimits {
                nonce_ttl_secs: 60,
                max_outstanding_nonces: 1000,
                verified_cert_chain_cache: 16,
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
    )
}

/// A request of the app's guest to `node`, bound to its challenge, for `epoch`.
fn guest_request(
    node: &Node<FakePorts>,
    authority: &Arc<SimAuthority>,
    ephemeral: &EphemeralKeyPair,
    epoch: Option<u32>,
) -> pb::GetAppKeyRequest {
    let platform = SimulatedPlatform::new(authority.clone(), Product::Milan, b"guest");
    let nonce = node.challenge().unwrap().nonce;
    let mut fields = platform.default_fields();
    fields.measurement = [0x6a; 48];
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
        epoch,
    }
}

/// A 3-of-5 deployment whose registries all record the key generation's share set.
fn deployment() -> Deployment {
    let (packages, public) = snpkms_threshold::testing::dkg(5, 3);
    let group = group_of(&public, 3).unwrap();
    let shares: Vec<KeyShare> = packages
        .iter()
        .map(|p| KeyShare::from_key_package(p).unwrap())
        .collect();
    let members: Vec<ThresholdMember> = shares
        .iter()
        .map(|s| {
            let share = NodeShare::new(KeyShare::from_bytes(&s.to_bytes()).unwrap());
            ThresholdMember {
                index: share.index(),
                verifying_share: share.verifying_share().to_vec(),
                signer: share.signing_address(),
            }
        })
        .collect();
    let authority = Arc::new(SimAuthority::load());
    let mut nodes = Vec::new();
    let mut registries = Vec::new();
    for share in &shares {
        // The root the registry names is irrelevant in the threshold mode.
        let registry = FakeRegistry::allowing([0; 20]);
        registry.set_threshold_group(3, group.group_key().to_vec(), members.clone());
        nodes.push(node(
            KeyShare::from_bytes(&share.to_bytes()).unwrap(),
            &registry,
            &authority,
        ));
        registries.push(registry);
    }
    Deployment {
        nodes,
        registries,
        members,
        group_key: group.group_key().to_vec(),
        shares,
        authority,
    }
}

impl Deployment {
    /// The share set as a guest reads it from the chain.
    fn share_set(&self) -> ShareSet {
        let nodes: Vec<(u16, Vec<u8>, [u8; 20])> = self
            .members
            .iter()
            .map(|m| (m.index, m.verifying_share.clone(), m.signer))
            .collect();
        ShareSet::new(1, 3, &self.group_key, &nodes).unwrap()
    }

    /// A request of the app's guest to node `i` (0-based), bound to that node's challenge.
    fn request(&self, i: usize, ephemeral: &EphemeralKeyPair) -> pb::GetAppKeyRequest {
        self.request_at(i, ephemeral, None)
    }

    /// As [`Deployment::request`], for key epoch `epoch` (`None`: the node's current one).
    fn request_at(
        &self,
        i: usize,
        ephemeral: &EphemeralKeyPair,
        epoch: Option<u32>,
    ) -> pb::GetAppKeyRequest {
        guest_request(&self.nodes[i], &self.authority, ephemeral, epoch)
    }

    /// Node `i`'s answer to a request for `epoch`.
    async fn answer(
        &self,
        i: usize,
        ephemeral: &EphemeralKeyPair,
        epoch: Option<u32>,
    ) -> NodeAnswer {
        let req = self.request_at(i, ephemeral, epoch);
        let nonce = req.nonce.clone();
        NodeAnswer {
            node: format!("node-{}", i + 1),
            nonce,
            result: self.nodes[i]
                .get_app_key_share(req)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// The keys the guest combines from the answers of nodes `which`, with a fresh ephemeral key.
    async fn keys_from(&self, which: &[usize]) -> ThresholdGrant {
        let ephemeral = EphemeralKeyPair::generate();
        let answers = self.ask(which, &ephemeral).await;
        combine_answers(&self.share_set(), &ephemeral, APP, COMPOSE, None, answers).unwrap()
    }

    /// The guest asks the nodes `which` (0-based); the others are down.
    async fn ask(&self, which: &[usize], ephemeral: &EphemeralKeyPair) -> Vec<NodeAnswer> {
        let mut answers = Vec::new();
        for &i in which {
            let req = self.request(i, ephemeral);
            let nonce = req.nonce.clone();
            answers.push(NodeAnswer {
                node: format!("node-{}", i + 1),
                nonce,
                result: self.nodes[i]
                    .get_app_key_share(req)
                    .await
                    .map_err(|e| e.to_string()),
            });
        }
        answers
    }
}

fn down(node: usize) -> NodeAnswer {
    NodeAnswer {
        node: format!("node-{node}"),
        nonce: vec![0; 32],
        result: Err("transport error: connection refused".into()),
    }
}

#[tokio::test]
async fn any_three_nodes_give_the_same_keys_and_two_down_or_one_lying_change_nothing() {
    let d = deployment();
    for n in &d.nodes {
        assert!(
            n.refresh_kms_state().await.serving.is_ok(),
            "every listed node serves"
        );
    }
    let set = d.share_set();
    let ephemeral = EphemeralKeyPair::generate();
    let first = d.keys_from(&[0, 1, 2]).await;
    assert_eq!(first.used, vec![1, 2, 3]);
    assert!(first.skipped.is_empty());

    // Nodes 1 and 2 down: 3, 4, 5 give the same keys.
    let mut answers = d.ask(&[2, 3, 4], &ephemeral).await;
    answers.extend([down(1), down(2)]);
    let other = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers).unwrap();
    assert_eq!(other.used, vec![3, 4, 5]);
    assert_eq!(*other.disk_key, *first.disk_key);
    assert_eq!(*other.env_secret_key, *first.env_secret_key);
    assert_eq!(*other.signing_key, *first.signing_key);
    assert_eq!(other.app_signing_address, first.app_signing_address);
    assert_eq!(other.skipped.len(), 2);
    assert!(other
        .skipped
        .iter()
        .all(|s| s.why.contains("connection refused")));

    // The keys are those of the whole secret s (which no node holds), derived directly.
    let whole = snpkms_threshold::combine::interpolate_unchecked(
        &d.shares[..3]
            .iter()
            .map(|s| (s.index(), s.verifying_share()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(
        compressed(&whole),
        d.group_key,
        "the shares are the deployment's"
    );

    // Node 2 answers with a partial of another share (a wrong share, as a broken node would):
    // its proof fails against its verifying share; it is named, and the keys still come out.
    let liar_registry = FakeRegistry::allowing([0; 20]);
    let mut lying_members = d.members.clone();
    let impostor = NodeShare::new(
        KeyShare::from_bytes(&{
            let mut b = *d.shares[4].to_bytes();
            b[..2].copy_from_slice(&2u16.to_be_bytes());
            b
        })
        .unwrap(),
    );
    // Its registry view lists the impostor's share and signer for node 2 (a host controls the
    // node's chain view no more than this: the guest checks against its own reading).
    lying_members[1].verifying_share = impostor.verifying_share().to_vec();
    lying_members[1].signer = impostor.signing_address();
    liar_registry.set_threshold_group(3, d.group_key.clone(), lying_members);
    let liar = node(
        KeyShare::from_bytes(&impostor.share().to_bytes()).unwrap(),
        &liar_registry,
        &d.authority,
    );
    assert!(liar.refresh_kms_state().await.serving.is_ok());
    let mut answers = d.ask(&[0, 3], &ephemeral).await;
    let request = guest_request(&liar, &d.authority, &ephemeral, None);
    let nonce = request.nonce.clone();
    let lie = liar.get_app_key_share(request).await.unwrap();
    // The guest's set names node 2's real signer, so first present the lie with it (a node
    // that lies about its signer is caught by that check alone).
    let mut disguised = lie.clone();
    disguised.node_signing_address = d.members[1].signer.to_vec();
    answers.push(NodeAnswer {
        node: "node-2".into(),
        nonce: nonce.clone(),
        result: Ok(disguised),
    });
    answers.push(NodeAnswer {
        node: "node-2-undisguised".into(),
        nonce,
        result: Ok(lie),
    });
    answers.extend(d.ask(&[4], &ephemeral).await);
    let grant = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers).unwrap();
    assert_eq!(grant.used, vec![1, 4, 5]);
    assert_eq!(*grant.disk_key, *first.disk_key);
    let why = |node: &str| {
        grant
            .skipped
            .iter()
            .find(|s| s.node == node)
            .map(|s| s.why.clone())
            .unwrap_or_default()
    };
    assert!(
        why("node-2").contains("proof does not verify"),
        "{:?}",
        grant.skipped
    );
    assert!(
        why("node-2-undisguised").contains("names signer"),
        "{:?}",
        grant.skipped
    );
}

#[tokio::test]
async fn two_good_partials_derive_nothing_and_two_shares_interpolate_to_no_key() {
    let d = deployment();
    let set = d.share_set();
    let ephemeral = EphemeralKeyPair::generate();
    let mut answers = d.ask(&[1, 4], &ephemeral).await;
    answers.extend([down(1), down(3), down(4)]);
    let err = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers)
        .err()
        .expect("two partials derive nothing");
    let ThresholdClientError::NotEnough { got, need, skipped } = &err else {
        panic!("{err}");
    };
    assert_eq!((*got, *need), (2, 3));
    assert_eq!(skipped.len(), 5, "every node named: {err}");
    let message = err.to_string();
    assert!(
        message.contains("2 valid partial(s) for one epoch, 3 needed"),
        "{message}"
    );
    assert!(message.contains("node-4: transport error"), "{message}");

    // t - 1 shares read out of their stores: whichever two, interpolating their partials
    // gives another point than t partials do, and so other keys than the app's.
    let grant = d.keys_from(&[0, 1, 2]).await;
    for a in 0..5 {
        for b in a + 1..5 {
            let two = [&d.shares[a], &d.shares[b]]
                .iter()
                .map(|s| {
                    let p = snpkms_threshold::evaluate(s, &APP, 0).unwrap();
                    let point = k256::PublicKey::from_sec1_bytes(&p.value).unwrap();
                    (s.index(), point.to_projective())
                })
                .collect::<Vec<_>>();
            let guess = snpkms_threshold::combine::interpolate_unchecked(&two).unwrap();
            let keys = snpkms_api::app_keys::AppKeys::derive(
                &compressed(&guess),
                snpkms_api::app_keys::THRESHOLD_EPOCH_SALT,
                &APP,
                0,
            );
            assert_ne!(*keys.disk, *grant.disk_key, "shares {a} and {b} alone");
            assert_ne!(keys.signing_address(), grant.app_signing_address);
        }
    }
}

fn compressed(point: &k256::ProjectivePoint) -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    point.to_affine().to_encoded_point(true).as_bytes().to_vec()
}

#[tokio::test]
async fn each_node_refuses_what_its_own_chain_view_refuses() {
    let d = deployment();
    let set = d.share_set();
    // Node 1's chain view refuses the guest's compose hash; the others allow it.
    d.registries[0].set_app(|_| Ok((false, "compose hash not allowed".into())));
    let ephemeral = EphemeralKeyPair::generate();
    let refused = d.nodes[0]
        .get_app_key_share(d.request(0, &ephemeral))
        .await
        .unwrap_err();
    assert_eq!(refused.refusal(), Refusal::PermissionDenied);
    assert!(refused.to_string().contains("compose hash not allowed"));
    // The refusal is recorded as a share request.
    let records = d.nodes[0].log().records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind.as_str(), "app_key_share");
    assert!(!records[0].allowed);

    // A lone lying node cannot authorize: with only nodes 2 and 3 allowing, nothing comes out.
    d.registries[3].set_app(|_| Ok((false, "app disabled".into())));
    d.registries[4].set_app(|_| Ok((false, "app disabled".into())));
    let answers = d.ask(&[0, 1, 2, 3, 4], &ephemeral).await;
    let err = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers)
        .err()
        .expect("two nodes allowing are not enough");
    assert!(err.to_string().contains("app disabled"), "{err}");
    assert!(err.to_string().contains("2 valid partial(s)"), "{err}");
}

#[tokio::test]
async fn a_node_serves_only_while_the_share_set_lists_its_share_and_modes_do_not_mix() {
    let d = deployment();
    let node = &d.nodes[2];
    assert!(node.refresh_kms_state().await.serving.is_ok());
    let ephemeral = EphemeralKeyPair::generate();

    // A threshold node holds no root: GetAppKey and Onboard are refused as the other mode's.
    let err = node
        .get_app_key(d.request(2, &ephemeral))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::WrongMode { .. }), "{err}");
    assert_eq!(err.refusal(), Refusal::FailedPrecondition);
    assert!(err.to_string().contains("GetAppKeyShare"), "{err}");
    let info = node.kms_info(1, [0; 20]);
    assert_eq!(info.mode, "threshold");
    assert_eq!(info.node_index, 3);
    assert!(info.root_signing_address.is_empty());
    assert_eq!(info.node_signing_address, d.members[2].signer.to_vec());

    // A re-share that leaves node 3 out (or records another share for it) stops it.
    let mut without = d.members.clone();
    without.remove(2);
    d.registries[2].set_threshold_group(3, d.group_key.clone(), without);
    let state = node.refresh_kms_state().await;
    assert!(
        state
            .serving
            .as_ref()
            .unwrap_err()
            .contains("has no node 3"),
        "{:?}",
        state.serving
    );
    assert_eq!(state.share_epoch, 2);
    let mut other_share = d.members.clone();
    other_share[2].verifying_share = d.members[3].verifying_share.clone();
    d.registries[2].set_threshold_group(3, d.group_key.clone(), other_share);
    let state = node.refresh_kms_state().await;
    assert!(
        state
            .serving
            .as_ref()
            .unwrap_err()
            .contains("another verifying share"),
        "{:?}",
        state.serving
    );
    let refused = node
        .get_app_key_share(d.request(2, &ephemeral))
        .await
        .unwrap_err();
    assert_eq!(refused.refusal(), Refusal::Unavailable, "{refused}");

    // A replicated-root node does not serve once the registry runs the threshold mode, and
    // answers GetAppKeyShare as the other mode's.
    let root = snpkms_core::keys::RootSecret::generate();
    let registry = FakeRegistry::allowing(root.root_signing_address());
    let root_node = node_with(Custody::Root(root), b"root-kms", &registry, &d.authority);
    assert!(root_node.refresh_kms_state().await.serving.is_ok());
    let err = root_node
        .get_app_key_share(pb::GetAppKeyRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::WrongMode { .. }), "{err}");
    registry.set_threshold_group(3, d.group_key.clone(), d.members.clone());
    let state = root_node.refresh_kms_state().await;
    assert!(
        state
            .serving
            .as_ref()
            .unwrap_err()
            .contains("threshold mode"),
        "{:?}",
        state.serving
    );
    // A threshold node whose registry runs the replicated-root mode does not serve either.
    let fresh = FakeRegistry::allowing([0; 20]);
    let lone = self::node(
        KeyShare::from_bytes(&d.shares[0].to_bytes()).unwrap(),
        &fresh,
        &d.authority,
    );
    let state = lone.refresh_kms_state().await;
    assert!(
        state
            .serving
            .as_ref()
            .unwrap_err()
            .contains("replicated-root mode"),
        "{:?}",
        state.serving
    );
}

/// What each answer claims besides its proof is checked too, so that a node whose answer was
/// changed on the way, or that names another share set, epoch, index or signer, is skipped with
/// the reason; a node that answers twice counts once.
#[tokio::test]
async fn answers_that_claim_another_share_epoch_index_epoch_or_signer_are_skipped() {
    let d = deployment();
    let set = d.share_set();
    let ephemeral = EphemeralKeyPair::generate();
    let good = |a: &NodeAnswer| a.result.clone().unwrap();
    let base = d.answer(0, &ephemeral, None).await;
    let with = |f: &dyn Fn(&mut pb::GetAppKeyShareResponse), name: &str| {
        let mut r = good(&base);
        f(&mut r);
        NodeAnswer {
            node: name.into(),
            nonce: base.nonce.clone(),
            result: Ok(r),
        }
    };
    let answers = vec![
        with(&|r| r.share_epoch = 2, "other-share-epoch"),
        with(
            &|r| {
                r.node_index = 2;
                r.node_signing_address = d.members[1].signer.to_vec();
            },
            "other-index",
        ),
        with(&|r| r.key_epoch = 7, "other-key-epoch"),
        with(&|r| r.node_index = 9, "unknown-index"),
        with(
            &|r| r.node_signing_address = vec![0xab; 4000],
            "long-signer",
        ),
        with(&|_| {}, "node-1"),
        with(&|_| {}, "node-1-again"),
    ];
    let err = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers)
        .err()
        .expect("one node's answers are not three");
    let ThresholdClientError::NotEnough { got, skipped, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*got, 1);
    let why = |node: &str| {
        skipped
            .iter()
            .find(|s| s.node == node)
            .map(|s| s.why.clone())
            .unwrap_or_else(|| panic!("{node} not named: {err}"))
    };
    assert!(why("other-share-epoch").contains("share epoch 2"));
    assert!(why("other-index").contains("did not open"));
    assert!(why("other-key-epoch").contains("did not open"));
    assert!(why("unknown-index").contains("not in the set"));
    assert!(why("long-signer").contains("(4000 bytes)"));
    assert!(
        why("long-signer").len() < 200,
        "a node cannot fill the message"
    );
    assert!(why("node-1-again").contains("answered already"));
    // Asked for epoch 0, an answer for another epoch is refused before it is opened.
    let refused = open_partial(
        &set,
        &ephemeral,
        &base.nonce,
        APP,
        COMPOSE,
        Some(1),
        good(&base),
    )
    .unwrap_err();
    assert!(refused.contains("asked for 1"), "{refused}");

    // A share set that lists another signer for a node stops that node.
    let mut other_signer = d.members.clone();
    other_signer[0].signer = [0x99; 20];
    d.registries[0].set_threshold_group(3, d.group_key.clone(), other_signer);
    let state = d.nodes[0].refresh_kms_state().await;
    assert!(
        state
            .serving
            .as_ref()
            .unwrap_err()
            .contains("as node 1's signer"),
        "{:?}",
        state.serving
    );
}

/// Key epochs: the newest epoch t nodes answered for is used, even when more nodes answered for
/// an older one; and a node's good answer for an older epoch (which whoever relays a request
/// can ask of it) does not push out its answer for the current one.
#[tokio::test]
async fn the_newest_epoch_with_t_partials_wins_and_an_old_answer_pushes_out_nothing() {
    let d = deployment();
    for r in &d.registries {
        r.set_epoch(1);
    }
    let set = d.share_set();
    let ephemeral = EphemeralKeyPair::generate();
    let mut answers = Vec::new();
    for i in 0..4 {
        answers.push(d.answer(i, &ephemeral, Some(0)).await);
    }
    for i in 2..5 {
        answers.push(d.answer(i, &ephemeral, None).await);
    }
    let grant = combine_answers(&set, &ephemeral, APP, COMPOSE, None, answers).unwrap();
    assert_eq!(grant.key_epoch, 1);
    assert_eq!(grant.used, vec![3, 4, 5]);
    assert_eq!(
        grant
            .skipped
            .iter()
            .filter(|s| s.why.contains("answered for key epoch 0"))
            .count(),
        4
    );
    // Epoch 0's keys from the four: other keys than epoch 1's.
    let mut old = Vec::new();
    for i in 0..3 {
        old.push(d.answer(i, &ephemeral, Some(0)).await);
    }
    let old = combine_answers(&set, &ephemeral, APP, COMPOSE, Some(0), old).unwrap();
    assert_ne!(*old.disk_key, *grant.disk_key);
}

/// A SignAppKey request of the app's guest to `node`: evidence bound to `bound_address` and
/// `bound_epoch` (what the report says), the request naming `address` and `epoch`.
fn sign_request(
    node: &Node<FakePorts>,
    authority: &Arc<SimAuthority>,
    address: [u8; 20],
    epoch: u32,
    report_data: impl FnOnce(&[u8]) -> [u8; 64],
) -> pb::SignAppKeyRequest {
    let platform = SimulatedPlatform::new(authority.clone(), Product::Milan, b"guest");
    let nonce = node.challenge().unwrap().nonce;
    let mut fields = platform.default_fields();
    fields.measurement = [0x6a; 48];
    fields.host_data = app_host_data(&APP, &COMPOSE);
    fields.report_data = report_data(&nonce);
    pb::SignAppKeyRequest {
        evidence: Some(pb::Evidence {
            report: platform.sign(&fields),
            cert_table: platform.certificates(fields.reported_tcb).to_cert_table(),
        }),
        nonce,
        app_id: APP.to_vec(),
        compose_hash: COMPOSE.to_vec(),
        app_signing_address: address.to_vec(),
        key_epoch: epoch,
    }
}

impl Deployment {
    /// Node `i`'s (0-based) answer to a well-bound SignAppKey request.
    async fn signature(&self, i: usize, address: [u8; 20], epoch: u32) -> SignatureAnswer {
        let req = sign_request(&self.nodes[i], &self.authority, address, epoch, |nonce| {
            binding::sign_app_key_report_data(nonce, &address, epoch)
        });
        SignatureAnswer {
            node: format!("node-{}", i + 1),
            result: self.nodes[i]
                .sign_app_key(req)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

#[tokio::test]
async fn t_nodes_vouch_for_the_combined_address_and_each_signs_only_what_its_evidence_binds() {
    let d = deployment();
    let set = d.share_set();
    let grant = d.keys_from(&[0, 1, 2]).await;
    let (address, epoch) = (grant.app_signing_address, grant.key_epoch);

    let mut answers = Vec::new();
    for i in [0, 2, 4] {
        answers.push(d.signature(i, address, epoch).await);
    }
    let signed = collect_signatures(&set, APP, address, epoch, answers).unwrap();
    assert!(signed.skipped.is_empty());
    let signers: Vec<_> = signed
        .signatures
        .iter()
        .map(|s| {
            assert_eq!(
                snpkms_api::app_key_signature::recover(&APP, &address, epoch, &s.signature)
                    .unwrap(),
                d.members[usize::from(s.node_index) - 1].signer,
                "each signature is by the node the share set lists"
            );
            s.node_index
        })
        .collect();
    assert_eq!(signers, vec![1, 3, 5]);
    // The signature is recorded like a release.
    let records = d.nodes[0].log().records();
    let last = records.last().unwrap();
    assert_eq!(last.kind.as_str(), "app_key_signature");
    assert!(last.allowed);
    // With what an auditor needs to tell which signature it stands for: the address vouched
    // for, and which share of which share set signed.
    assert_eq!(last.app_signing_address, Some(address));
    assert_eq!(
        last.share,
        Some(snpkms_core::ShareOrigin {
            share_epoch: 1,
            node_index: 1
        })
    );
    // A partial's record names its share too, and no address.
    let share_record = records
        .iter()
        .find(|r| r.kind.as_str() == "app_key_share")
        .unwrap();
    assert_eq!(share_record.share.map(|s| s.node_index), Some(1));
    assert_eq!(share_record.app_signing_address, None);

    // The evidence must bind the very address and epoch the request names (whoever relays the
    // request cannot swap either), and a GetAppKey report does not pass for a SignAppKey one.
    let other = [0x77; 20];
    let swapped_address = sign_request(&d.nodes[1], &d.authority, other, epoch, |nonce| {
        binding::sign_app_key_report_data(nonce, &address, epoch)
    });
    let swapped_epoch = sign_request(&d.nodes[1], &d.authority, address, epoch, |nonce| {
        binding::sign_app_key_report_data(nonce, &address, epoch + 1)
    });
    let key_request = sign_request(&d.nodes[1], &d.authority, address, epoch, |nonce| {
        binding::get_app_key_report_data(nonce, &address)
    });
    for req in [swapped_address, swapped_epoch, key_request] {
        let err = d.nodes[1].sign_app_key(req).await.unwrap_err();
        assert!(
            matches!(err, ReleaseError::ReportDataMismatch { binding } if binding == snpkms_core::SIGN_APP_KEY_BINDING),
            "{err}"
        );
    }
    // A node whose own chain view refuses the guest signs nothing (and records the refusal).
    d.registries[3].set_app(|_| Ok((false, "compose hash not allowed".into())));
    let refused = d.signature(3, address, epoch).await;
    let why = refused.result.as_ref().expect_err("refused");
    assert!(why.contains("compose hash not allowed"), "{why}");
    let records = d.nodes[3].log().records();
    assert_eq!(records.last().unwrap().kind.as_str(), "app_key_signature");
    assert!(!records.last().unwrap().allowed);
    // The refusal names the address it was asked to vouch for.
    assert_eq!(records.last().unwrap().app_signing_address, Some(address));
    assert_eq!(records.last().unwrap().share.map(|s| s.node_index), Some(4));
    // An epoch above the registry's is refused before any evidence is looked at.
    let ahead = d.signature(1, address, epoch + 1).await;
    assert!(ahead.result.err().unwrap().contains("epoch"));

    // The guest counts each listed node once and only signatures over its address and epoch:
    // with node 4 refusing, a repeat of node 1 and a signature over another address, two good
    // ones are not enough.
    let answers = vec![
        d.signature(0, address, epoch).await,
        d.signature(0, address, epoch).await,
        d.signature(1, other, epoch).await,
        refused,
        d.signature(4, address, epoch).await,
    ];
    let err = collect_signatures(&set, APP, address, epoch, answers).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ThresholdClientError::NotEnoughSignatures {
                got: 2,
                need: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("node 1 signed already"), "{text}");
    assert!(text.contains("no node of share epoch 1"), "{text}");
    assert!(text.contains("compose hash not allowed"), "{text}");

    // A replicated-root node vouches through GetAppKey's answer, not here.
    let root = snpkms_core::keys::RootSecret::generate();
    let registry = FakeRegistry::allowing(root.root_signing_address());
    let root_node = node_with(Custody::Root(root), b"root-kms", &registry, &d.authority);
    let err = root_node
        .sign_app_key(pb::SignAppKeyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Refusal::FailedPrecondition, "{err}");
}
