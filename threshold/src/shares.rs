//! A node's share `s_i`, from FROST's distributed key generation (RFC 9591, Feldman
//! commitments, no dealer), and the mapping between node indices and FROST identifiers.

use crate::group::{decode_scalar, encode_point, CompressedPoint, GroupKeys};
use crate::ThresholdError;
use frost_secp256k1::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_secp256k1::{Identifier, VerifyingKey};
use k256::elliptic_curve::PrimeField;
use k256::{ProjectivePoint, Scalar};
use zeroize::Zeroizing;

/// Node `index`'s identifier in the key generation (the scalar `index`).
pub fn identifier(index: u16) -> Result<Identifier, ThresholdError> {
    Identifier::try_from(index).map_err(|_| ThresholdError::UnknownNode(index))
}

/// The node index of a FROST identifier made by [`identifier`].
pub fn index_of(id: &Identifier) -> Option<u16> {
    let bytes = id.serialize();
    let (high, low) = bytes.split_at(bytes.len().checked_sub(2)?);
    if high.iter().any(|b| *b != 0) {
        return None;
    }
    Some(u16::from_be_bytes([low[0], low[1]])).filter(|i| *i != 0)
}

/// Node `index`'s secret share. Never logged; wiped on drop.
pub struct KeyShare {
    index: u16,
    secret: Zeroizing<Scalar>,
    /// `s_i·G`, computed once: every partial's proof names it.
    verifying_share: ProjectivePoint,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl KeyShare {
    /// The share a node's key generation ended with.
    pub fn from_key_package(package: &KeyPackage) -> Result<KeyShare, ThresholdError> {
        let index = index_of(package.identifier()).ok_or(ThresholdError::UnknownNode(0))?;
        let bytes = Zeroizing::new(package.signing_share().serialize());
        let secret: &[u8; 32] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| ThresholdError::BadScalar {
                    node: index,
                    what: "the signing share",
                })?;
        Ok(KeyShare::new(
            index,
            decode_scalar(secret, index, "the signing share")?,
        ))
    }

    /// A share from its sealed form ([`KeyShare::to_bytes`]).
    pub fn from_bytes(bytes: &[u8; 34]) -> Result<KeyShare, ThresholdError> {
        let index = u16::from_be_bytes([bytes[0], bytes[1]]);
        if index == 0 {
            return Err(ThresholdError::UnknownNode(0));
        }
        let secret: &[u8; 32] = bytes[2..].try_into().expect("32 bytes");
        Ok(KeyShare::new(
            index,
            decode_scalar(secret, index, "the share")?,
        ))
    }

    fn new(index: u16, secret: Scalar) -> KeyShare {
        KeyShare {
            index,
            verifying_share: ProjectivePoint::GENERATOR * secret,
            secret: Zeroizing::new(secret),
        }
    }

    /// index (u16 big-endian) || s_i (32 bytes big-endian): what a node seals.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 34]> {
        let mut out = Zeroizing::new([0u8; 34]);
        out[..2].copy_from_slice(&self.index.to_be_bytes());
        out[2..].copy_from_slice(&self.secret.to_repr());
        out
    }

    /// The node's index.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The verifying share `s_i·G`.
    pub fn verifying_share(&self) -> ProjectivePoint {
        self.verifying_share
    }

    /// FROST's form of this share in `group`, for a refresh or a repair; refused if `group`
    /// does not list this share.
    pub(crate) fn to_key_package(&self, group: &GroupKeys) -> Result<KeyPackage, ThresholdError> {
        if group.verifying_share(self.index)? != &self.verifying_share {
            return Err(ThresholdError::ShareNotInGroup(self.index));
        }
        let secret: Zeroizing<[u8; 32]> = Zeroizing::new(self.secret.to_repr().into());
        let signing_share = SigningShare::deserialize(&secret[..]).map_err(ThresholdError::Dkg)?;
        let verifying_share = VerifyingShare::deserialize(&encode_point(&self.verifying_share))
            .map_err(ThresholdError::Dkg)?;
        let group_key =
            VerifyingKey::deserialize(&group.group_key()).map_err(ThresholdError::Dkg)?;
        Ok(KeyPackage::new(
            identifier(self.index)?,
            signing_share,
            verifying_share,
            group_key,
            group.threshold(),
        ))
    }

    pub(crate) fn secret(&self) -> &Scalar {
        &self.secret
    }
}

/// The group's public keys as the key generation left them.
pub fn group_of(package: &PublicKeyPackage, threshold: u16) -> Result<GroupKeys, ThresholdError> {
    let encode = |bytes: Vec<u8>, node: u16, what| -> Result<CompressedPoint, ThresholdError> {
        bytes
            .try_into()
            .map_err(|_| ThresholdError::BadPoint { node, what })
    };
    let group_key = encode(
        package
            .verifying_key()
            .serialize()
            .map_err(ThresholdError::Dkg)?,
        0,
        "the group key",
    )?;
    let shares = package
        .verifying_shares()
        .iter()
        .map(|(id, share)| {
            let index = index_of(id).ok_or(ThresholdError::UnknownNode(0))?;
            let bytes = share.serialize().map_err(ThresholdError::Dkg)?;
            Ok((index, encode(bytes, index, "the verifying share")?))
        })
        .collect::<Result<Vec<_>, ThresholdError>>()?;
    GroupKeys::new(threshold, &group_key, &shares)
}

/// The compressed verifying share of a share, as the registry records it.
pub fn verifying_share_bytes(share: &KeyShare) -> CompressedPoint {
    encode_point(&share.verifying_share())
}
