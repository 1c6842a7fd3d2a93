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
