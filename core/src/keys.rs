//! Key derivation. Every node holding the same root secret derives the same keys, so a guest
//! gets the same keys from any node and after any restart.
//!
//! App keys: HKDF-SHA256 with the root secret as input key material,
//! salt = "snpkms/v1/epoch/" || epoch (u32 big-endian),
//! info = "app/" || app_id (20 raw bytes) || "/" || purpose, for the purposes
//! `disk` (32-byte key), `env` (X25519 secret) and `signing` (secp256k1 secret; if the 32 bytes
//! are not a valid scalar, info gets one more byte, a counter starting at 1, until they are).
//!
//! KMS root signing key (epoch-independent, so the on-chain KMS info survives epoch bumps):
//! HKDF-SHA256, salt = "snpkms/v1/kms", info = "kms-root-signing", same counter rule.

use hkdf::Hkdf;
use k256::ecdsa::SigningKey;
use rand::RngCore;
use sha2::Sha256;
use snpkms_api::app_key_signature::address_of;
use zeroize::Zeroizing;

/// Length of the root secret.
pub const ROOT_SECRET_LEN: usize = 32;

/// The root secret. Never logged, never written unsealed, wiped on drop.
pub struct RootSecret(Zeroizing<[u8; ROOT_SECRET_LEN]>);

impl RootSecret {
    /// 32 bytes from the OS CSPRNG (inside the TEE, backed by RDRAND/RDSEED).
    pub fn generate() -> RootSecret {
        let mut bytes = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        RootSecret(bytes)
    }

    /// A root secret from its bytes (unsealed, or received from a peer).
    pub fn from_bytes(bytes: Zeroizing<[u8; ROOT_SECRET_LEN]>) -> RootSecret {
        RootSecret(bytes)
    }

    /// The bytes, for sealing and onboarding only.
    pub fn expose(&self) -> &[u8; ROOT_SECRET_LEN] {
        &self.0
    }

    /// The KMS root signing key (epoch-independent).
    pub fn root_signing_key(&self) -> SigningKey {
        secp256k1_key(
            &Hkdf::<Sha256>::new(Some(b"snpkms/v1/kms"), self.0.as_ref()),
            b"kms-root-signing",
        )
    }

    /// The Ethereum address of [`RootSecret::root_signing_key`]: what the registry names.
    pub fn root_signing_address(&self) -> [u8; 20] {
        address_of(self.root_signing_key().verifying_key())
    }

    /// The keys of `app_id` at `epoch`.
    pub fn app_keys(&self, app_id: &[u8; 20], epoch: u32) -> AppKeys {
        let mut salt = b"snpkms/v1/epoch/".to_vec();
        salt.extend_from_slice(&epoch.to_be_bytes());
        let hk = Hkdf::<Sha256>::new(Some(&salt), self.0.as_ref());
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
}

/// Expands `info` (then `info || counter` for counter = 1, 2, ...) until the output is a valid
/// secp256k1 scalar. A miss has probability about 2^-128, but the rule must be fixed so every
/// node derives the same key.
fn secp256k1_key(hk: &Hkdf<Sha256>, info: &[u8]) -> SigningKey {
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
    /// The Ethereum address of the signing key.
    pub fn signing_address(&self) -> [u8; 20] {
        address_of(self.signing.verifying_key())
    }

    /// The X25519 public key of the env secret.
    pub fn env_public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*self.env)).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's test vector: root secret 0x00..1f, app 0x11 * 20, epoch 0.
    #[test]
    fn derivation_test_vector() {
        let mut root = [0u8; 32];
        for (i, b) in root.iter_mut().enumerate() {
            *b = i as u8;
        }
        let root = RootSecret::from_bytes(Zeroizing::new(root));
        let keys = root.app_keys(&[0x11; 20], 0);
        assert_eq!(hex::encode(keys.disk.as_ref()), DISK);
        assert_eq!(hex::encode(keys.env.as_ref()), ENV);
        assert_eq!(hex::encode(keys.signing.to_bytes()), SIGNING);
        assert_eq!(hex::encode(keys.signing_address()), SIGNING_ADDRESS);
        assert_eq!(hex::encode(root.root_signing_address()), ROOT_ADDRESS);
    }
    const DISK: &str = "10faad8d63aec3159646987c4e49dbdbdef16d453f2846ec630ddbbd81a722b0";
    const ENV: &str = "c66a042b461c6031454b6c253245dc7c5a062fbe4d5612c6549f12397a5bc58a";
    const SIGNING: &str = "bf7c59f9d0b768c739f9137f015515b963e94ff29cb2022a5fca51df9df0626b";
    // Computed independently: HKDF with Python's hmac module, addresses with
    // `cast wallet address --private-key <scalar>`.
    const SIGNING_ADDRESS: &str = "b0693554287e52fd3336012691ce81e47655905a";
    const ROOT_ADDRESS: &str = "f089d645ac8c69bce1fd5fcb257b63540a3278e1";

    #[test]
    fn keys_separate_by_app_epoch_and_purpose() {
        let root = RootSecret::generate();
        let a0 = root.app_keys(&[1; 20], 0);
        let a0_again = root.app_keys(&[1; 20], 0);
        let a1 = root.app_keys(&[1; 20], 1);
        let b0 = root.app_keys(&[2; 20], 0);
        assert_eq!(*a0.disk, *a0_again.disk);
        assert_eq!(a0.signing_address(), a0_again.signing_address());
        assert_ne!(*a0.disk, *a1.disk);
        assert_ne!(*a0.disk, *b0.disk);
        assert_ne!(*a0.disk, *a0.env);
        assert_ne!(a0.signing_address(), b0.signing_address());
        assert_ne!(root.root_signing_address(), a0.signing_address());
        assert_ne!(
            root.root_signing_address(),
            RootSecret::generate().root_signing_address()
        );
    }
}
