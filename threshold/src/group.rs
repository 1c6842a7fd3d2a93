//! The public side of a threshold deployment, as the registry records it: the threshold, the
//! group key `s·G` and every node's verifying share `s_i·G`.

use crate::combine::lagrange_at;
use crate::shares::identifier;
use crate::ThresholdError;
use frost_secp256k1::keys::{PublicKeyPackage, VerifyingShare};
use frost_secp256k1::VerifyingKey;
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The most nodes a group may have: the consistency check costs O(n·t) point multiplications,
/// and a registry must not be able to make a guest spend minutes on it.
pub const MAX_NODES: usize = 255;

/// A compressed secp256k1 point (SEC1, 33 bytes).
pub type CompressedPoint = [u8; 33];

/// The group's public keys. Built only through [`GroupKeys::new`], which checks that the
/// verifying shares are those of one polynomial of degree t - 1 through the group key, so
/// that any t of them give the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKeys {
    threshold: u16,
    group_key: ProjectivePoint,
    verifying_shares: BTreeMap<u16, ProjectivePoint>,
    /// SHA-256 of the threshold, the group key and every (index, share): what a verified
    /// partial remembers, so that it is only ever combined under the group that checked it.
    id: [u8; 32],
}

impl GroupKeys {
    /// The group from its encoded keys (as read from the chain): `threshold` of the nodes
    /// `verifying_shares` names by index (1..=n, as in the key generation).
    pub fn new(
        threshold: u16,
        group_key: &CompressedPoint,
        verifying_shares: &[(u16, CompressedPoint)],
    ) -> Result<GroupKeys, ThresholdError> {
        if verifying_shares.len() > MAX_NODES {
            return Err(ThresholdError::TooManyNodes(verifying_shares.len()));
        }
        if threshold == 0 || usize::from(threshold) > verifying_shares.len() {
            return Err(ThresholdError::BadThreshold {
                threshold,
                nodes: verifying_shares.len(),
            });
        }
        let group_key = decode_point(group_key, 0, "the group key")?;
        let mut shares = BTreeMap::new();
        for (index, bytes) in verifying_shares {
            if *index == 0 {
                return Err(ThresholdError::UnknownNode(0));
            }
            let point = decode_point(bytes, *index, "the verifying share")?;
            if shares.insert(*index, point).is_some() {
                return Err(ThresholdError::DuplicateNode(*index));
            }
        }
        let mut id = Sha256::new_with_prefix(b"snpkms/v2/group");
        id.update(threshold.to_be_bytes());
        id.update(encode_point(&group_key));
        for (index, point) in &shares {
            id.update(index.to_be_bytes());
            id.update(encode_point(point));
        }
        let group = GroupKeys {
            threshold,
            group_key,
            verifying_shares: shares,
            id: id.finalize().into(),
        };
        group.check_one_polynomial()?;
        Ok(group)
    }

    /// Interpolates the first t verifying shares at 0 (must be the group key) and at every
    /// other node's index (must be its share): Feldman's check that the shares are
    /// consistent, O(n·t) point multiplications.
    fn check_one_polynomial(&self) -> Result<(), ThresholdError> {
        let basis = self.basis();
        if self.interpolate(&basis, Scalar::ZERO)? != self.group_key {
            return Err(ThresholdError::InconsistentGroup(basis));
        }
        for (index, share) in self.verifying_shares.iter().skip(basis.len()) {
            if self.interpolate(&basis, Scalar::from(u64::from(*index)))? != *share {
                let mut named = basis.clone();
                named.push(*index);
                return Err(ThresholdError::InconsistentGroup(named));
            }
        }
        Ok(())
    }

    /// The first t nodes: any t determine the polynomial.
    fn basis(&self) -> Vec<u16> {
        self.verifying_shares
            .keys()
            .take(self.threshold.into())
            .copied()
            .collect()
    }

    /// The polynomial `s(x)·G` at `x`, from the verifying shares of `basis`.
    fn interpolate(&self, basis: &[u16], x: Scalar) -> Result<ProjectivePoint, ThresholdError> {
        basis
            .iter()
            .map(|i| Ok(self.verifying_shares[i] * lagrange_at(basis, *i, x)?))
            .sum()
    }

    /// This group with node `index` added: its verifying share is the polynomial's value at
    /// `index` (what a node joining by a repair must end with). The threshold, the group key
    /// and every other share stay.
    pub fn with_node(&self, index: u16) -> Result<GroupKeys, ThresholdError> {
        if index == 0 {
            return Err(ThresholdError::UnknownNode(0));
        }
        if self.verifying_shares.contains_key(&index) {
            return Err(ThresholdError::DuplicateNode(index));
        }
        if self.verifying_shares.len() >= MAX_NODES {
            return Err(ThresholdError::TooManyNodes(
                self.verifying_shares.len() + 1,
            ));
        }
        let share = self.interpolate(&self.basis(), Scalar::from(u64::from(index)))?;
        let mut shares = self.encoded_shares();
        shares.push((index, encode_point(&share)));
        GroupKeys::new(self.threshold, &self.group_key(), &shares)
    }

    /// FROST's form of these keys, for a refresh.
    pub(crate) fn to_public_key_package(&self) -> Result<PublicKeyPackage, ThresholdError> {
        let mut shares = BTreeMap::new();
        for (index, point) in &self.verifying_shares {
            let share =
                VerifyingShare::deserialize(&encode_point(point)).map_err(ThresholdError::Dkg)?;
            shares.insert(identifier(*index)?, share);
        }
        let key = VerifyingKey::deserialize(&self.group_key()).map_err(ThresholdError::Dkg)?;
        Ok(PublicKeyPackage::new(shares, key, Some(self.threshold)))
    }

    /// How many nodes' partials make the secret.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// What identifies this group (its threshold and every public key).
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// The group key `s·G`, compressed.
    pub fn group_key(&self) -> CompressedPoint {
        encode_point(&self.group_key)
    }

    /// Every node's verifying share, compressed, in index order (as the registry records them).
    pub fn encoded_shares(&self) -> Vec<(u16, CompressedPoint)> {
        self.verifying_shares
            .iter()
            .map(|(index, point)| (*index, encode_point(point)))
            .collect()
    }

    /// The nodes' indices, in order.
    pub fn nodes(&self) -> impl Iterator<Item = u16> + '_ {
        self.verifying_shares.keys().copied()
    }

    /// Node `index`'s verifying share `s_i·G`.
    pub fn verifying_share(&self, index: u16) -> Result<&ProjectivePoint, ThresholdError> {
        self.verifying_shares
            .get(&index)
            .ok_or(ThresholdError::UnknownNode(index))
    }
}

/// A point from its compressed encoding; the identity is refused (no share or answer is it).
pub(crate) fn decode_point(
    bytes: &CompressedPoint,
    node: u16,
    what: &'static str,
) -> Result<ProjectivePoint, ThresholdError> {
    let mut repr = <AffinePoint as GroupEncoding>::Repr::default();
    repr.copy_from_slice(bytes);
    Option::<AffinePoint>::from(AffinePoint::from_bytes(&repr))
        .map(ProjectivePoint::from)
        .filter(|p| *p != ProjectivePoint::IDENTITY)
        .ok_or(ThresholdError::BadPoint { node, what })
}

/// The compressed encoding of a point.
pub(crate) fn encode_point(point: &ProjectivePoint) -> CompressedPoint {
    let mut out = [0u8; 33];
    out.copy_from_slice(&point.to_affine().to_bytes());
    out
}

/// A scalar from 32 big-endian bytes, refusing values of n and above.
pub(crate) fn decode_scalar(
    bytes: &[u8; 32],
    node: u16,
    what: &'static str,
) -> Result<Scalar, ThresholdError> {
    Option::<Scalar>::from(Scalar::from_repr((*bytes).into()))
        .ok_or(ThresholdError::BadScalar { node, what })
}
