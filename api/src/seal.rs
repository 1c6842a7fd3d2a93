//! HPKE (RFC 9180) base mode with X25519-HKDF-SHA256, HKDF-SHA256 and ChaCha20-Poly1305: how
//! key material travels from a node to the one guest that holds the ephemeral secret key.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type KemT = X25519HkdfSha256;
/// The sender's KEM: the same DHKEM with aws-lc-rs's X25519 ([`crate::x25519_kem`]).
type SenderKem = crate::x25519_kem::X25519HkdfSha256AwsLc;

/// HPKE `info` for GetAppKey responses (the sealed `AppKeys`): binds the ciphertext to its
/// purpose.
pub const APP_KEYS_INFO: &[u8] = b"snpkms/get-app-key/v1/response";
/// HPKE `info` for GetAppKeyShare responses (a threshold node's sealed partial).
pub const APP_KEY_SHARE_INFO: &[u8] = b"snpkms/get-app-key-share/v2/response";
/// HPKE `info` of a key-generation round-2 package (`KeyGenRound2`).
pub const KEYGEN_ROUND2_INFO: &[u8] = b"snpkms/keygen/v1/round2";
/// The associated data of a key-generation round-2 package: its session, sender and recipient.
pub fn keygen_round2_aad(session: &[u8], from: u16, to: u16) -> Vec<u8> {
    [session, &from.to_be_bytes(), &to.to_be_bytes()].concat()
}
/// HPKE `info` for Onboard responses (the sealed 32-byte root secret), so a sealed root never
/// opens as app keys or the other way round.
pub const ROOT_SECRET_INFO: &[u8] = b"snpkms/onboard/v1/response";

/// Why sealing to, or opening with, an ephemeral key failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The recipient's public key is not a 32-byte X25519 key; the length given.
    #[error("ephemeral public key must be 32 bytes (X25519), got {0}")]
    PublicKeyLength(usize),
    /// The response's encapsulated key is not 32 bytes; the length given.
    #[error("encapsulated key must be 32 bytes, got {0}")]
    EncapsulatedKeyLength(usize),
    /// HPKE encryption failed (not expected with a valid key).
    #[error("HPKE sealing failed")]
    Seal,
    /// Decryption failed: another key, another `info` or `aad` (another request), or a
    /// ciphertext changed on the way. Nothing of the plaintext is returned.
    #[error("the response does not open with this key and context (wrong key, or tampered)")]
    Open,
}

/// An HPKE ciphertext with its encapsulated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// HPKE `enc`: the sender's ephemeral X25519 public key (32 bytes).
    pub encapsulated_key: Vec<u8>,
    /// ChaCha20-Poly1305 ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// The guest's one-time X25519 key pair for one request.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct EphemeralKeyPair {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: [u8; 32],
}

impl EphemeralKeyPair {
    /// A fresh key pair from the OS random number generator. The secret half is wiped on drop.
    pub fn generate() -> EphemeralKeyPair {
        let (sk, pk) = KemT::gen_keypair(&mut rand::rngs::OsRng);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&sk.to_bytes());
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        EphemeralKeyPair { secret, public }
    }

    /// The 32-byte X25519 public key, to bind into report_data and send with the request.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// Opens `sealed` with the secret key; `info` and `aad` must be those it was sealed with
    /// (see [`seal`]). The plaintext is wiped when dropped.
    pub fn open(
        &self,
        info: &[u8],
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let sk =
            <KemT as Kem>::PrivateKey::from_bytes(&self.secret).map_err(|_| SealError::Open)?;
        let enc = <KemT as Kem>::EncappedKey::from_bytes(&sealed.encapsulated_key)
            .map_err(|_| SealError::EncapsulatedKeyLength(sealed.encapsulated_key.len()))?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, KemT>(
            &OpModeR::Base,
            &sk,
            &enc,
            info,
            &sealed.ciphertext,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
    }
}

/// Seals `plaintext` to `recipient_public_key`; only the holder of the matching secret key can
/// open it, and only with the same `info` and `aad`.
pub fn seal(
    recipient_public_key: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, SealError> {
    if recipient_public_key.len() != 32 {
        return Err(SealError::PublicKeyLength(recipient_public_key.len()));
    }
    let pk = <SenderKem as Kem>::PublicKey::from_bytes(recipient_public_key)
        .map_err(|_| SealError::PublicKeyLength(recipient_public_key.len()))?;
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, SenderKem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|_| SealError::Seal)?;
    Ok(Sealed {
        encapsulated_key: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// The associated data of a GetAppKey response: the response cannot be replayed for another
/// app, compose, epoch or request.
pub fn app_keys_aad(app_id: &[u8], compose_hash: &[u8], epoch: u32, nonce: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(20 + 32 + 4 + 32);
    aad.extend_from_slice(app_id);
    aad.extend_from_slice(compose_hash);
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.extend_from_slice(nonce);
    aad
}

/// The associated data of a GetAppKeyShare response: as [`app_keys_aad`], and the share epoch
/// and node index the answer claims, so that the answer opens only for this request and what
/// it claims. (Not sender authentication: HPKE's base mode has none. What makes a partial
/// trustworthy is its proof against the verifying share the chain lists.)
pub fn app_key_share_aad(
    app_id: &[u8],
    compose_hash: &[u8],
    epoch: u32,
    nonce: &[u8],
    share_epoch: u32,
    node_index: u16,
) -> Vec<u8> {
    let mut aad = app_keys_aad(app_id, compose_hash, epoch, nonce);
    aad.extend_from_slice(&share_epoch.to_be_bytes());
    aad.extend_from_slice(&node_index.to_be_bytes());
    aad
}

/// The associated data of an Onboard response: bound to the request and to the root it claims.
pub fn root_secret_aad(nonce: &[u8], root_signing_address: &[u8]) -> Vec<u8> {
    [nonce, root_signing_address].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_right_key_info_and_aad() {
        let guest = EphemeralKeyPair::generate();
        let sealed = seal(&guest.public_key(), APP_KEYS_INFO, b"aad", b"secret").unwrap();
        assert_eq!(
            guest
                .open(APP_KEYS_INFO, b"aad", &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert_eq!(
            guest.open(APP_KEYS_INFO, b"other", &sealed),
            Err(SealError::Open)
        );
        assert_eq!(
            guest.open(ROOT_SECRET_INFO, b"aad", &sealed),
            Err(SealError::Open)
        );
        let other = EphemeralKeyPair::generate();
        assert_eq!(
            other.open(APP_KEYS_INFO, b"aad", &sealed),
            Err(SealError::Open)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            guest.open(APP_KEYS_INFO, b"aad", &tampered),
            Err(SealError::Open)
        );
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn bad_public_key_lengths_are_errors() {
        assert_eq!(
            seal(&[0u8; 31], APP_KEYS_INFO, b"", b""),
            Err(SealError::PublicKeyLength(31))
        );
        assert_eq!(
            seal(&[], APP_KEYS_INFO, b"", b""),
            Err(SealError::PublicKeyLength(0))
        );
    }
}
