//! The threshold mode end to end on loopback and anvil: five KMS nodes on the simulator (five
//! chips) run the distributed key generation against each other over gRPC, each checking the
//! others' evidence and asking the registry (isKmsAllowed); governance checks the five outputs
//! and records the share set; the nodes serve from their sealed shares and a guest combines any
//! three partials.

use snpkms_api::app_keys::{AppKeys, THRESHOLD_EPOCH_SALT};
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_chain_client::B256;
use snpkms_core::Custody;
use snpkms_e2e::threshold::{now, Participants, ThresholdStack};
use snpkms_e2e::*;
use snpkms_guest::threshold::{combine_answers, ThresholdClientError};
use snpkms_kms_node::{KeyGenCheckError, SecuritySettings};
use snpkms_testkit::deploy_fixture;

fn compressed(point: &k256::ProjectivePoint) -> [u8; 33] {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    point
        .to_affine()
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_attested_nodes_generate_one_share_set_and_any_three_serve_the_same_keys() {
    let mut stack = ThresholdStack::start(5, 3).await;
    let app = stack.fixture.app;
    let g = guest(app, stack.compose_hash);

    // Every participant ended with the same group, and its own share in its store.
    let first = &stack.outputs[0];
    for out in &stack.outputs {
        assert_eq!(
            (&out.group_key, &out.transcript, &out.verifying_shares),
            (&first.group_key, &first.transcript, &first.verifying_shares)
        );
    }
    let set = stack.share_set().await;
    assert_eq!(hex::encode(set.group().group_key()), first.group_key[2..]);

    let ephemeral = EphemeralKeyPair::generate();
    let answers = stack.ask(&g, &[1, 2, 3], &ephemeral).await;
    let a = combine_answers(
        &set,
        &ephemeral,
        app.0 .0,
        stack.compose_hash,
        None,
        answers,
    )
    .expect("three nodes");
    assert_eq!(a.used, vec![1, 2, 3]);
    let answers = stack.ask(&g, &[3, 4, 5], &ephemeral).await;
    let b = combine_answers(
        &set,
        &ephemeral,
        app.0 .0,
        stack.compose_hash,
        None,
        answers,
    )
    .expect("three other nodes");
    assert_eq!(b.used, vec![3, 4, 5]);
    assert_eq!(*a.disk_key, *b.disk_key);
    assert_eq!(*a.env_secret_key, *b.env_secret_key);
    assert_eq!(a.app_signing_address, b.app_signing_address);

    // Two nodes down: the other three still serve the same keys, and the two are named.
    stack.stop_node(1).await;
    stack.stop_node(2).await;
    let answers = stack.ask(&g, &[1, 2, 3, 4, 5], &ephemeral).await;
    let c = combine_answers(
        &set,
        &ephemeral,
        app.0 .0,
        stack.compose_hash,
        None,
        answers,
    )
    .expect("two down");
    assert_eq!(*c.disk_key, *a.disk_key);
    let skipped: Vec<&str> = c.skipped.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(skipped, vec![stack.url(1), stack.url(2)]);

    // A third down: two partials, nothing derived, every missing node named.
    stack.stop_node(3).await;
    let answers = stack.ask(&g, &[1, 2, 3, 4, 5], &ephemeral).await;
    let err = combine_answers(
        &set,
        &ephemeral,
        app.0 .0,
        stack.compose_hash,
        None,
        answers,
    )
    .err()
    .expect("two partials derive nothing");
    let ThresholdClientError::NotEnough { got, need, skipped } = &err else {
        panic!("{err}");
    };
    assert_eq!((*got, *need), (2, 3), "{err}");
    // Every node is named: the three down, and the two whose good partials were too few.
    let down = skipped
        .iter()
        .filter(|s| s.why.contains("cannot connect"))
        .count();
    assert_eq!((down, skipped.len()), (3, 5), "{err}");

    // Two shares read out of their stores (as a host that broke two nodes would): their
    // partials interpolate to other keys than the app's.
    stack.stop_node(4).await;
    stack.stop_node(5).await;
    let two: Vec<_> = [4u16, 5]
        .iter()
        .map(|i| {
            let cfg = &stack.participants.configs[usize::from(*i) - 1];
            let Custody::Share(share) = snpkms_kms_node::unseal_secret(cfg).unwrap() else {
                panic!("node {i} holds a root");
            };
            assert_eq!(share.index(), *i);
            let p = snpkms_threshold::evaluate(share.share(), &app.0 .0, 0).unwrap();
            let point = k256::PublicKey::from_sec1_bytes(&p.value).unwrap();
            (*i, point.to_projective())
        })
        .collect();
    let guess = snpkms_threshold::combine::interpolate_unchecked(&two).unwrap();
    let keys = AppKeys::derive(&compressed(&guess), THRESHOLD_EPOCH_SALT, &app.0 .0, 0);
    assert_ne!(*keys.disk, *a.disk_key);

    // Restarted from their stores, the nodes serve the same keys again.
    for i in [1u16, 4, 5] {
        let node = stack.start_node(i).await;
        stack.nodes[usize::from(i) - 1] = Some(node);
    }
    let answers = stack.ask(&g, &[1, 4, 5], &ephemeral).await;
    let d = combine_answers(
        &set,
        &ephemeral,
        app.0 .0,
        stack.compose_hash,
        None,
        answers,
    )
    .expect("restarted");
    assert_eq!(*d.disk_key, *a.disk_key);

    // Each node decides alone: the app's compose hash removed, every node refuses the guest.
    stack
        .fixture
        .app_owner
        .remove_compose_hash(app, B256::from(stack.compose_hash))
        .await
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..100 {
        answers = stack.ask(&g, &[1, 4, 5], &ephemeral).await;
        if answers.iter().all(|a| a.result.is_err()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for answer in &answers {
        let why = answer.result.as_ref().expect_err("refused");
        assert!(why.starts_with("PermissionDenied"), "{why}");
    }
}

/// Participant 3 runs an image the registry does not list as a KMS.
fn third_runs_an_unlisted_image(i: u16, cfg: &mut snpkms_kms_node::config::NodeConfig) {
    if i == 3 {
        cfg.platform = snpkms_kms_node::config::PlatformConfig::Simulator {
            product: snpkms_verifier::Product::Milan,
            chip_seed: "e2e-threshold-chip-3".into(),
            measurement: hex::encode([0x99u8; 48]),
        };
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_participant_the_registry_does_not_allow_ends_the_key_generation_and_stores_nothing() {
    let fixture = deploy_fixture().await;
    let mut participants = Participants::new(&fixture, 3).await;
    // Participant 3 waits for the others' round-2 packages, which never come.
    participants.timeout = std::time::Duration::from_secs(5);
    let results = participants
        .keygen_with(2, third_runs_an_unlisted_image)
        .await;
    for (k, r) in results.iter().take(2).enumerate() {
        let why = r
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("participant {} finished", k + 1));
        assert!(
            why.contains("participant 3: the registry does not allow it as a KMS")
                && why.contains("kms measurement not allowed"),
            "{why}"
        );
    }
    let third = results[2].as_ref().expect_err("participant 3 finished");
    // (It times out at whichever step the others left it: they stopped once they refused 3.)
    assert!(
        third.contains("timed out waiting for participant(s)"),
        "{third}"
    );
    for cfg in &participants.configs {
        assert!(
            !cfg.data_dir.join("store").exists(),
            "a refused key generation stores no share"
        );
    }

    // A peer that cannot be reached (never started, or one that refused participant 3 first
    // and stopped serving) does not keep the others from refusing 3: each message is checked
    // as it arrives, so participant 2 ends on 3's refusal, not on a timeout waiting for 1.
    participants.timeout = std::time::Duration::from_secs(4);
    let results = participants
        .keygen_of(&[2, 3], 2, third_runs_an_unlisted_image)
        .await;
    let why = results[0].as_ref().expect_err("participant 2 finished");
    assert!(
        why.contains("participant 3: the registry does not allow it as a KMS"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn governance_refuses_outputs_that_are_not_one_share_set() {
    let fixture = deploy_fixture().await;
    let participants = Participants::new(&fixture, 3).await;
    let outputs: Vec<_> = participants
        .keygen_with(2, |_, _| {})
        .await
        .into_iter()
        .map(|r| r.expect("keygen"))
        .collect();
    let verifier = SecuritySettings::resolve(&participants.configs[0])
        .unwrap()
        .verifier();
    let group = snpkms_kms_node::check_keygen(&outputs, &verifier, now()).expect("one set");
    assert_eq!(group.members.len(), 3);

    // One output missing: the share set names a node nobody vouches for.
    assert!(matches!(
        snpkms_kms_node::check_keygen(&outputs[..2], &verifier, now()),
        Err(KeyGenCheckError::Coverage { .. })
    ));
    // A signer swapped after the node produced its output: its evidence does not bind it.
    let mut edited = outputs.clone();
    edited[1].signing_address = edited[0].signing_address.clone();
    assert!(matches!(
        snpkms_kms_node::check_keygen(&edited, &verifier, now()),
        Err(KeyGenCheckError::NotBound { index: 2 })
    ));
    // A verifying share changed in every output alike (the outputs agree, the evidence not).
    let mut edited = outputs.clone();
    for out in &mut edited {
        out.verifying_shares[2].verifying_share = out.verifying_shares[0].verifying_share.clone();
    }
    assert!(matches!(
        snpkms_kms_node::check_keygen(&edited, &verifier, now()),
        Err(KeyGenCheckError::NotBound { .. })
    ));
    // An output of another key generation among the same nodes.
    let other: Vec<_> = {
        let again = Participants::new(&fixture, 3).await;
        again
            .keygen_with(2, |_, _| {})
            .await
            .into_iter()
            .map(|r| r.expect("keygen"))
            .collect()
    };
    let mixed = vec![outputs[0].clone(), outputs[1].clone(), other[2].clone()];
    assert!(matches!(
        snpkms_kms_node::check_keygen(&mixed, &verifier, now()),
        Err(KeyGenCheckError::Disagree(1, 3, _))
    ));
    // Evidence under a root the checker does not trust (AMD's only).
    let amd_only = snpkms_verifier::Verifier::new(
        snpkms_verifier::TrustRoots::amd(),
        snpkms_verifier::Policy::default(),
    );
    assert!(matches!(
        snpkms_kms_node::check_keygen(&outputs, &amd_only, now()),
        Err(KeyGenCheckError::Evidence { index: 1, .. })
    ));
}
