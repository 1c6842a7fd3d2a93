//! Adding a node to a threshold group without a dealer: FROST's repairable threshold scheme
//! (RTS, eprint 2017/1155). t members (the helpers) give the newcomer its point on the group's
//! polynomial, `s(j)`, without any of them learning it or anything of each other's shares:
//!
//! 1. [`repair_deltas`]: each helper splits `λ_i(j)·s_i` into random summands, one per helper
//!    (itself included). *Secret*: each must reach only that helper.
//! 2. [`repair_sigma`]: each helper adds the summands it received: its sigma. *Secret*: it
//!    must reach only the newcomer.
//! 3. [`repaired_share`]: the newcomer adds the sigmas and checks the result against the
//!    verifying share the group's polynomial gives its index ([`GroupKeys::with_node`]).
//!
//! A repair gives the newcomer a share of the *current* polynomial: a refresh among the new
//! node set ([`crate::keygen::start_refresh`]) then makes every share new, so that an old share
//! (one of a node left out) combines with none of them. How the values travel (attested,
//! sealed) is the node's business.

use crate::keygen::Round2Packages;
use crate::shares::{identifier, index_of};
use crate::{GroupKeys, KeyShare, ThresholdError};
use frost_secp256k1::keys::repairable::{self, Delta, Sigma};
use frost_secp256k1::Secp256K1Sha256;
use std::collections::BTreeSet;
use zeroize::Zeroizing;

/// The helper set, checked: distinct members of `group`, at least its threshold, the
/// newcomer not among them.
fn checked_helpers(
    group: &GroupKeys,
    helpers: &[u16],
    newcomer: u16,
) -> Result<BTreeSet<u16>, ThresholdError> {
    let set: BTreeSet<u16> = helpers.iter().copied().collect();
    let refused = |why| ThresholdError::BadMembers {
        members: helpers.to_vec(),
        why,
    };
    if set.len() != helpers.len() {
        return Err(refused("a helper is named twice"));
    }
    if set.len() < usize::from(group.threshold()) {
        return Err(refused("fewer helpers than the threshold"));
    }
    if newcomer == 0 || set.contains(&newcomer) {
        return Err(refused(
            "the node being given a share is one of the helpers",
        ));
    }
    if let Some(stranger) = set.iter().find(|h| group.verifying_share(**h).is_err()) {
        return Err(ThresholdError::UnknownNode(*stranger));
    }
    // A member's index would hand its live share to whoever asks for it.
    if group.verifying_share(newcomer).is_ok() {
        return Err(ThresholdError::DuplicateNode(newcomer));
    }
    Ok(set)
}

/// Part 1 at helper `share.index()`: one delta per helper, by the helper's index (secret).
pub fn repair_deltas(
    share: &KeyShare,
    group: &GroupKeys,
    helpers: &[u16],
    newcomer: u16,
) -> Result<Round2Packages, ThresholdError> {
    let set = checked_helpers(group, helpers, newcomer)?;
    if !set.contains(&share.index()) {
        return Err(ThresholdError::BadMembers {
            members: helpers.to_vec(),
            why: "this node is not one of the helpers",
        });
    }
    let key = share.to_key_package(group)?;
    let ids = set
        .iter()
        .map(|h| identifier(*h))
        .collect::<Result<Vec<_>, _>>()?;
    let deltas = repairable::repair_share_part1::<Secp256K1Sha256, _>(
        &ids,
        &key,
        &mut rand::rngs::OsRng,
        identifier(newcomer)?,
    )
    .map_err(ThresholdError::Dkg)?;
    deltas
        .into_iter()
        .map(|(id, delta)| {
            let helper = index_of(&id).ok_or(ThresholdError::UnknownNode(0))?;
            Ok((helper, Zeroizing::new(delta.serialize())))
        })
        .collect()
}

/// Part 2 at a helper: with the delta every helper sent it (by sender), its sigma for the
/// newcomer (secret).
pub fn repair_sigma(
    group: &GroupKeys,
    helpers: &[u16],
    newcomer: u16,
    deltas: &Round2Packages,
) -> Result<Zeroizing<Vec<u8>>, ThresholdError> {
    let set = checked_helpers(group, helpers, newcomer)?;
    let values = from_each(&set, deltas, Delta::deserialize)?;
    Ok(Zeroizing::new(
        repairable::repair_share_part2(&values).serialize(),
    ))
}

/// Part 3 at the newcomer: its share from every helper's sigma (by sender), refused unless
/// it is the group polynomial's value at `newcomer`.
pub fn repaired_share(
    group: &GroupKeys,
    helpers: &[u16],
    newcomer: u16,
    sigmas: &Round2Packages,
) -> Result<KeyShare, ThresholdError> {
    let set = checked_helpers(group, helpers, newcomer)?;
    let values = from_each(&set, sigmas, Sigma::deserialize)?;
    let public = group.to_public_key_package()?;
    let key = repairable::repair_share_part3(&values, identifier(newcomer)?, &public)
        .map_err(ThresholdError::Dkg)?;
    let share = KeyShare::from_key_package(&key)?;
    let expected = group.with_node(newcomer)?;
    if expected.verifying_share(newcomer)? != &share.verifying_share() {
        return Err(ThresholdError::RepairFails(newcomer));
    }
    Ok(share)
}

/// One value from each helper, decoded; a missing, extra or malformed one is refused naming
/// its helper.
fn from_each<T>(
    helpers: &BTreeSet<u16>,
    values: &Round2Packages,
    decode: impl Fn(&[u8]) -> Result<T, frost_secp256k1::Error>,
) -> Result<Vec<T>, ThresholdError> {
    if let Some(stranger) = values.keys().find(|h| !helpers.contains(h)) {
        return Err(ThresholdError::UnknownNode(*stranger));
    }
    helpers
        .iter()
        .map(|h| {
            let bytes = values.get(h).ok_or(ThresholdError::MissingNode(*h))?;
            decode(bytes).map_err(|source| ThresholdError::KeyGenPackage { node: *h, source })
        })
        .collect()
}
