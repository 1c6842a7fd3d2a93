//! One node's answer for an app and an epoch: `s_i·X` with its proof, and its check.

use crate::group::{decode_point, encode_point, CompressedPoint, GroupKeys};
use crate::input::app_key_input;
use crate::{dleq, KeyShare, ThresholdError};
use k256::ProjectivePoint;

/// A node's partial evaluation as it travels (sealed to the guest's ephemeral key). Its
/// `Debug` leaves the value out: t of them make the app's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Partial {
    /// The node's index in the group.
    pub index: u16,
    /// `s_i·X`, compressed.
    pub value: CompressedPoint,
    /// The proof that `value` and the node's verifying share have the same logarithm.
    pub proof: dleq::ProofBytes,
}

/// Length of a partial on the wire: index (u16 big-endian) || value (33) || proof (64).
pub const PARTIAL_LEN: usize = 2 + 33 + 64;

impl Partial {
    /// The wire form a node seals to the guest.
    pub fn to_bytes(&self) -> [u8; PARTIAL_LEN] {
        let mut out = [0u8; PARTIAL_LEN];
        out[..2].copy_from_slice(&self.index.to_be_bytes());
        out[2..35].copy_from_slice(&self.value);
        out[35..].copy_from_slice(&self.proof);
        out
    }

    /// A partial from its wire form. Only the length is checked here; the point and the proof
    /// are checked by [`verify`], which names the node.
    pub fn from_bytes(bytes: &[u8]) -> Result<Partial, ThresholdError> {
        let bytes: &[u8; PARTIAL_LEN] = bytes
            .try_into()
            .map_err(|_| ThresholdError::BadLength(bytes.len()))?;
        let mut value = [0u8; 33];
        value.copy_from_slice(&bytes[2..35]);
        let mut proof = [0u8; 64];
        proof.copy_from_slice(&bytes[35..]);
        Ok(Partial {
            index: u16::from_be_bytes([bytes[0], bytes[1]]),
            value,
            proof,
        })
    }
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partial")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// A partial whose proof verified against its node's verifying share in one group, for one
/// app and epoch.
#[derive(Clone)]
pub struct VerifiedPartial {
    pub(crate) group: [u8; 32],
    pub(crate) index: u16,
    pub(crate) app_id: [u8; 20],
    pub(crate) epoch: u32,
    pub(crate) value: ProjectivePoint,
}

impl std::fmt::Debug for VerifiedPartial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPartial")
            .field("index", &self.index)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl VerifiedPartial {
    /// The node that gave it.
    pub fn index(&self) -> u16 {
        self.index
    }
}

/// Node `share.index()`'s partial for `app_id` at `epoch`.
pub fn evaluate(
    share: &KeyShare,
    app_id: &[u8; 20],
    epoch: u32,
) -> Result<Partial, ThresholdError> {
    let x = app_key_input(app_id, epoch)?;
    let z = x * share.secret();
    let proof = dleq::prove(share.secret(), &share.verifying_share(), &x, &z)?;
    Ok(Partial {
        index: share.index(),
        value: encode_point(&z),
        proof,
    })
}

/// Checks `partial` against its node's verifying share in `group`, for `app_id` at `epoch`.
pub fn verify(
    group: &GroupKeys,
    app_id: &[u8; 20],
    epoch: u32,
    partial: &Partial,
) -> Result<VerifiedPartial, ThresholdError> {
    let y = group.verifying_share(partial.index)?;
    let z = decode_point(&partial.value, partial.index, "the partial")?;
    let x = app_key_input(app_id, epoch)?;
    dleq::verify(&partial.proof, y, &x, &z, partial.index)?;
    Ok(VerifiedPartial {
        group: group.id(),
        index: partial.index,
        app_id: *app_id,
        epoch,
        value: z,
    })
}
