//! DHKEM(X25519, HKDF-SHA256) of RFC 9180 §4.1 for the `hpke` crate, with the sender's X25519
//! operations (the ephemeral key pair and the Diffie-Hellman) done by aws-lc-rs: they were a
//! fifth of a KMS node's CPU with curve25519-dalek's portable field arithmetic (BENCHMARKS.md).
//! Everything else is `hpke`'s own: the key types, the KDF (`extract_and_expand`, the same
//! labelled HKDF its DHKEM uses), the receiver's side (`decap` is the stock one). The KEM id is
//! the stock one, so the wire format is RFC 9180's and any HPKE implementation opens it; the
//! tests check that the stock `decap` recovers every shared secret this `encap` makes.

use hpke::kdf::HkdfSha256;
use hpke::kem::{SharedSecret, X25519HkdfSha256};
use hpke::{Deserializable, HpkeError, Kem, Serializable};
use rand::{CryptoRng, RngCore};

type Stock = X25519HkdfSha256;

/// RFC 9180 §4.1: `suite_id = concat("KEM", I2OSP(kem_id, 2))`.
const SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];

/// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020, encapsulating with aws-lc-rs.
pub(crate) struct X25519HkdfSha256AwsLc;

fn same_secret(s: SharedSecret<Stock>) -> SharedSecret<X25519HkdfSha256AwsLc> {
    SharedSecret(s.0)
}

impl Kem for X25519HkdfSha256AwsLc {
    type PublicKey = <Stock as Kem>::PublicKey;
    type PrivateKey = <Stock as Kem>::PrivateKey;
    type EncappedKey = <Stock as Kem>::EncappedKey;
    type NSecret = <Stock as Kem>::NSecret;
    const KEM_ID: u16 = <Stock as Kem>::KEM_ID;

    fn sk_to_pk(sk: &Self::PrivateKey) -> Self::PublicKey {
        Stock::sk_to_pk(sk)
    }

    fn derive_keypair(ikm: &[u8]) -> (Self::PrivateKey, Self::PublicKey) {
        Stock::derive_keypair(ikm)
    }

    fn decap(
        sk_recip: &Self::PrivateKey,
        pk_sender_id: Option<&Self::PublicKey>,
        encapped_key: &Self::EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        Stock::decap(sk_recip, pk_sender_id, encapped_key).map(same_secret)
    }

    /// Base mode: a fresh ephemeral key from aws-lc-rs's generator (the system's, as `csprng`
    /// would be), `dh = DH(skE, pkR)`, `enc = pkE`,
    /// `shared_secret = ExtractAndExpand(dh, enc || pkR)`. Auth mode (never used here) is the
    /// stock one.
    fn encap<R: CryptoRng + RngCore>(
        pk_recip: &Self::PublicKey,
        sender_id_keypair: Option<(&Self::PrivateKey, &Self::PublicKey)>,
        csprng: &mut R,
    ) -> Result<(SharedSecret<Self>, Self::EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Stock::encap(pk_recip, sender_id_keypair, csprng)
                .map(|(s, e)| (same_secret(s), e));
        }
        use aws_lc_rs::agreement::{agree, PrivateKey, UnparsedPublicKey, X25519};
        let eph = PrivateKey::generate(&X25519).map_err(|_| HpkeError::EncapError)?;
        let pk_eph = eph
            .compute_public_key()
            .map_err(|_| HpkeError::EncapError)?;
        let pk_r = pk_recip.to_bytes();
        let mut kem_context = [0u8; 64];
        kem_context[..32].copy_from_slice(pk_eph.as_ref());
        kem_context[32..].copy_from_slice(&pk_r);
        let mut shared = SharedSecret::<Self>::default();
        agree(
            &eph,
            UnparsedPublicKey::new(&X25519, &pk_r[..]),
            HpkeError::EncapError,
            |dh| {
                // RFC 9180 §7.1.4: an all-zero X25519 output (a small-order key) is refused
                // (aws-lc-rs refuses it too).
                if dh.iter().all(|&b| b == 0) {
                    return Err(HpkeError::EncapError);
                }
                hpke::kdf::extract_and_expand::<HkdfSha256>(
                    dh,
                    &SUITE_ID,
                    &kem_context,
                    &mut shared.0,
                )
                .map_err(|_| HpkeError::EncapError)
            },
        )?;
        let enc = Self::EncappedKey::from_bytes(pk_eph.as_ref())?;
        Ok((shared, enc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stock receiver recovers every shared secret this sender makes, for random keys.
    #[test]
    fn the_stock_decap_recovers_every_shared_secret() {
        for _ in 0..200 {
            let (sk_r, pk_r) = Stock::gen_keypair(&mut rand::rngs::OsRng);
            let (shared, enc) =
                X25519HkdfSha256AwsLc::encap(&pk_r, None, &mut rand::rngs::OsRng).unwrap();
            let recovered = Stock::decap(&sk_r, None, &enc).unwrap();
            assert_eq!(shared.0, recovered.0);
        }
    }

    /// A small-order recipient key (all-zero DH output) is refused, as the stock KEM does.
    #[test]
    fn a_small_order_key_is_refused() {
        let zero = <Stock as Kem>::PublicKey::from_bytes(&[0u8; 32]).unwrap();
        assert!(X25519HkdfSha256AwsLc::encap(&zero, None, &mut rand::rngs::OsRng).is_err());
        assert!(Stock::encap(&zero, None, &mut rand::rngs::OsRng).is_err());
    }
}
