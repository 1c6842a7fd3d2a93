//! Chaum-Pedersen proof that two points have the same discrete logarithm: a node's answer
//! `Z = s_i·X` uses the `s_i` of its verifying share `Y = s_i·G`, without revealing it.
//!
//! The form of RFC 9497 §2.2 for one pair (no crate offers it for secp256k1): the prover picks
//! a random `k`, sends `c = H(Y, X, Z, k·G, k·X)` and `z = k - c·s_i`; the verifier recomputes
//! `A = z·G + c·Y`, `B = z·X + c·Z` and checks `c = H(Y, X, Z, A, B)`. H is RFC 9380's
//! hash_to_field into the scalars, under its own domain separation tag. Sound because a
//! prover who can answer two challenges for the same (A, B) knows one logarithm of both.
//! `k` is hedged: hashed from the share, the statement and fresh randomness, so a failing RNG
//! alone does not repeat it (a repeated `k` with two challenges reveals the share).

use crate::group::{decode_scalar, encode_point};
use crate::ThresholdError;
use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::elliptic_curve::ops::LinearCombination;
use k256::elliptic_curve::PrimeField;
use k256::{ProjectivePoint, Scalar, Secp256k1};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The domain separation tag of the challenge hash.
pub const DLEQ_DST: &[u8] = b"snpkms/v2/dleq/secp256k1_XMD:SHA-256";
/// The domain separation tag of the hedged nonce.
const NONCE_DST: &[u8] = b"snpkms/v2/dleq-nonce/secp256k1_XMD:SHA-256";

/// The proof, as it travels: c || z, each 32 bytes big-endian.
pub type ProofBytes = [u8; 64];

fn challenge(
    y: &ProjectivePoint,
    x: &ProjectivePoint,
    z: &ProjectivePoint,
    a: &ProjectivePoint,
    b: &ProjectivePoint,
) -> Result<Scalar, ThresholdError> {
    let parts = [y, x, z, a, b].map(encode_point);
    let msg: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    // Only fails for a DST or output length RFC 9380 refuses; neither is ours. Never a zero
    // stand-in: c = 0 would accept any Z.
    Secp256k1::hash_to_scalar::<ExpandMsgXmd<Sha256>>(&msg, &[DLEQ_DST])
        .map_err(|_| ThresholdError::HashToCurve)
}

/// Proves that `y = secret·G` and `z = secret·x`.
pub fn prove(
    secret: &Scalar,
    y: &ProjectivePoint,
    x: &ProjectivePoint,
    z: &ProjectivePoint,
) -> Result<ProofBytes, ThresholdError> {
    let mut fresh = Zeroizing::new([0u8; 32]);
    rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, fresh.as_mut())
        .map_err(|_| ThresholdError::Randomness)?;
    let secret_bytes = Zeroizing::new(secret.to_repr());
    let statement = [y, x, z].map(encode_point);
    let k = Zeroizing::new(
        Secp256k1::hash_to_scalar::<ExpandMsgXmd<Sha256>>(
            &[
                &secret_bytes[..],
                &statement[0],
                &statement[1],
                &statement[2],
                fresh.as_slice(),
            ],
            &[NONCE_DST],
        )
        .map_err(|_| ThresholdError::HashToCurve)?,
    );
    let c = challenge(y, x, z, &(ProjectivePoint::GENERATOR * *k), &(*x * *k))?;
    let response = Zeroizing::new(*k - c * secret);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&c.to_repr());
    out[32..].copy_from_slice(&response.to_repr());
    Ok(out)
}

/// Checks `proof` that `y` (over G) and `z` (over `x`) share their logarithm; `node` names the
/// prover in the error.
pub fn verify(
    proof: &ProofBytes,
    y: &ProjectivePoint,
    x: &ProjectivePoint,
    z: &ProjectivePoint,
    node: u16,
) -> Result<(), ThresholdError> {
    let (c_bytes, z_bytes) = proof.split_at(32);
    let c = decode_scalar(
        c_bytes.try_into().expect("32 bytes"),
        node,
        "the proof's challenge",
    )?;
    let response = decode_scalar(
        z_bytes.try_into().expect("32 bytes"),
        node,
        "the proof's response",
    )?;
    // Two double-scalar multiplications (Shamir's trick) instead of four single ones.
    let a = ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &response, y, &c);
    let b = ProjectivePoint::lincomb(x, &response, z, &c);
    if challenge(y, x, z, &a, &b)? == c {
        Ok(())
    } else {
        Err(ThresholdError::ProofFails(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;

    fn pair() -> (Scalar, ProjectivePoint, ProjectivePoint, ProjectivePoint) {
        let s = Scalar::random(&mut rand::rngs::OsRng);
        let x = ProjectivePoint::GENERATOR * Scalar::random(&mut rand::rngs::OsRng);
        (s, ProjectivePoint::GENERATOR * s, x, x * s)
    }

    #[test]
    fn an_honest_proof_verifies_and_every_change_fails() {
        let (s, y, x, z) = pair();
        let proof = prove(&s, &y, &x, &z).unwrap();
        verify(&proof, &y, &x, &z, 1).unwrap();
        // Another answer, another share, another input: each fails.
        let other = ProjectivePoint::GENERATOR * Scalar::random(&mut rand::rngs::OsRng);
        for (y2, x2, z2) in [(y, x, other), (other, x, z), (y, other, z)] {
            assert!(matches!(
                verify(&proof, &y2, &x2, &z2, 3),
                Err(ThresholdError::ProofFails(3))
            ));
        }
        // Every flipped bit of the proof fails.
        for bit in 0..512 {
            let mut bad = proof;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&bad, &y, &x, &z, 2).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_proof_for_another_logarithm_does_not_verify() {
        // A node that answers s'·X with a true proof for s' but whose on-chain share is s·G.
        let (s, y, x, _) = pair();
        let s2 = s + Scalar::ONE;
        let z2 = x * s2;
        let proof = prove(&s2, &(ProjectivePoint::GENERATOR * s2), &x, &z2).unwrap();
        assert!(verify(&proof, &y, &x, &z2, 4).is_err());
    }

    #[test]
    fn out_of_range_scalars_are_refused() {
        let (s, y, x, z) = pair();
        let mut proof = prove(&s, &y, &x, &z).unwrap();
        proof[..32].copy_from_slice(&[0xff; 32]);
        assert!(matches!(
            verify(&proof, &y, &x, &z, 5),
            Err(ThresholdError::BadScalar { node: 5, .. })
        ));
    }
}
