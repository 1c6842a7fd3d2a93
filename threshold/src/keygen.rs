//! One participant's side of the distributed key generation (FROST's DKG, RFC 9591 with
//! Feldman commitments): the three parts as a node runs them, with the packages in their wire
//! form (FROST's own serialization) and every failure naming the node it is about. How the
//! packages travel (attested, sealed) is the node's business (`snpkms-kms-node`'s keygen).
//!
//! 1. [`start`]: the node's secret polynomial, and its round-1 package (the commitments to it
//!    and a proof of knowledge of its constant), which every other node must receive.
//! 2. [`Round1Secret::round2`]: once it holds every other node's round-1 package (their proofs
//!    are checked here), one round-2 package per other node: that node's point on this node's
//!    polynomial. *Secret*: it must reach only that node.
//! 3. [`Round2Secret::finish`]: with every other node's round-2 package for this node (each
//!    checked against its sender's commitments), the node's share and the group's public keys.
//!
//! A refresh ([`start_refresh`]) runs the same rounds among a subset of a group's nodes, each
//! starting from its share: every polynomial goes through zero, so the group key stays and
//! every share changes (`threshold/README.md`, "Re-sharing").
//!
//! What the packages do not protect against is a sender showing different round-1 packages to
//! different nodes (FROST assumes a broadcast channel): the nodes then end with different group
//! keys. [`transcript_hash`] is what they compare afterwards.

use crate::group::{decode_point, decode_scalar, CompressedPoint};
use crate::shares::{group_of, identifier, index_of};
use crate::{GroupKeys, KeyShare, ThresholdError};
use frost_secp256k1::keys::{dkg, refresh, KeyPackage, PublicKeyPackage};
use frost_secp256k1::Identifier;
use k256::{ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// Round-2 packages by node index (the recipient's, or the sender's): secret, wiped on drop.
pub type Round2Packages = BTreeMap<u16, Zeroizing<Vec<u8>>>;

/// A node's state after part 1: its secret polynomial. Wiped on drop (by FROST).
pub struct Round1Secret {
    index: u16,
    threshold: u16,
    /// Every participant's index, this node's included.
    members: BTreeSet<u16>,
    secret: dkg::round1::SecretPackage,
    refreshing: Option<Refreshing>,
}

/// A node's state after part 2. Wiped on drop (by FROST).
pub struct Round2Secret {
    index: u16,
    threshold: u16,
    secret: dkg::round2::SecretPackage,
    round1: BTreeMap<Identifier, dkg::round1::Package>,
    refreshing: Option<Refreshing>,
}

/// In a refresh, what is refreshed: the node's share and the group's keys before it.
struct Refreshing {
    key: KeyPackage,
    public: PublicKeyPackage,
    group_key: CompressedPoint,
}

impl std::fmt::Debug for Round1Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round1Secret")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Round2Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round2Secret")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Part 1 for node `index` of `participants` with threshold `threshold`: the secret to keep
/// and the round-1 package to publish.
pub fn start(
    index: u16,
    participants: u16,
    threshold: u16,
) -> Result<(Round1Secret, Vec<u8>), ThresholdError> {
    if usize::from(participants) > crate::group::MAX_NODES {
        return Err(ThresholdError::TooManyNodes(participants.into()));
    }
    // FROST needs at least two: one share of one is the secret itself.
    if threshold < 2 || threshold > participants {
        return Err(ThresholdError::BadThreshold {
            threshold,
            nodes: participants.into(),
        });
    }
    if index == 0 || index > participants {
        return Err(ThresholdError::UnknownNode(index));
    }
    let (secret, package) = dkg::part1(
        identifier(index)?,
        participants,
        threshold,
        rand::rngs::OsRng,
    )
    .map_err(ThresholdError::Dkg)?;
    let bytes = package.serialize().map_err(ThresholdError::Dkg)?;
    Ok((
        Round1Secret {
            index,
            threshold,
            members: (1..=participants).collect(),
            secret,
            refreshing: None,
        },
        bytes,
    ))
}

/// Part 1 of a refresh (FROST's refresh by DKG): node `share.index()` of the current `group`
/// starts re-sharing the same secret among `members` (at least t of the group's nodes, this
/// one included; the group's other nodes are left out). Every member adds a random polynomial
/// through zero, so the group key and every app key stay, while every member's share changes:
/// an old share, also one of a node left out, combines with no new one. The rounds then run as
/// in a key generation.
pub fn start_refresh(
    share: &KeyShare,
    group: &GroupKeys,
    members: &[u16],
) -> Result<(Round1Secret, Vec<u8>), ThresholdError> {
    let set: BTreeSet<u16> = members.iter().copied().collect();
    let refused = |why| ThresholdError::BadMembers {
        members: members.to_vec(),
        why,
    };
    if set.len() != members.len() {
        return Err(refused("a node is named twice"));
    }
    if set.len() < usize::from(group.threshold()) {
        return Err(refused("fewer than the threshold"));
    }
    if !set.contains(&share.index()) {
        return Err(refused("this node is not one of them"));
    }
    if let Some(stranger) = set.iter().find(|m| group.verifying_share(**m).is_err()) {
        return Err(ThresholdError::UnknownNode(*stranger));
    }
    let key = share.to_key_package(group)?;
    let public = group.to_public_key_package()?;
    let (secret, package) = refresh::refresh_dkg_part1(
        identifier(share.index())?,
        members.len() as u16,
        group.threshold(),
        rand::rngs::OsRng,
    )
    .map_err(ThresholdError::Dkg)?;
    let bytes = package.serialize().map_err(ThresholdError::Dkg)?;
    Ok((
        Round1Secret {
            index: share.index(),
            threshold: group.threshold(),
            members: set,
            secret,
            refreshing: Some(Refreshing {
                key,
                public,
                group_key: group.group_key(),
            }),
        },
        bytes,
    ))
}

/// Why a package from a node was refused.
fn from_node(node: u16) -> impl Fn(frost_secp256k1::Error) -> ThresholdError {
    move |source| ThresholdError::KeyGenPackage { node, source }
}

/// A FROST failure, naming the culprit FROST names (a bad proof of knowledge, a share that
/// does not match its sender's commitments).
fn culprit_of(error: frost_secp256k1::Error) -> ThresholdError {
    match error.culprits().first().and_then(index_of) {
        Some(node) => ThresholdError::KeyGenPackage {
            node,
            source: error,
        },
        None => ThresholdError::Dkg(error),
    }
}

fn others(
    me: u16,
    members: &BTreeSet<u16>,
    packages: &BTreeMap<u16, Vec<u8>>,
) -> Result<BTreeMap<Identifier, dkg::round1::Package>, ThresholdError> {
    let mut out = BTreeMap::new();
    for (node, bytes) in packages {
        if *node == me || !members.contains(node) {
            return Err(ThresholdError::UnknownNode(*node));
        }
        let package = dkg::round1::Package::deserialize(bytes).map_err(from_node(*node))?;
        out.insert(identifier(*node)?, package);
    }
    for node in members.iter().copied().filter(|n| *n != me) {
        if !packages.contains_key(&node) {
            return Err(ThresholdError::MissingNode(node));
        }
    }
    Ok(out)
}

impl Round1Secret {
    /// This node's index.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Part 2: with every other node's round-1 package (by index), the round-2 package for
    /// each of them (secret: for that node only).
    pub fn round2(
        self,
        round1: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<(Round2Secret, Round2Packages), ThresholdError> {
        let packages = others(self.index, &self.members, round1)?;
        let (secret, out) = match &self.refreshing {
            None => dkg::part2(self.secret, &packages),
            Some(_) => refresh::refresh_dkg_part2(self.secret, &packages),
        }
        .map_err(culprit_of)?;
        let mut sealed = BTreeMap::new();
        for (id, package) in out {
            let node = index_of(&id).ok_or(ThresholdError::UnknownNode(0))?;
            let bytes = Zeroizing::new(package.serialize().map_err(ThresholdError::Dkg)?);
            sealed.insert(node, bytes);
        }
        Ok((
            Round2Secret {
                index: self.index,
                threshold: self.threshold,
                secret,
                round1: packages,
                refreshing: self.refreshing,
            },
            sealed,
        ))
    }
}

impl Round2Secret {
    /// Part 3: with every other node's round-2 package for this node (by sender), this node's
    /// share and the group's public keys.
    pub fn finish(&self, round2: &Round2Packages) -> Result<(KeyShare, GroupKeys), ThresholdError> {
        let mut packages = BTreeMap::new();
        for (node, bytes) in round2 {
            let id = identifier(*node)?;
            if !self.round1.contains_key(&id) {
                return Err(ThresholdError::UnknownNode(*node));
            }
            let package = dkg::round2::Package::deserialize(bytes).map_err(from_node(*node))?;
            packages.insert(id, package);
        }
        for id in self.round1.keys() {
            if !packages.contains_key(id) {
                return Err(ThresholdError::MissingNode(index_of(id).unwrap_or(0)));
            }
        }
        if self.refreshing.is_some() {
            // FROST's refresh checks the packages but does not say whose failed: check each
            // here, so that a failure names its sender as in a key generation.
            for (id, package) in &packages {
                self.check_refresh_package(id, package)?;
            }
        }
        let (key, public) = match &self.refreshing {
            None => dkg::part3(&self.secret, &self.round1, &packages),
            Some(old) => refresh::refresh_dkg_shares(
                &self.secret,
                &self.round1,
                &packages,
                old.public.clone(),
                old.key.clone(),
            ),
        }
        .map_err(culprit_of)?;
        let share = KeyShare::from_key_package(&key)?;
        if share.index() != self.index {
            return Err(ThresholdError::UnknownNode(share.index()));
        }
        // The new keys are checked as a registry's would be (one polynomial), and a refresh
        // must have kept the group key (FROST keeps it by construction; a refresh that did not
        // would change every app key).
        let group = group_of(&public, self.threshold)?;
        if let Some(old) = &self.refreshing {
            if group.group_key() != old.group_key {
                return Err(ThresholdError::InconsistentGroup(group.nodes().collect()));
            }
        }
        Ok((share, group))
    }
}

impl Round2Secret {
    /// Feldman's check of a refresh's round-2 package from `sender`: its value at this node's
    /// index against the sender's commitments to a polynomial through zero,
    /// `f(i)·G = Σ_{k≥1} C_k·i^k`.
    fn check_refresh_package(
        &self,
        sender: &Identifier,
        package: &dkg::round2::Package,
    ) -> Result<(), ThresholdError> {
        let node = index_of(sender).ok_or(ThresholdError::UnknownNode(0))?;
        let commitments = self
            .round1
            .get(sender)
            .ok_or(ThresholdError::UnknownNode(node))?
            .commitment()
            .serialize()
            .map_err(from_node(node))?;
        let x = Scalar::from(u64::from(self.index));
        let mut power = Scalar::ONE;
        let mut expected = ProjectivePoint::IDENTITY;
        for bytes in &commitments {
            power *= x;
            let point: CompressedPoint =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| ThresholdError::BadPoint {
                        node,
                        what: "a refresh commitment",
                    })?;
            expected += decode_point(&point, node, "a refresh commitment")? * power;
        }
        let value: Zeroizing<Vec<u8>> = Zeroizing::new(package.signing_share().serialize());
        let value: &[u8; 32] =
            value
                .as_slice()
                .try_into()
                .map_err(|_| ThresholdError::BadScalar {
                    node,
                    what: "a refresh share",
                })?;
        let value = Zeroizing::new(decode_scalar(value, node, "a refresh share")?);
        if ProjectivePoint::GENERATOR * *value != expected {
            return Err(ThresholdError::KeyGenPackage {
                node,
                source: frost_secp256k1::Error::InvalidSecretShare { culprit: None },
            });
        }
        Ok(())
    }
}

/// SHA-256 over every node's round-1 package (index-ordered, length-prefixed): what every
/// participant of one key generation must agree on. Two nodes that saw different packages
/// (a sender, or the network, showing each a different one) have different hashes.
pub fn transcript_hash(round1: &BTreeMap<u16, Vec<u8>>) -> [u8; 32] {
    let mut hash = Sha256::new_with_prefix(b"snpkms/v2/keygen-transcript");
    for (node, bytes) in round1 {
        hash.update(node.to_be_bytes());
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the three parts for every node, `tamper` changing the round-2 package (from, to).
    fn run(
        n: u16,
        t: u16,
        tamper: impl Fn(u16, u16, &mut Vec<u8>),
    ) -> Vec<Result<(KeyShare, GroupKeys), ThresholdError>> {
        let mut secrets = Vec::new();
        let mut round1 = BTreeMap::new();
        for i in 1..=n {
            let (s, p) = start(i, n, t).unwrap();
            secrets.push(s);
            round1.insert(i, p);
        }
        let mut inbox: BTreeMap<u16, BTreeMap<u16, Zeroizing<Vec<u8>>>> = BTreeMap::new();
        let mut seconds = Vec::new();
        for s in secrets {
            let me = s.index();
            let mut theirs = round1.clone();
            theirs.remove(&me);
            let (s2, out) = s.round2(&theirs).unwrap();
            for (to, mut p) in out {
                tamper(me, to, &mut p);
                inbox.entry(to).or_default().insert(me, p);
            }
            seconds.push(s2);
        }
        seconds.iter().map(|s| s.finish(&inbox[&s.index])).collect()
    }

    #[test]
    fn every_node_ends_with_the_same_group_and_its_own_share() {
        let results = run(4, 3, |_, _, _| {});
        let first = results[0].as_ref().unwrap().1.clone();
        for (i, r) in results.iter().enumerate() {
            let (share, group) = r.as_ref().unwrap();
            assert_eq!(share.index(), i as u16 + 1);
            assert_eq!(group, &first);
            assert_eq!(
                group.verifying_share(share.index()).unwrap(),
                &share.verifying_share()
            );
        }
    }

    #[test]
    fn a_changed_share_names_its_sender() {
        // Node 2's package for node 3 changed on the way: node 3 names node 2, the others finish.
        let results = run(4, 3, |from, to, p| {
            if (from, to) == (2, 3) {
                let last = p.len() - 1;
                p[last] ^= 1;
            }
        });
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        match &results[2] {
            Err(ThresholdError::KeyGenPackage { node: 2, .. }) => {}
            other => panic!("{:?}", other.as_ref().map(|_| ())),
        }
    }

    #[test]
    fn missing_foreign_and_garbage_round1_packages_are_refused() {
        let (s1, _) = start(1, 3, 2).unwrap();
        let (_, p2) = start(2, 3, 2).unwrap();
        let one = BTreeMap::from([(2, p2.clone())]);
        assert!(matches!(
            s1.round2(&one),
            Err(ThresholdError::MissingNode(3))
        ));
        let (s1, _) = start(1, 3, 2).unwrap();
        let garbage = BTreeMap::from([(2, p2.clone()), (3, vec![0xff; 10])]);
        assert!(matches!(
            s1.round2(&garbage),
            Err(ThresholdError::KeyGenPackage { node: 3, .. })
        ));
        let (s1, _) = start(1, 3, 2).unwrap();
        let foreign = BTreeMap::from([(2, p2.clone()), (4, p2)]);
        assert!(matches!(
            s1.round2(&foreign),
            Err(ThresholdError::UnknownNode(4))
        ));
        // A package made for a threshold of 3 among nodes that agreed on 2.
        let (s1, _) = start(1, 3, 2).unwrap();
        let (_, p2) = start(2, 3, 2).unwrap();
        let (_, p3) = start(3, 3, 3).unwrap();
        assert!(s1.round2(&BTreeMap::from([(2, p2), (3, p3)])).is_err());
        assert!(matches!(
            start(1, 3, 1),
            Err(ThresholdError::BadThreshold { .. })
        ));
        assert!(matches!(
            start(4, 3, 2),
            Err(ThresholdError::UnknownNode(4))
        ));
    }

    #[test]
    fn the_transcript_names_every_package() {
        let a = BTreeMap::from([(1, vec![1]), (2, vec![2])]);
        let mut b = a.clone();
        b.insert(2, vec![3]);
        assert_ne!(transcript_hash(&a), transcript_hash(&b));
        // Length-prefixed: moving a byte across the boundary changes it.
        let c = BTreeMap::from([(1, vec![1, 2]), (2, vec![])]);
        let d = BTreeMap::from([(1, vec![1]), (2, vec![2])]);
        assert_ne!(transcript_hash(&c), transcript_hash(&d));
    }
}
