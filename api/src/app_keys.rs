//! How an app's keys come out of a secret, the same on every side that computes them: a node
//! from the replicated root (`snpkms_core::keys::RootSecret::app_keys`), a guest from the
//! point it combines in threshold mode (`snpkms_threshold`).
//!
//! HKDF-SHA256 with the secret as input key material,
//! salt = `salt_prefix` || epoch (u32 big-endian),
//! info = "app/" || app_id (20 raw bytes) || "/" || purpose, for the purposes
//! `disk` (32-byte key), `env` (X25519 secret) and `signing` (secp256k1 secret; if the 32 bytes
//! are not a valid scalar, info gets one more byte, a counter starting at 1, until they are).

use crate::app_key_signature::address_of;
use hkdf::Hkdf;
use k256::ecdsa::SigningKey;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The salt prefix of the replicated-root mode (the root secret is the input key material).
pub const ROOT_EPOCH_SALT: &[u8] = b"snpkms/v1/epoch/";
/// The salt prefix of the threshold mode (the combined point, compressed, is the input key
/// material): another prefix, so the two modes never give the same keys.
pub const THRESHOLD_EPOCH_SALT: &[u8] = b"snpkms/v2/epoch/";

/// The keys of one app at one epoch.
pub struct AppKeys {
    /// 32-byte symmetric disk key.
    pub disk: Zeroizing<[u8; 32]>,
    /// X25519 secret (clamped when used, as RFC 7748 says).
    pub env: Zeroizing<[u8; 32]>,
    /// The app's secp256k1 signing key.
    pub signing: SigningKey,
}

impl AppKeys {
    /// The keys of `app_id` at `epoch` from `secret`, under the mode's `salt_prefix`.
    pub fn derive(secret: &[u8], salt_prefix: &[u8], app_id: &[u8; 20], epoch: u32) -> AppKeys {
        let mut salt = salt_prefix.to_vec();
        salt.extend_from_slice(&epoch.to_be_bytes());
        let hk = Hkdf::<Sha256>::new(Some(&salt), secret);
        let info = |purpose: &str| {
            let mut info = b"app/".to_vec();
            info.extend_from_slice(app_id);
            info.push(b'/');
            info.extend_from_slice(purpose.as_bytes());
            info
        };
        let expand32 = |purpose: &str| {
            let mut out = Zeroizing::new([0u8; 32]);
            hk.expand(&info(purpose), out.as_mut())
                .expect("32 bytes is a valid HKDF-SHA256 length");
            out
        };
        AppKeys {
            disk: expand32("disk"),
            env: expand32("env"),
            signing: secp256k1_key(&hk, &info("signing")),
        }
    }

    /// The Ethereum address of the signing key.
    pub fn signing_address(&self) -> [u8; 20] {
        address_of(self.signing.verifying_key())
    }

    /// The X25519 public key of the env secret.
    pub fn env_public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*self.env)).to_bytes()
    }
}

/// Expands `info` (then `info || counter` for counter = 1, 2, ...) until the output is a valid
/// secp256k1 scalar. A miss has probability about 2^-128, but the rule must be fixed so every
/// node derives the same key.
pub fn secp256k1_key(hk: &Hkdf<Sha256>, info: &[u8]) -> SigningKey {
    (0u8..=255)
        .find_map(|counter| {
            let mut okm = Zeroizing::new([0u8; 32]);
            let r = if counter == 0 {
                hk.expand(info, okm.as_mut())
            } else {
                hk.expand_multi_info(&[info, &[counter]], okm.as_mut())
            };
            r.expect("32 bytes is a valid HKDF-SHA256 length");
            SigningKey::from_slice(okm.as_ref()).ok()
        })
        .expect("a valid secp256k1 scalar within 256 tries")
}
