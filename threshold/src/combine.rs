//! Lagrange interpolation in the exponent: t verified partials `s_i·X` into `s·X`, and the
//! app's keys from it.

use crate::group::{encode_point, GroupKeys};
use crate::partial::VerifiedPartial;
use crate::ThresholdError;
use k256::{ProjectivePoint, Scalar};
use snpkms_api::app_keys::{AppKeys, THRESHOLD_EPOCH_SALT};
use std::collections::BTreeSet;
use zeroize::Zeroizing;

/// The Lagrange coefficient of node `i` among `indices`, evaluated at `x`:
/// the product over j != i of (x - j) / (i - j). Indices must be distinct (callers check).
/// The denominator cannot be zero for u16 indices (all far below the group order); if it
/// were, this is an error rather than a coefficient of zero.
pub(crate) fn lagrange_at(indices: &[u16], i: u16, x: Scalar) -> Result<Scalar, ThresholdError> {
    let xi = Scalar::from(u64::from(i));
    let (num, den) =
        indices
            .iter()
            .filter(|j| **j != i)
            .fold((Scalar::ONE, Scalar::ONE), |(num, den), j| {
                let xj = Scalar::from(u64::from(*j));
                (num * (x - xj), den * (xi - xj))
            });
    // den is a product of non-zero differences of distinct indices below the group order.
    Option::<Scalar>::from(den.invert())
        .map(|inv| num * inv)
        .ok_or(ThresholdError::DuplicateNode(i))
}

/// The secret an app's keys come from at one epoch: `s·X`, compressed. Wiped on drop.
pub struct AppSecret {
    app_id: [u8; 20],
    epoch: u32,
    point: Zeroizing<[u8; 33]>,
}

impl AppSecret {
    /// The app's disk, env and signing keys (`snpkms_api::app_keys`, salt prefix
    /// "snpkms/v2/epoch/").
    pub fn app_keys(&self) -> AppKeys {
        AppKeys::derive(
            self.point.as_ref(),
            THRESHOLD_EPOCH_SALT,
            &self.app_id,
            self.epoch,
        )
    }

    /// The point itself, for tests that compare it with one computed another way.
    pub fn expose(&self) -> &[u8; 33] {
        &self.point
    }
}

/// Combines verified partials of `group` for one app and epoch. Needs at least t of distinct
/// nodes, all for the same app and epoch; uses the t of lowest index (any t give the same).
pub fn combine(
    group: &GroupKeys,
    partials: &[VerifiedPartial],
) -> Result<AppSecret, ThresholdError> {
    let mut seen = BTreeSet::new();
    for p in partials {
        if p.group != group.id() {
            return Err(ThresholdError::OtherGroup(p.index));
        }
        group.verifying_share(p.index)?;
        if !seen.insert(p.index) {
            return Err(ThresholdError::DuplicateNode(p.index));
        }
    }
    let need = group.threshold();
    let Some(first) = partials.first() else {
        return Err(ThresholdError::NotEnough { got: 0, need });
    };
    if partials.len() < usize::from(need) {
        return Err(ThresholdError::NotEnough {
            got: partials.len(),
            need,
        });
    }
    if let Some(other) = partials
        .iter()
        .find(|p| p.app_id != first.app_id || p.epoch != first.epoch)
    {
        return Err(ThresholdError::MixedInputs(first.index, other.index));
    }
    let mut used: Vec<&VerifiedPartial> = partials.iter().collect();
    used.sort_by_key(|p| p.index);
    used.truncate(need.into());
    let indices: Vec<u16> = used.iter().map(|p| p.index).collect();
    let point = used
        .iter()
        .map(|p| Ok(p.value * lagrange_at(&indices, p.index, Scalar::ZERO)?))
        .sum::<Result<ProjectivePoint, ThresholdError>>()?;
    Ok(AppSecret {
        app_id: first.app_id,
        epoch: first.epoch,
        point: Zeroizing::new(encode_point(&point)),
    })
}

/// Interpolates raw points at 0 without checking anything: what someone holding fewer than t
/// shares could try. Only for the tests that show it fails.
#[doc(hidden)]
pub fn interpolate_unchecked(
    points: &[(u16, ProjectivePoint)],
) -> Result<ProjectivePoint, ThresholdError> {
    let indices: Vec<u16> = points.iter().map(|(i, _)| *i).collect();
    points
        .iter()
        .map(|(i, p)| Ok(*p * lagrange_at(&indices, *i, Scalar::ZERO)?))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;

    /// Interpolating a polynomial's values reproduces it anywhere.
    #[test]
    fn lagrange_reproduces_a_polynomial() {
        let mut rng = rand::rngs::OsRng;
        let coeffs: Vec<Scalar> = (0..3).map(|_| Scalar::random(&mut rng)).collect();
        let f = |x: Scalar| coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
        let basis = [2u16, 4, 5];
        for x in [0u64, 1, 3, 9] {
            let x = Scalar::from(x);
            let got: Scalar = basis
                .iter()
                .map(|i| f(Scalar::from(u64::from(*i))) * lagrange_at(&basis, *i, x).unwrap())
                .sum();
            assert_eq!(got, f(x));
        }
    }
}
