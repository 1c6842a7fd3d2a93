//! Re-sharing a 3-of-5 group to another node set (node 2 leaves, node 6 joins) without a
//! dealer: a repair gives node 6 its point on the polynomial, then a refresh among the new set
//! makes every share new. The group key and every app key stay; the old shares, node 2's
//! included, combine with none of the new ones. Every package travels as the nodes would send
//! it (serialized, one per recipient).

use k256::{ProjectivePoint, Scalar};
use snpkms_threshold::combine::interpolate_unchecked;
use snpkms_threshold::input::app_key_input;
use snpkms_threshold::keygen::{start_refresh, Round2Packages};
use snpkms_threshold::repair::{repair_deltas, repair_sigma, repaired_share};
use snpkms_threshold::shares::group_of;
use snpkms_threshold::testing::dkg;
use snpkms_threshold::*;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

const APP: [u8; 20] = [0x42; 20];

fn group_3_of_5() -> (Vec<KeyShare>, GroupKeys) {
    let (keys, public) = dkg(5, 3);
    let shares = keys
        .iter()
        .map(|k| KeyShare::from_key_package(k).unwrap())
        .collect();
    (shares, group_of(&public, 3).unwrap())
}

/// The app secret from the partials of `shares` under `group`.
fn app_secret(group: &GroupKeys, shares: &[&KeyShare], epoch: u32) -> [u8; 33] {
    let verified: Vec<_> = shares
        .iter()
        .map(|s| verify(group, &APP, epoch, &evaluate(s, &APP, epoch).unwrap()).unwrap())
        .collect();
    *combine(group, &verified).unwrap().expose()
}

/// The repair of node `newcomer` by `helpers`, `tamper` changing a sigma on its way.
fn repair(
    group: &GroupKeys,
    shares: &BTreeMap<u16, &KeyShare>,
    helpers: &[u16],
    newcomer: u16,
    tamper: impl Fn(u16, &mut Vec<u8>),
) -> Result<KeyShare, ThresholdError> {
    let mut inbox: BTreeMap<u16, Round2Packages> = BTreeMap::new();
    for h in helpers {
        for (to, delta) in repair_deltas(shares[h], group, helpers, newcomer).unwrap() {
            inbox.entry(to).or_default().insert(*h, delta);
        }
    }
    let mut sigmas = Round2Packages::new();
    for h in helpers {
        let mut sigma = repair_sigma(group, helpers, newcomer, &inbox[h]).unwrap();
        tamper(*h, &mut sigma);
        sigmas.insert(*h, sigma);
    }
    repaired_share(group, helpers, newcomer, &sigmas)
}

/// A refresh among every share of `shares` (their indices are the new set), `tamper`
/// changing the round-2 package (from, to).
fn refresh(
    group: &GroupKeys,
    shares: &[&KeyShare],
    tamper: impl Fn(u16, u16, &mut Zeroizing<Vec<u8>>),
) -> Vec<Result<(KeyShare, GroupKeys), ThresholdError>> {
    let members: Vec<u16> = shares.iter().map(|s| s.index()).collect();
    let mut secrets = Vec::new();
    let mut round1 = BTreeMap::new();
    for s in shares {
        let (secret, package) = start_refresh(s, group, &members).unwrap();
        secrets.push(secret);
        round1.insert(s.index(), package);
    }
    let mut inbox: BTreeMap<u16, Round2Packages> = BTreeMap::new();
    let mut seconds = Vec::new();
    for secret in secrets {
        let me = secret.index();
        let mut theirs = round1.clone();
        theirs.remove(&me);
        let (second, out) = secret.round2(&theirs).unwrap();
        for (to, mut package) in out {
            tamper(me, to, &mut package);
            inbox.entry(to).or_default().insert(me, package);
        }
        seconds.push((me, second));
    }
    seconds.iter().map(|(me, s)| s.finish(&inbox[me])).collect()
}

fn secret_of(share: &KeyShare) -> Scalar {
    let bytes = share.to_bytes();
    Option::from(<Scalar as k256::elliptic_curve::PrimeField>::from_repr(
        <[u8; 32]>::try_from(&bytes[2..]).unwrap().into(),
    ))
    .unwrap()
}

#[test]
fn a_reshare_to_a_new_node_set_keeps_every_app_key_and_retires_the_old_shares() {
    let (old, group) = group_3_of_5();
    let before: Vec<[u8; 33]> = (0..3)
        .map(|epoch| app_secret(&group, &[&old[0], &old[1], &old[2]], epoch))
        .collect();

    // Node 6 joins: helpers 1, 3 and 4 give it its point on the polynomial.
    let by_index: BTreeMap<u16, &KeyShare> = old.iter().map(|s| (s.index(), s)).collect();
    let six = repair(&group, &by_index, &[1, 3, 4], 6, |_, _| {}).unwrap();
    let grown = group.with_node(6).unwrap();
    assert_eq!(grown.verifying_share(6).unwrap(), &six.verifying_share());
    // Its share already gives the same keys with two old ones.
    assert_eq!(app_secret(&grown, &[&old[4], &six, &old[0]], 0), before[0]);

    // Node 2 leaves: the refresh runs among 1, 3, 4, 5 and 6.
    let staying = [&old[0], &old[2], &old[3], &old[4], &six];
    let results = refresh(&grown, &staying, |_, _, _| {});
    let (new, groups): (Vec<KeyShare>, Vec<GroupKeys>) =
        results.into_iter().map(Result::unwrap).unzip();
    let new_group = groups[0].clone();
    assert!(groups.iter().all(|g| g == &new_group), "one group for all");
    assert_eq!(
        new_group.group_key(),
        group.group_key(),
        "the group key stays"
    );
    assert_eq!(new_group.nodes().collect::<Vec<_>>(), vec![1, 3, 4, 5, 6]);
    for (s, old_s) in new.iter().zip(staying) {
        assert_eq!(s.index(), old_s.index());
        assert_ne!(
            s.verifying_share(),
            old_s.verifying_share(),
            "every share changes"
        );
    }

    // Every app key of every epoch is the same, from any t of the new set.
    for (epoch, key) in before.iter().enumerate() {
        let epoch = epoch as u32;
        assert_eq!(
            &app_secret(&new_group, &[&new[0], &new[1], &new[2]], epoch),
            key
        );
        assert_eq!(
            &app_secret(&new_group, &[&new[4], &new[3], &new[1]], epoch),
            key
        );
    }

    // The node left out: its partial does not verify under the new group, and its old share
    // with two new ones (or an old and a new share of the same kind) interpolates to no key.
    let two = evaluate(&old[1], &APP, 0).unwrap();
    assert!(matches!(
        verify(&new_group, &APP, 0, &two),
        Err(ThresholdError::UnknownNode(2))
    ));
    let x = app_key_input(&APP, 0).unwrap();
    let secret_point = |points: &[(u16, ProjectivePoint)]| {
        let mut out = [0u8; 33];
        out.copy_from_slice(
            &k256::elliptic_curve::group::GroupEncoding::to_bytes(
                &interpolate_unchecked(points).unwrap().to_affine(),
            )[..],
        );
        out
    };
    let mixed = [
        (2, x * secret_of(&old[1])),
        (1, x * secret_of(&new[0])),
        (3, x * secret_of(&new[1])),
    ];
    assert_ne!(secret_point(&mixed), before[0]);
    let stale = [
        (1, x * secret_of(&old[0])),
        (3, x * secret_of(&new[1])),
        (4, x * secret_of(&new[2])),
    ];
    assert_ne!(secret_point(&stale), before[0]);
    // (The same interpolation with t new shares is the key: the test computes it right.)
    let fresh = [
        (1, x * secret_of(&new[0])),
        (3, x * secret_of(&new[1])),
        (4, x * secret_of(&new[2])),
    ];
    assert_eq!(secret_point(&fresh), before[0]);
}

#[test]
fn a_wrong_value_in_a_repair_or_a_refresh_is_refused() {
    let (old, group) = group_3_of_5();
    let by_index: BTreeMap<u16, &KeyShare> = old.iter().map(|s| (s.index(), s)).collect();
    // A helper's sigma changed on the way: the newcomer's share does not match the group.
    let changed = repair(&group, &by_index, &[1, 3, 4], 6, |h, sigma| {
        if h == 3 {
            let last = sigma.len() - 1;
            sigma[last] ^= 1;
        }
    });
    assert!(
        matches!(changed, Err(ThresholdError::RepairFails(6))),
        "{changed:?}"
    );
    // A helper whose sigma is missing.
    let deltas: Vec<_> = [1u16, 3, 4]
        .iter()
        .map(|h| repair_deltas(by_index[h], &group, &[1, 3, 4], 6).unwrap())
        .collect();
    let mut inbox = Round2Packages::new();
    for (from, d) in [1u16, 3, 4].iter().zip(&deltas) {
        inbox.insert(*from, d[&1].clone());
    }
    let sigma = repair_sigma(&group, &[1, 3, 4], 6, &inbox).unwrap();
    assert!(matches!(
        repaired_share(&group, &[1, 3, 4], 6, &Round2Packages::from([(1, sigma)])),
        Err(ThresholdError::MissingNode(3))
    ));
    // Too few helpers, a helper twice, the newcomer among them, a stranger.
    for helpers in [&[1u16, 3][..], &[1, 1, 3], &[1, 3, 6], &[1, 3, 7]] {
        assert!(
            repair_deltas(&old[0], &group, helpers, 6).is_err(),
            "{helpers:?}"
        );
    }
    // No helper repairs a member's index: that would hand out its live share.
    assert!(matches!(
        repair_deltas(&old[0], &group, &[1, 3, 4], 2),
        Err(ThresholdError::DuplicateNode(2))
    ));

    // A refresh round-2 package changed on the way names its sender; the others finish.
    let staying: Vec<&KeyShare> = old.iter().take(4).collect();
    let results = refresh(&group, &staying, |from, to, p| {
        if (from, to) == (2, 3) {
            let last = p.len() - 1;
            p[last] ^= 1;
        }
    });
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    assert!(
        matches!(
            &results[2],
            Err(ThresholdError::KeyGenPackage { node: 2, .. })
        ),
        "{:?}",
        results[2].as_ref().map(|_| ())
    );
    // A refresh among fewer than t, one not naming this node, or with a share of another group.
    assert!(matches!(
        start_refresh(&old[0], &group, &[1, 2]),
        Err(ThresholdError::BadMembers { .. })
    ));
    assert!(matches!(
        start_refresh(&old[0], &group, &[2, 3, 4]),
        Err(ThresholdError::BadMembers { .. })
    ));
    let (_, other_group) = group_3_of_5();
    assert!(matches!(
        start_refresh(&old[0], &other_group, &[1, 2, 3]),
        Err(ThresholdError::ShareNotInGroup(1))
    ));
}
