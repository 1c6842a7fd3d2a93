//! A 3-of-5 group made by FROST's distributed key generation, run in process (each
//! participant's packages handed to the others as the nodes will send them), and the
//! threshold derivation over it.

use k256::elliptic_curve::PrimeField;
use k256::{ProjectivePoint, Scalar};
use snpkms_threshold::combine::interpolate_unchecked;
use snpkms_threshold::group::CompressedPoint;
use snpkms_threshold::input::app_key_input;
use snpkms_threshold::shares::{group_of, identifier, index_of, verifying_share_bytes};
use snpkms_threshold::testing::dkg;
use snpkms_threshold::*;

const APP: [u8; 20] = [0x42; 20];

fn scalar(bytes: &[u8]) -> Scalar {
    Option::from(Scalar::from_repr(
        <[u8; 32]>::try_from(bytes).unwrap().into(),
    ))
    .unwrap()
}

struct Group {
    shares: Vec<KeyShare>,
    group: GroupKeys,
    /// The whole secret, reconstructed from all shares: what no node ever holds.
    secret: Scalar,
}

fn group_3_of_5() -> Group {
    let (keys, public) = dkg(5, 3);
    let shares: Vec<KeyShare> = keys
        .iter()
        .map(|k| KeyShare::from_key_package(k).unwrap())
        .collect();
    let group = group_of(&public, 3).unwrap();
    let secret = scalar(
        &frost_secp256k1::keys::reconstruct(&keys[..3])
            .unwrap()
            .serialize(),
    );
    assert_eq!(
        group.group_key(),
        encode(&(ProjectivePoint::GENERATOR * secret)),
        "the group key is s·G"
    );
    Group {
        shares,
        group,
        secret,
    }
}

fn encode(p: &ProjectivePoint) -> CompressedPoint {
    use k256::elliptic_curve::group::GroupEncoding;
    p.to_affine().to_bytes().into()
}

fn verified(g: &Group, nodes: &[u16], epoch: u32) -> Vec<VerifiedPartial> {
    nodes
        .iter()
        .map(|i| {
            let p = evaluate(&g.shares[usize::from(*i) - 1], &APP, epoch).unwrap();
            verify(&g.group, &APP, epoch, &p).unwrap()
        })
        .collect()
}

#[test]
fn any_three_of_five_give_the_same_secret_and_it_is_s_times_x() {
    let g = group_3_of_5();
    let expected = encode(&(app_key_input(&APP, 7).unwrap() * g.secret));
    let subsets: [&[u16]; 5] = [
        &[1, 2, 3],
        &[3, 4, 5],
        &[1, 3, 5],
        &[2, 5, 4],
        &[1, 2, 3, 4, 5],
    ];
    let mut addresses = Vec::new();
    for nodes in subsets {
        let secret = combine(&g.group, &verified(&g, nodes, 7)).unwrap();
        assert_eq!(secret.expose(), &expected, "nodes {nodes:?}");
        addresses.push(secret.app_keys().signing_address());
    }
    assert!(addresses.windows(2).all(|w| w[0] == w[1]));
    // Another epoch, other keys.
    let other = combine(&g.group, &verified(&g, &[1, 2, 3], 8)).unwrap();
    assert_ne!(other.app_keys().signing_address(), addresses[0]);
    assert_ne!(
        *other.app_keys().disk,
        *combine(&g.group, &verified(&g, &[1, 2, 3], 7))
            .unwrap()
            .app_keys()
            .disk
    );
}

#[test]
fn a_node_answering_with_a_wrong_share_is_named_and_the_others_suffice() {
    let g = group_3_of_5();
    // Node 2 answers with node 4's share under its own index: its proof cannot verify.
    let mut lie = evaluate(&g.shares[3], &APP, 0).unwrap();
    lie.index = 2;
    let err = verify(&g.group, &APP, 0, &lie).unwrap_err();
    assert!(matches!(err, ThresholdError::ProofFails(2)), "{err}");
    assert!(err.to_string().contains("node 2"), "{err}");
    // Node 2 answers a value changed on the way, or for another app.
    let mut changed = evaluate(&g.shares[1], &APP, 0).unwrap();
    changed.value = evaluate(&g.shares[1], &[0x43; 20], 0).unwrap().value;
    assert!(matches!(
        verify(&g.group, &APP, 0, &changed),
        Err(ThresholdError::ProofFails(2))
    ));
    let honest = evaluate(&g.shares[1], &APP, 0).unwrap();
    assert!(matches!(
        verify(&g.group, &[0x43; 20], 0, &honest),
        Err(ThresholdError::ProofFails(2))
    ));
    // Garbage where the point goes.
    let mut garbage = honest.clone();
    garbage.value = [0x05; 33];
    assert!(matches!(
        verify(&g.group, &APP, 0, &garbage),
        Err(ThresholdError::BadPoint { node: 2, .. })
    ));
    // The guest skips node 2 and asks the others.
    let secret = combine(&g.group, &verified(&g, &[1, 3, 4], 0)).unwrap();
    assert_eq!(
        secret.expose(),
        &encode(&(app_key_input(&APP, 0).unwrap() * g.secret))
    );
}

#[test]
fn two_shares_cannot_compute_any_app_key() {
    // Two broken nodes' shares read out of their stores: every way of interpolating what they
    // can compute (their own partials, alone or together, or with the group key in place of a
    // third partial) misses s·X.
    let g = group_3_of_5();
    let x = app_key_input(&APP, 0).unwrap();
    let truth = x * g.secret;
    for a in 1..=5u16 {
        for b in (a + 1)..=5 {
            let za = x * scalar(&g.shares[usize::from(a) - 1].to_bytes()[2..]);
            let zb = x * scalar(&g.shares[usize::from(b) - 1].to_bytes()[2..]);
            assert_ne!(
                interpolate_unchecked(&[(a, za), (b, zb)]).unwrap(),
                truth,
                "{a},{b}"
            );
            assert_ne!(za, truth);
            assert_ne!(zb, truth);
        }
    }
    // And the combination refuses to run on two.
    let err = combine(&g.group, &verified(&g, &[1, 2], 0)).err().unwrap();
    assert!(
        matches!(err, ThresholdError::NotEnough { got: 2, need: 3 }),
        "{err}"
    );
    assert_eq!(err.to_string(), "2 valid partial(s), 3 needed");
}

#[test]
fn combination_refuses_duplicates_mixed_inputs_and_strangers() {
    let g = group_3_of_5();
    let mut twice = verified(&g, &[1, 2], 0);
    twice.push(twice[0].clone());
    assert!(matches!(
        combine(&g.group, &twice),
        Err(ThresholdError::DuplicateNode(1))
    ));
    let mut mixed = verified(&g, &[1, 2], 0);
    mixed.extend(verified(&g, &[3], 1));
    assert!(matches!(
        combine(&g.group, &mixed),
        Err(ThresholdError::MixedInputs(1, 3))
    ));
    let mut stranger = evaluate(&g.shares[0], &APP, 0).unwrap();
    stranger.index = 6;
    assert!(matches!(
        verify(&g.group, &APP, 0, &stranger),
        Err(ThresholdError::UnknownNode(6))
    ));
}

#[test]
fn partials_are_combined_only_under_the_group_that_verified_them() {
    // Two deployments (or a group before and after a change) with the same node indices: a
    // partial checked against one must not be interpolated under the other's threshold.
    let a = group_3_of_5();
    let (keys, public) = dkg(3, 2);
    let b = group_of(&public, 2).unwrap();
    let mut from_a = verified(&a, &[1, 2], 0);
    let err = combine(&b, &from_a).err().unwrap();
    assert!(matches!(err, ThresholdError::OtherGroup(1)), "{err}");
    // Mixed with one of b's own: still refused.
    let own = KeyShare::from_key_package(&keys[2]).unwrap();
    from_a.push(verify(&b, &APP, 0, &evaluate(&own, &APP, 0).unwrap()).unwrap());
    assert!(matches!(
        combine(&b, &from_a),
        Err(ThresholdError::OtherGroup(1))
    ));
    assert_ne!(a.group.id(), b.id());
}

#[test]
fn a_registry_cannot_make_the_check_unbounded() {
    let shares: Vec<(u16, CompressedPoint)> = (1..=256).map(|i| (i, [2; 33])).collect();
    let err = GroupKeys::new(3, &[2; 33], &shares).unwrap_err();
    assert!(matches!(err, ThresholdError::TooManyNodes(256)), "{err}");
}

#[test]
fn debug_output_names_nodes_not_values() {
    let g = group_3_of_5();
    let p = evaluate(&g.shares[0], &APP, 0).unwrap();
    let shown = format!("{p:?} {:?}", verify(&g.group, &APP, 0, &p).unwrap());
    assert!(!shown.contains(&format!("{:?}", p.value)), "{shown}");
    assert!(!shown.contains(&hex::encode(p.value)), "{shown}");
    assert!(shown.contains("index: 1"), "{shown}");
}

#[test]
fn a_share_set_not_of_one_polynomial_is_refused() {
    let g = group_3_of_5();
    let shares: Vec<(u16, CompressedPoint)> = g
        .shares
        .iter()
        .map(|s| (s.index(), verifying_share_bytes(s)))
        .collect();
    let key = g.group.group_key();
    assert_eq!(GroupKeys::new(3, &key, &shares).unwrap(), g.group);
    // One share replaced (a registry that lists another key for node 5).
    let mut bad = shares.clone();
    bad[4].1 = encode(&(ProjectivePoint::GENERATOR * Scalar::from(99u64)));
    let err = GroupKeys::new(3, &key, &bad).unwrap_err();
    assert!(
        matches!(&err, ThresholdError::InconsistentGroup(nodes) if nodes == &[1, 2, 3, 5]),
        "{err}"
    );
    // Another group key.
    let other = encode(&(ProjectivePoint::GENERATOR * Scalar::from(7u64)));
    assert!(matches!(
        GroupKeys::new(3, &other, &shares),
        Err(ThresholdError::InconsistentGroup(_))
    ));
    // A threshold the shares do not have: 2-of-5 over a degree-2 polynomial.
    assert!(matches!(
        GroupKeys::new(2, &key, &shares),
        Err(ThresholdError::InconsistentGroup(_))
    ));
    assert!(matches!(
        GroupKeys::new(0, &key, &shares),
        Err(ThresholdError::BadThreshold { .. })
    ));
    assert!(matches!(
        GroupKeys::new(6, &key, &shares),
        Err(ThresholdError::BadThreshold { .. })
    ));
    let mut dup = shares.clone();
    dup[1].0 = 1;
    assert!(matches!(
        GroupKeys::new(3, &key, &dup),
        Err(ThresholdError::DuplicateNode(1))
    ));
    let mut identity = shares;
    identity[0].1 = [0; 33];
    assert!(matches!(
        GroupKeys::new(3, &key, &identity),
        Err(ThresholdError::BadPoint { node: 1, .. })
    ));
}

#[test]
fn a_share_survives_its_sealed_form() {
    let g = group_3_of_5();
    for share in &g.shares {
        let back = KeyShare::from_bytes(&share.to_bytes()).unwrap();
        assert_eq!(back.index(), share.index());
        assert_eq!(verifying_share_bytes(&back), verifying_share_bytes(share));
        assert_eq!(
            format!("{back:?}"),
            format!("KeyShare {{ index: {}, .. }}", share.index())
        );
    }
    let mut zero_index = *g.shares[0].to_bytes();
    zero_index[..2].copy_from_slice(&[0, 0]);
    assert!(KeyShare::from_bytes(&zero_index).is_err());
    let mut too_big = *g.shares[0].to_bytes();
    too_big[2..].copy_from_slice(&[0xff; 32]);
    assert!(KeyShare::from_bytes(&too_big).is_err());
    assert_eq!(index_of(&identifier(513).unwrap()), Some(513));
}

#[test]
fn threshold_keys_differ_from_the_replicated_roots() {
    // The same 33 bytes as a root secret would be: another salt prefix, other keys.
    let g = group_3_of_5();
    let secret = combine(&g.group, &verified(&g, &[1, 2, 3], 0)).unwrap();
    let root_mode = snpkms_api::app_keys::AppKeys::derive(
        secret.expose(),
        snpkms_api::app_keys::ROOT_EPOCH_SALT,
        &APP,
        0,
    );
    assert_ne!(
        root_mode.signing_address(),
        secret.app_keys().signing_address()
    );
}

#[test]
fn partials_round_trip_their_wire_form_and_refuse_other_lengths() {
    let g = group_3_of_5();
    let partial = evaluate(&g.shares[2], &APP, 4).unwrap();
    let bytes = partial.to_bytes();
    assert_eq!(bytes.len(), snpkms_threshold::partial::PARTIAL_LEN);
    let back = Partial::from_bytes(&bytes).unwrap();
    assert_eq!(back, partial);
    verify(&g.group, &APP, 4, &back).unwrap();
    for len in [0, 98, 100] {
        let mut other = bytes.to_vec();
        other.resize(len, 0);
        assert!(matches!(
            Partial::from_bytes(&other),
            Err(ThresholdError::BadLength(l)) if l == len
        ));
    }
    // A changed index on the wire names another node, whose share the proof does not match.
    let mut moved = bytes;
    moved[1] ^= 1;
    let moved = Partial::from_bytes(&moved).unwrap();
    assert!(verify(&g.group, &APP, 4, &moved).is_err());
}
