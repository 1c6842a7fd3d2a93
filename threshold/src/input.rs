//! The point an app's keys at an epoch are derived at: RFC 9380 hash to curve,
//! suite `secp256k1_XMD:SHA-256_SSWU_RO_`, under this scheme's own domain separation tag.

use crate::ThresholdError;
use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::{ProjectivePoint, Secp256k1};
use sha2::Sha256;

/// The domain separation tag: the scheme, its version and the suite (RFC 9380 §3.1).
pub const APP_KEY_DST: &[u8] = b"snpkms/v2/app-key/secp256k1_XMD:SHA-256_SSWU_RO_";

/// `X = hash_to_curve(app_id || epoch)` (epoch as u32 big-endian).
pub fn app_key_input(app_id: &[u8; 20], epoch: u32) -> Result<ProjectivePoint, ThresholdError> {
    hash_to_curve(&[app_id, &epoch.to_be_bytes()], APP_KEY_DST)
}

pub(crate) fn hash_to_curve(msg: &[&[u8]], dst: &[u8]) -> Result<ProjectivePoint, ThresholdError> {
    Secp256k1::hash_from_bytes::<ExpandMsgXmd<Sha256>>(msg, &[dst])
        .map_err(|_| ThresholdError::HashToCurve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::sec1::ToEncodedPoint;

    /// RFC 9380 Appendix J.8.1, msg = "": the suite is the standard one.
    #[test]
    fn rfc9380_vector() {
        let p = hash_to_curve(&[b""], b"QUUX-V01-CS02-with-secp256k1_XMD:SHA-256_SSWU_RO_")
            .unwrap()
            .to_affine();
        let e = p.to_encoded_point(false);
        assert_eq!(
            hex::encode(e.x().unwrap()),
            "c1cae290e291aee617ebaef1be6d73861479c48b841eaba9b7b5852ddfeb1346"
        );
        assert_eq!(
            hex::encode(e.y().unwrap()),
            "64fa678e07ae116126f08b022a94af6de15985c996c3a91b64c406a960e51067"
        );
    }

    #[test]
    fn inputs_separate_apps_and_epochs() {
        let a0 = app_key_input(&[1; 20], 0).unwrap();
        assert_eq!(a0, app_key_input(&[1; 20], 0).unwrap());
        assert_ne!(a0, app_key_input(&[1; 20], 1).unwrap());
        assert_ne!(a0, app_key_input(&[2; 20], 0).unwrap());
    }
}
